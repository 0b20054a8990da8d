//! One piece of a proxied body through the sockmap programs: the kernel moves exactly `len`
//! bytes from the storage server's socket to the client's, and the edge never reads them.
//!
//! Two steps, so the caller can ask for the next piece in between: [`spend`] grants the budget
//! and waits until the programs have redirected all of it (ring-buffer event; the flow is also
//! polled for faults: an upstream that closes or stalls, a client that fails), then takes the
//! upstream socket out of the map. [`Delivery::wait`] then waits until the client socket has
//! taken every redirected byte (TCP_INFO), because "redirected" only means queued toward the
//! client: writing anything else to the client before that could reorder bytes.

use std::io;
use std::time::{Duration, Instant};

use tokio::net::TcpStream;

use super::relay_error::RelayError;
use super::socket_watch::{SocketWatch, Want};
use strata_kernel::body_meter::{BodyMeter as _, BodyPathLabel};
use strata_kernel::socket_opts::{connection_failed, peer_gone, written_bytes};
use strata_kernel::sockmap_splice::SockmapSplice;

use crate::metrics::ServerMetrics;

/// How often a waiting flow looks at its sockets for faults between events.
const FAULT_CHECK: Duration = Duration::from_millis(20);
/// After the storage server closed, how long bytes already received may take to go through.
const CLOSE_GRACE: Duration = Duration::from_millis(200);

/// A spent piece whose bytes may still be on their way into the client socket.
#[derive(Debug)]
pub struct Delivery {
    /// The client socket's written-bytes count once the piece is in it.
    target: u64,
    pub len: u64,
    /// Bytes past the budget the programs dropped (the storage server sent too much).
    pub excess: u64,
}

fn client_gone() -> RelayError {
    RelayError::Client(io::Error::new(
        io::ErrorKind::ConnectionReset,
        "client socket failed while the kernel moved the body",
    ))
}

/// Grants `len` bytes to the flow `up` → client and waits until all are redirected. `after`
/// is the client socket's written-bytes count once the pieces redirected before this one are
/// in it (0 if none is pending): this piece's bytes count from there.
#[allow(clippy::too_many_arguments)]
pub async fn spend(
    splice: &SockmapSplice,
    up: &mut TcpStream,
    client: &TcpStream,
    client_cookie: u64,
    len: u64,
    after: u64,
    upstream_timeout: Duration,
    metrics: &ServerMetrics,
) -> Result<Delivery, RelayError> {
    let baseline = written_bytes(client)
        .map_err(RelayError::Client)?
        .total
        .max(after);
    let flow = splice
        .begin(&*up, client_cookie, len)
        .map_err(|e| RelayError::SockmapRefused(e.to_string()))?;
    let up_watch = SocketWatch::new(up).map_err(RelayError::Upstream)?;
    let mut last_budget = len;
    let mut last_progress = Instant::now();
    let mut closed_at: Option<Instant> = None;
    loop {
        let Some(state) = flow.state() else {
            return Err(RelayError::Upstream(io::Error::other("sockmap flow vanished")));
        };
        if state.failed != 0 {
            return Err(client_gone());
        }
        if state.budget == 0 {
            break;
        }
        let now = Instant::now();
        if state.budget != last_budget {
            last_budget = state.budget;
            last_progress = now;
        } else if now - last_progress > upstream_timeout {
            return Err(RelayError::UpstreamStalled(upstream_timeout));
        }
        if connection_failed(client) {
            return Err(client_gone());
        }
        if peer_gone(&*up) {
            // Bytes received before the close may still be going through the programs.
            let since = *closed_at.get_or_insert(now);
            if now - since > CLOSE_GRACE {
                return Err(RelayError::UpstreamEnded {
                    missing: state.budget,
                });
            }
        }
        tokio::select! {
            _ = flow.event() => {}
            // Bytes may sit in the receive queue until the stream parser takes them, so only a
            // close or an error counts here.
            _ = up_watch.wait(Want::Closed, FAULT_CHECK), if closed_at.is_none() => {}
            _ = tokio::time::sleep(FAULT_CHECK) => {}
        }
    }
    let state = flow.end();
    metrics.body_bytes(BodyPathLabel::ProxySockmap, state.redirected);
    Ok(Delivery {
        target: baseline + len,
        len,
        excess: state.excess,
    })
}

impl Delivery {
    /// The client socket's written-bytes count once this piece is in it.
    pub fn target(&self) -> u64 {
        self.target
    }

    /// Waits until the client socket holds every byte of the piece; fails if the client stops
    /// taking bytes for `stall` or its connection fails. Returns how long it waited.
    pub async fn wait(&self, client: &TcpStream, stall: Duration) -> Result<Duration, RelayError> {
        let start = Instant::now();
        let mut last = 0;
        let mut last_change = start;
        let mut pause = Duration::ZERO;
        loop {
            let now = written_bytes(client).map_err(RelayError::Client)?.total;
            if now >= self.target {
                return Ok(start.elapsed());
            }
            let t = Instant::now();
            if now != last {
                last = now;
                last_change = t;
            } else if t - last_change > stall {
                return Err(RelayError::ClientStalled(stall));
            }
            if connection_failed(client) {
                return Err(client_gone());
            }
            // A fast client takes a piece within a millisecond or two: look every millisecond
            // (the timer's grain) for the first 20 ms, then every 10 ms for a slow one.
            if pause.is_zero() {
                tokio::task::yield_now().await;
                pause = Duration::from_millis(1);
            } else {
                tokio::time::sleep(pause).await;
                if t - start > Duration::from_millis(20) {
                    pause = Duration::from_millis(10);
                }
            }
        }
    }
}
