//! The one interface the proxy moves a body through, chosen once per response: the sockmap
//! programs (a whole body, or piece by piece), splice(2) through a pipe, or a copy through
//! userspace. Whatever mover is chosen, it moves exactly the announced bytes and reports an
//! upstream that ends early, so the client's connection closes rather than looking complete.

use strata_kernel::body_meter::BodyMeter as _;
use strata_kernel::sockmap_splice::SockmapSplice;

use super::body_relay::{relay, ProxyPath};
use super::pool::UpstreamPool;
use super::relay_error::RelayError;
use super::sockmap_mover::{self, Pieces};
use super::transfer::Transfer;

/// How one response's body moves.
pub enum BodyMover<'a> {
    /// The body was asked for piece by piece (see `sockmap_mover`); the pieces start on
    /// `path` (sockmap when it is loaded, else splice or copy for the whole rest).
    Pieces {
        splice: Option<&'a SockmapSplice>,
        plan: Pieces,
        path: ProxyPath,
    },
    /// The kernel moves the whole body socket to socket.
    Sockmap(&'a SockmapSplice),
    /// socket → pipe → socket with splice(2).
    Splice,
    /// read/write through a userspace buffer.
    Copy,
}

impl<'a> BodyMover<'a> {
    /// Picks the mover for a response with `status` whose body goes by `path` (the configured
    /// path, or the one `auto` chose for it): pieces when the first exchange asked for one, a
    /// copy for error bodies (a line of text).
    pub fn choose(
        pool: &'a UpstreamPool,
        status: u16,
        pieces: Option<Pieces>,
        path: ProxyPath,
    ) -> BodyMover<'a> {
        let sockmap = pool.sockmap().map(|s| s.as_ref());
        if let Some(plan) = pieces {
            return BodyMover::Pieces {
                splice: sockmap,
                plan,
                path,
            };
        }
        let path = if !(200..300).contains(&status) {
            ProxyPath::Copy
        } else {
            path
        };
        match (path, sockmap) {
            (ProxyPath::Sockmap, Some(splice)) => BodyMover::Sockmap(splice),
            (ProxyPath::Copy, _) => BodyMover::Copy,
            _ => BodyMover::Splice,
        }
    }

    /// Moves the body. True if the upstream connection may go back to the pool: it ended
    /// exactly at the body's end and never carried a sockmap flow.
    pub async fn run(self, t: &mut Transfer<'_>) -> Result<bool, RelayError> {
        match self {
            BodyMover::Pieces { splice, plan, path } => sockmap_mover::pieces(t, splice, plan, path).await,
            BodyMover::Sockmap(splice) => {
                if t.len == 0 {
                    return Ok(true);
                }
                match sockmap_mover::whole(t, splice).await? {
                    Some(clean) => Ok(clean),
                    None => Self::relay(t, ProxyPath::Splice).await,
                }
            }
            BodyMover::Splice => Self::relay(t, ProxyPath::Splice).await,
            BodyMover::Copy => Self::relay(t, ProxyPath::Copy).await,
        }
    }

    /// The splice or copy relay of the whole body.
    async fn relay(t: &mut Transfer<'_>, path: ProxyPath) -> Result<bool, RelayError> {
        if t.len == 0 {
            return Ok(true);
        }
        t.metrics.body_started(path.label());
        let timeout = t.pool.settings().response_timeout;
        relay(path, t.up, t.client, t.len, timeout, t.stall, t.metrics).await?;
        Ok(true)
    }
}
