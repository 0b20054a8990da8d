//! The sockmap body mover: the kernel's sk_skb programs move the bytes from the storage
//! server's socket to the client's, never through userspace.
//!
//! A plain GET is fetched in pieces of `max_in_flight_per_client` bytes (successive range
//! requests, each guarded by If-Range and sent over a connection that has not been in the
//! sockmap: see [`retire`]), because the kernel has no backpressure between the two sockets:
//! a piece is granted only when the one before the last `sockmap_pieces_in_flight` (default 1)
//! is in the client socket, so at most that many pieces per client sit in kernel queues, and
//! the next piece's request goes out while the previous one drains. A client that lags (a
//! piece took longer than `lag_after` to reach its socket), a piece that would exceed the total
//! in-flight cap, or a body the storage server did not cut into pieces above one piece in
//! size, moves by splice(2) instead, whose pipe pushes back.

use std::collections::VecDeque;
use std::time::Duration;

use strata_http::range::{parse_range_header, RangeHeader, RangeSpec};
use strata_http::request::{Method, RequestHead};
use strata_kernel::body_meter::BodyMeter as _;
use strata_kernel::sockmap_splice::SockmapSplice;

use super::body_relay::{relay, ProxyPath};
use super::exchange::exchange;
use super::pool::UpstreamPool;
use super::relay_error::RelayError;
use super::sockmap_relay::{spend, Delivery};
use super::transfer::Transfer;
use super::upstream_head::{upstream_request, UpstreamAsk};

/// The bytes a plain GET asks for, before the length is known: (first, last if given). None
/// when the request cannot be cut into pieces (HEAD, a query, If-Range, several or suffix
/// ranges): it is proxied as one body.
pub fn piece_window(head: &RequestHead) -> Option<(u64, Option<u64>)> {
    if head.method() != &Method::Get || head.query.is_some() || head.if_range.is_some() {
        return None;
    }
    let Some(range) = &head.range else {
        return Some((0, None));
    };
    match parse_range_header(range) {
        Ok(RangeHeader::Bytes(specs)) if specs.len() == 1 => match specs[0] {
            RangeSpec::FromTo(first, last) => Some((first, Some(last))),
            RangeSpec::From(first) => Some((first, None)),
            RangeSpec::Suffix(_) => None,
        },
        _ => None,
    }
}

/// How many pieces of one body may be redirected toward the client and not yet be in its
/// socket (`sockmap_pieces_in_flight`, at least 1). With more than one, the next piece's flow
/// starts as soon as the previous one is redirected, while its bytes still drain into the
/// client socket (the new ones queue behind them).
fn pieces_in_flight(pool: &UpstreamPool) -> usize {
    pool.settings().sockmap_pieces_in_flight.max(1)
}

/// The size of one piece: the bytes one client may have in flight, shared by the pieces
/// allowed in flight at once.
pub fn piece_size(pool: &UpstreamPool) -> u64 {
    (pool.settings().max_in_flight_per_client / pieces_in_flight(pool) as u64).max(64 * 1024)
}

/// A body the edge fetches piece by piece.
pub struct Pieces {
    /// First and last byte the client gets.
    pub first: u64,
    pub last: u64,
    pub total: u64,
    /// Last byte of the piece already asked for.
    pub piece_last: u64,
    /// Validator the later pieces must still match.
    pub validator: Option<String>,
}

/// The send buffer a client gets when it first receives through the sockmap: room for a whole
/// piece, so that a fast client's piece goes in at once.
fn client_send_buffer(pool: &UpstreamPool) -> usize {
    pool.settings().max_in_flight_per_client.min(16 << 20) as usize
}

/// Moves a whole body of `t.len` bytes in one sockmap grant. Some(false) when it moved (the
/// upstream connection is then closed, not pooled: see [`retire`]); None
/// when the sockmap cannot take it (too large for one piece, over the in-flight cap, or refused
/// by the kernel) and the body should move by splice instead, nothing having been sent.
pub async fn whole(t: &mut Transfer<'_>, splice: &SockmapSplice) -> Result<Option<bool>, RelayError> {
    let settings = t.pool.settings();
    if t.len > settings.max_in_flight_per_client || !splice.reserve(t.len, settings.max_in_flight_total) {
        return Ok(None);
    }
    let done = sockmap_piece(t, splice).await;
    splice.release(t.len);
    match done {
        Ok(()) => {
            t.metrics.body_started(ProxyPath::Sockmap.label());
            retire(t.up);
            Ok(Some(false))
        }
        Err(RelayError::SockmapRefused(why)) => {
            tracing::debug!(%why, "sockmap refused this body; it moves by splice");
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// One sockmap piece, spent and delivered into the client socket.
async fn sockmap_piece(t: &mut Transfer<'_>, splice: &SockmapSplice) -> Result<(), RelayError> {
    let cookie = splice
        .add_client(&*t.client, client_send_buffer(t.pool))
        .map_err(|e| RelayError::Client(std::io::Error::other(e.to_string())))?;
    let timeout = t.pool.settings().response_timeout;
    let d = spend(splice, t.up, t.client, cookie, t.len, 0, timeout, t.metrics).await?;
    d.wait(t.client, t.stall).await?;
    Ok(())
}

/// Moves a body piece by piece (see the module comment), starting on `path`: through the
/// sockmap when it is `Sockmap` and the programs are loaded, else the first piece and then the
/// whole rest by splice or copy. True if every piece ended exactly and the upstream connection
/// may go back to the pool.
pub async fn pieces(
    t: &mut Transfer<'_>,
    splice: Option<&SockmapSplice>,
    mut plan: Pieces,
    path: ProxyPath,
) -> Result<bool, RelayError> {
    let settings = t.pool.settings();
    let piece = piece_size(t.pool);
    let fallback = if path == ProxyPath::Copy {
        ProxyPath::Copy
    } else {
        ProxyPath::Splice
    };
    let sockmap = splice.filter(|_| path == ProxyPath::Sockmap);
    let cookie = match sockmap {
        Some(splice) => Some(
            splice
                .add_client(&*t.client, client_send_buffer(t.pool))
                .map_err(|e| RelayError::Client(std::io::Error::other(e.to_string())))?,
        ),
        None => None,
    };
    let window = pieces_in_flight(t.pool);
    let mut offset = plan.first;
    let mut sockmap_ok = sockmap.is_some();
    // Pieces redirected and not yet confirmed in the client socket, oldest first.
    let mut pending: VecDeque<Delivery> = VecDeque::new();
    let mut clean = true;
    let mut carried_sockmap = false;
    t.metrics
        .body_started(if sockmap_ok { ProxyPath::Sockmap } else { fallback }.label());
    loop {
        let len = plan.piece_last - offset + 1;
        // At most `pieces_in_flight` pieces wait for the client socket at once.
        while pending.len() >= window {
            let Some(d) = pending.pop_front() else { break };
            let waited = confirm(t, sockmap, d, &mut clean).await?;
            if sockmap_ok && waited > settings.lag_after {
                sockmap_ok = false;
                tracing::debug!(?waited, "client lags; the rest of its body moves by splice");
            }
        }
        let mut spliced = false;
        let grant = match (sockmap_ok, sockmap, cookie) {
            // A piece over the total in-flight cap goes by splice.
            (true, Some(splice), Some(cookie)) if splice.reserve(len, settings.max_in_flight_total) => {
                Some((splice, cookie))
            }
            _ => None,
        };
        if let Some((splice, cookie)) = grant {
            carried_sockmap = true;
            // This piece's bytes queue behind those of the pieces before it.
            let after = pending.back().map_or(0, Delivery::target);
            match spend(
                splice,
                t.up,
                t.client,
                cookie,
                len,
                after,
                settings.response_timeout,
                t.metrics,
            )
            .await
            {
                Ok(d) => {
                    pending.push_back(d);
                    spliced = true;
                }
                Err(e) => {
                    splice.release(len);
                    match e {
                        RelayError::SockmapRefused(why) => {
                            tracing::debug!(%why, "sockmap refused this piece; it moves by splice");
                            sockmap_ok = false;
                        }
                        e => return Err(e),
                    }
                }
            }
        }
        if !spliced {
            // Nothing may reach the client socket ahead of the pieces already redirected.
            while let Some(d) = pending.pop_front() {
                confirm(t, sockmap, d, &mut clean).await?;
            }
            relay(
                fallback,
                t.up,
                t.client,
                len,
                settings.response_timeout,
                t.stall,
                t.metrics,
            )
            .await?;
        }
        offset = plan.piece_last + 1;
        if offset > plan.last {
            break;
        }
        // Ask for the next piece while this one drains; a lagging client gets the rest at once.
        let last = if sockmap_ok {
            offset.saturating_add(piece - 1).min(plan.last)
        } else {
            plan.last
        };
        let ask = UpstreamAsk {
            head: t.head,
            range: Some((offset, last)),
            if_range: plan.validator.as_deref(),
        };
        if carried_sockmap {
            // Every byte of the piece has left the upstream socket: the next piece goes over
            // a connection that has not been in the sockmap (see `retire`).
            let (fresh, _) = t.pool.checkout(t.server).await.map_err(RelayError::Upstream)?;
            let used = std::mem::replace(&mut *t.up, fresh);
            retire(&used);
            carried_sockmap = false;
        }
        let request = upstream_request(&ask, t.server);
        let next = exchange(t.up, &request, settings.response_timeout)
            .await
            .map_err(|f| RelayError::Upstream(std::io::Error::other(f.reason)))?;
        let expected = next.status == 206
            && next
                .content_range
                .is_some_and(|cr| cr.first == offset && cr.last == last && cr.total == plan.total);
        if !expected {
            return Err(RelayError::Upstream(std::io::Error::other(format!(
                "asked for bytes {offset}-{last}/{} and got {} {:?} (the file changed?)",
                plan.total,
                next.status,
                next.header("content-range")
            ))));
        }
        plan.piece_last = last;
    }
    while let Some(d) = pending.pop_front() {
        confirm(t, sockmap, d, &mut clean).await?;
    }
    if carried_sockmap {
        retire(t.up);
    }
    Ok(clean && !carried_sockmap)
}

/// Waits until a redirected piece is in the client socket and returns its bytes to the
/// in-flight budget; returns how long it waited.
async fn confirm(
    t: &Transfer<'_>,
    sockmap: Option<&SockmapSplice>,
    d: Delivery,
    clean: &mut bool,
) -> Result<Duration, RelayError> {
    let waited = d.wait(t.client, t.stall).await;
    if let Some(splice) = sockmap {
        splice.release(d.len);
    }
    *clean &= d.excess == 0;
    waited
}

/// An upstream connection that carried a sockmap flow is closed, never pooled: a connection
/// whose body went through the sockmap moves every later body more slowly, whichever path
/// (16 connections on loopback with BBR, this machine's default: splice 13.5 against 24.7
/// Gbit/s, sockmap 9 against 18; TCP_QUICKACK does not undo it). A new connection costs one
/// connect. It closes with a reset (SO_LINGER 0) at a message boundary, so the edge keeps no
/// TIME_WAIT socket per body and cannot run out of ports toward one storage server.
fn retire(up: &tokio::net::TcpStream) {
    if let Err(e) = up.set_zero_linger() {
        tracing::debug!(error = %e, "could not set SO_LINGER 0 on a retired upstream connection");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(range: Option<&str>) -> RequestHead {
        RequestHead {
            method: Some(Method::Get),
            path: "/t/c/a".into(),
            range: range.map(str::to_string),
            ..Default::default()
        }
    }

    #[test]
    fn plain_gets_and_single_ranges_are_cut_into_pieces_others_are_not() {
        assert_eq!(piece_window(&get(None)), Some((0, None)));
        assert_eq!(piece_window(&get(Some("bytes=10-99"))), Some((10, Some(99))));
        assert_eq!(piece_window(&get(Some("bytes=10-"))), Some((10, None)));
        assert_eq!(piece_window(&get(Some("bytes=-10"))), None);
        assert_eq!(piece_window(&get(Some("bytes=0-1,5-6"))), None);
        let mut q = get(None);
        q.query = Some("bytes=0-9".into());
        assert_eq!(piece_window(&q), None);
        let mut h = get(None);
        h.method = Some(Method::Head);
        assert_eq!(piece_window(&h), None);
    }
}
