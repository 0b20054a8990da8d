//! The reverse proxy for misses: ask a storage server for the client's bytes (the client's
//! range travels upstream), write the client's head from the upstream head, then move exactly
//! the body bytes by the configured path (sockmap, splice or copy).
//!
//! On the sockmap path a plain GET is fetched in pieces of `max_in_flight_per_client` bytes (successive
//! range requests on the same pooled connection, each guarded by If-Range), because the kernel
//! has no backpressure between the two sockets: a piece is granted only when the previous one
//! is in the client socket, so at most one piece per client sits in kernel queues, and the next
//! piece's request goes out while the previous one drains. A client that lags (a piece took
//! longer than `lag_after` to reach its socket), a piece that would exceed the total in-flight
//! cap, or a body the storage server did not cut into pieces above one piece in size, moves by
//! splice(2) instead, whose pipe pushes back.
//!
//! Failover: a connect failure, timeout or 5xx before any byte reached the client moves on to
//! the next server. Once the client has the head, an upstream that dies closes the client's
//! connection: a short body is never framed as complete. Bytes past the announced length never
//! reach the client, and such an upstream connection is not reused.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::body_relay::{has_pending_bytes, relay, ProxyPath, RelayError};
use super::pool::UpstreamPool;
use super::sockmap_relay::{spend, Delivery};
use super::upstream_head::{read_upstream_head, upstream_request, UpstreamAsk, UpstreamHead};
use crate::http::range::{parse_range_header, RangeHeader, RangeSpec};
use crate::http::request::{Method, RequestHead};
use crate::http::response::HeadBuilder;
use crate::kernel::sockmap_splice::SockmapSplice;
use crate::metrics::ServerMetrics;

/// How a proxied request ended.
pub enum ProxyResult {
    /// A response went to the client; whether the client connection may be reused, and the
    /// servers that answered 404 before another served it (they lost the asset).
    Sent {
        keep_alive: bool,
        lost_on: Vec<SocketAddr>,
    },
    /// Nothing went to the client: answer with this status and message.
    Failed { status: u16, message: String },
}

/// Why one upstream attempt failed.
enum Attempt {
    /// Retry elsewhere (nothing reached the client); `timeout` says whether it timed out.
    Retry { reason: String, timeout: bool },
    /// The storage server could not cut the body into pieces (an empty file answers 416 to a
    /// range): ask the same server again for the whole body.
    Whole,
    /// The client already has part of the response: the connection must close.
    Broken,
    /// The server does not hold the asset (404); another server may.
    NotHere,
}

fn retry(reason: String) -> Attempt {
    Attempt::Retry {
        reason,
        timeout: false,
    }
}

/// The bytes a plain GET asks for, before the length is known: (first, last if given). None
/// when the request cannot be cut into pieces (HEAD, a query, If-Range, several or suffix
/// ranges): it is proxied as one body.
fn piece_window(head: &RequestHead) -> Option<(u64, Option<u64>)> {
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

/// A body the edge fetches piece by piece.
struct Pieces {
    /// First and last byte the client gets.
    first: u64,
    last: u64,
    total: u64,
    /// Last byte of the piece already asked for.
    piece_last: u64,
    /// Validator the later pieces must still match.
    validator: Option<String>,
}

/// Sends `request` on `up` and reads the response head.
async fn exchange(up: &mut TcpStream, request: &str, timeout: Duration) -> Result<UpstreamHead, Attempt> {
    up.write_all(request.as_bytes())
        .await
        .map_err(|e| retry(format!("sending request: {e}")))?;
    read_upstream_head(up, timeout).await.map_err(|f| Attempt::Retry {
        reason: f.reason,
        timeout: f.timeout,
    })
}

/// A connection to `server` with the answer to `ask`; a pooled connection the server closed
/// meanwhile is replaced by a fresh one once.
async fn first_exchange(
    pool: &UpstreamPool,
    server: SocketAddr,
    ask: &UpstreamAsk<'_>,
) -> Result<(TcpStream, UpstreamHead), Attempt> {
    let timeout = pool.settings().response_timeout;
    let request = upstream_request(ask, server);
    let mut tries = 0;
    loop {
        tries += 1;
        let (mut up, reused) = pool.checkout(server).await.map_err(|e| Attempt::Retry {
            timeout: e.kind() == std::io::ErrorKind::TimedOut,
            reason: format!("connect: {e}"),
        })?;
        match exchange(&mut up, &request, timeout).await {
            Ok(h) => return Ok((up, h)),
            Err(Attempt::Retry { .. }) if reused && tries == 1 => continue,
            Err(e) => return Err(e),
        }
    }
}

/// One attempt against `server`; `pieces` allows cutting the body into pieces.
async fn attempt(
    client: &mut TcpStream,
    head: &RequestHead,
    server: SocketAddr,
    pool: &UpstreamPool,
    metrics: &ServerMetrics,
    stall: Duration,
    pieces: bool,
) -> Result<bool, Attempt> {
    let settings = pool.settings();
    let sockmap = pool.sockmap();
    let piece = settings.max_in_flight_per_client.max(64 * 1024);
    let window = if pieces && sockmap.is_some() {
        piece_window(head)
    } else {
        None
    };
    let first_ask = window.map(|(first, last)| {
        let end = first.saturating_add(piece - 1);
        (first, last.map_or(end, |l| l.min(end)))
    });
    let ask = UpstreamAsk {
        head,
        range: first_ask,
        if_range: None,
    };
    let (mut up, upstream_head) = first_exchange(pool, server, &ask).await?;
    if upstream_head.status >= 500 {
        return Err(retry(format!("answered {}", upstream_head.status)));
    }
    if upstream_head.status == 404 {
        return Err(Attempt::NotHere);
    }
    let mut plan = None;
    if let (Some((first, last)), Some(asked)) = (window, first_ask) {
        match upstream_head.status {
            206 => {
                let Some(cr) = upstream_head.content_range else {
                    return Err(retry("answered 206 without a Content-Range".into()));
                };
                if cr.first != asked.0 || cr.last > asked.1 {
                    return Err(retry(format!(
                        "answered bytes {}-{} to a request for {}-{}",
                        cr.first, cr.last, asked.0, asked.1
                    )));
                }
                plan = Some(Pieces {
                    first,
                    last: last.map_or(cr.total - 1, |l| l.min(cr.total - 1)),
                    total: cr.total,
                    piece_last: cr.last,
                    validator: upstream_head
                        .header("etag")
                        .or(upstream_head.header("last-modified"))
                        .map(str::to_string),
                });
            }
            416 if head.range.is_none() => return Err(Attempt::Whole),
            _ => {}
        }
    }
    let has_body =
        head.method() != &Method::Head && upstream_head.status != 304 && upstream_head.status >= 200;
    // The client's head.
    let (status, len) = match &plan {
        Some(p) => (if head.range.is_some() { 206 } else { 200 }, p.last - p.first + 1),
        None => match (has_body, upstream_head.content_length) {
            (false, _) => (upstream_head.status, 0),
            (true, Some(n)) => (upstream_head.status, n),
            (true, None) => return Err(retry("response without Content-Length".into())),
        },
    };
    let mut builder = HeadBuilder::new(status);
    for (name, value) in &upstream_head.headers {
        if plan.is_none() || !name.eq_ignore_ascii_case("content-range") {
            builder = builder.header(name, value);
        }
    }
    if let (Some(p), 206) = (&plan, status) {
        builder = builder.header(
            "Content-Range",
            &format!("bytes {}-{}/{}", p.first, p.last, p.total),
        );
    }
    if status != 304 {
        let announced = match (&plan, upstream_head.content_length) {
            (None, Some(n)) => n, // HEAD relays the length the storage server announced
            _ => len,
        };
        builder = builder.header_u64("Content-Length", announced);
    }
    let client_head = builder.connection(head.keep_alive).finish();
    metrics.response(status);
    if tokio::time::timeout(stall, client.write_all(&client_head))
        .await
        .map_or(true, |r| r.is_err())
    {
        return Err(Attempt::Broken);
    }
    let moved = match (plan, sockmap) {
        (Some(plan), Some(splice)) => {
            pieces_body(client, &mut up, server, head, plan, splice, pool, metrics, stall).await
        }
        _ => {
            let path = if !(200..300).contains(&status) {
                ProxyPath::Copy // error bodies are a line of text
            } else {
                settings.proxy_path
            };
            whole_body(client, &mut up, len, path, sockmap, pool, metrics, stall).await
        }
    };
    let clean = match moved {
        Ok(clean) => clean,
        Err(e) => {
            match e {
                RelayError::UpstreamEnded { .. }
                | RelayError::UpstreamStalled(_)
                | RelayError::Upstream(_) => {
                    pool.failure(server);
                    tracing::warn!(%server, error = %e, "upstream failed mid-body; closing the client connection");
                }
                _ => {
                    tracing::debug!(%server, error = %e, "client left mid-body; upstream connection dropped")
                }
            }
            return Err(Attempt::Broken);
        }
    };
    pool.success(server);
    if clean && !upstream_head.close && !has_pending_bytes(&up) {
        pool.checkin(server, up);
    }
    Ok(head.keep_alive)
}

/// The send buffer a client gets when it first receives through the sockmap: room for a whole
/// piece, so that a fast client's piece goes in at once.
fn client_send_buffer(pool: &UpstreamPool) -> usize {
    pool.settings().max_in_flight_per_client.min(16 << 20) as usize
}

/// Moves a body of `len` bytes as the storage server sent it. True if the connection ended
/// exactly at the body's end.
#[allow(clippy::too_many_arguments)]
async fn whole_body(
    client: &mut TcpStream,
    up: &mut TcpStream,
    len: u64,
    path: ProxyPath,
    sockmap: Option<&std::sync::Arc<SockmapSplice>>,
    pool: &UpstreamPool,
    metrics: &ServerMetrics,
    stall: Duration,
) -> Result<bool, RelayError> {
    if len == 0 {
        return Ok(true);
    }
    let settings = pool.settings();
    if let (ProxyPath::Sockmap, Some(splice)) = (path, sockmap) {
        if len <= settings.max_in_flight_per_client && splice.reserve(len, settings.max_in_flight_total) {
            let done = sockmap_piece(client, up, splice, len, pool, metrics, stall).await;
            splice.release(len);
            match done {
                Ok((d, _)) => {
                    metrics.body_started(ProxyPath::Sockmap.label());
                    return Ok(d.excess == 0);
                }
                Err(RelayError::SockmapRefused(why)) => {
                    tracing::debug!(%why, "sockmap refused this body; it moves by splice");
                }
                Err(e) => return Err(e),
            }
        }
    }
    let path = if path == ProxyPath::Copy {
        ProxyPath::Copy
    } else {
        ProxyPath::Splice
    };
    metrics.body_started(path.label());
    relay(path, up, client, len, settings.response_timeout, stall, metrics).await?;
    Ok(true)
}

/// One sockmap piece, spent and delivered; returns the delivery and how long it took to reach
/// the client socket.
async fn sockmap_piece(
    client: &mut TcpStream,
    up: &mut TcpStream,
    splice: &SockmapSplice,
    len: u64,
    pool: &UpstreamPool,
    metrics: &ServerMetrics,
    stall: Duration,
) -> Result<(Delivery, Duration), RelayError> {
    let cookie = splice
        .add_client(&*client, client_send_buffer(pool))
        .map_err(|e| RelayError::Client(std::io::Error::other(e.to_string())))?;
    let d = spend(
        splice,
        up,
        client,
        cookie,
        len,
        pool.settings().response_timeout,
        metrics,
    )
    .await?;
    let waited = d.wait(client, stall).await?;
    Ok((d, waited))
}

/// Moves a body piece by piece (see the module comment). True if every piece ended exactly.
#[allow(clippy::too_many_arguments)]
async fn pieces_body(
    client: &mut TcpStream,
    up: &mut TcpStream,
    server: SocketAddr,
    head: &RequestHead,
    mut plan: Pieces,
    splice: &SockmapSplice,
    pool: &UpstreamPool,
    metrics: &ServerMetrics,
    stall: Duration,
) -> Result<bool, RelayError> {
    let settings = pool.settings();
    let piece = settings.max_in_flight_per_client.max(64 * 1024);
    let cookie = splice
        .add_client(&*client, client_send_buffer(pool))
        .map_err(|e| RelayError::Client(std::io::Error::other(e.to_string())))?;
    let mut offset = plan.first;
    let mut sockmap_ok = true;
    let mut pending: Option<Delivery> = None;
    let mut clean = true;
    metrics.body_started(ProxyPath::Sockmap.label());
    loop {
        let len = plan.piece_last - offset + 1;
        if let Some(d) = pending.take() {
            let waited = d.wait(client, stall).await;
            splice.release(d.len);
            let waited = waited?;
            clean &= d.excess == 0;
            if sockmap_ok && waited > settings.lag_after {
                sockmap_ok = false;
                tracing::debug!(?waited, "client lags; the rest of its body moves by splice");
            }
        }
        let mut spliced = false;
        if sockmap_ok && splice.reserve(len, settings.max_in_flight_total) {
            match spend(
                splice,
                up,
                client,
                cookie,
                len,
                settings.response_timeout,
                metrics,
            )
            .await
            {
                Ok(d) => {
                    pending = Some(d);
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
            relay(
                ProxyPath::Splice,
                up,
                client,
                len,
                settings.response_timeout,
                stall,
                metrics,
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
            head,
            range: Some((offset, last)),
            if_range: plan.validator.as_deref(),
        };
        let request = upstream_request(&ask, server);
        let next = exchange(up, &request, settings.response_timeout).await;
        let next = match next {
            Ok(h) => h,
            Err(Attempt::Retry { reason, .. }) => {
                return Err(RelayError::Upstream(std::io::Error::other(reason)));
            }
            Err(_) => {
                return Err(RelayError::Upstream(std::io::Error::other(
                    "piece request failed",
                )))
            }
        };
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
    if let Some(d) = pending {
        let waited = d.wait(client, stall).await;
        splice.release(d.len);
        waited?;
        clean &= d.excess == 0;
    }
    Ok(clean)
}

/// Proxies `head` to the first server of `servers` that answers.
pub async fn proxy(
    client: &mut TcpStream,
    head: &RequestHead,
    servers: &[SocketAddr],
    pool: &UpstreamPool,
    metrics: &ServerMetrics,
    stall: Duration,
) -> ProxyResult {
    let mut last = String::from("no storage server is configured for this tenant");
    let mut all_timeouts = !servers.is_empty();
    let mut lost_on = Vec::new();
    for &server in servers {
        let mut outcome = attempt(client, head, server, pool, metrics, stall, true).await;
        if let Err(Attempt::Whole) = outcome {
            outcome = attempt(client, head, server, pool, metrics, stall, false).await;
        }
        match outcome {
            Ok(keep_alive) => return ProxyResult::Sent { keep_alive, lost_on },
            Err(Attempt::Broken) => {
                return ProxyResult::Sent {
                    keep_alive: false,
                    lost_on,
                }
            }
            Err(Attempt::NotHere) => {
                tracing::debug!(%server, path = %head.path, "storage server does not hold this asset; trying the next");
                lost_on.push(server);
                all_timeouts = false;
                last = format!("{server} answered 404");
            }
            Err(Attempt::Whole) => {
                last = format!("{server} could not answer a range request");
                all_timeouts = false;
            }
            Err(Attempt::Retry { reason, timeout }) => {
                metrics.upstream_error(server);
                if pool.failure(server) {
                    tracing::warn!(%server, "storage server ejected after repeated failures");
                }
                tracing::info!(%server, %reason, "storage server failed; trying the next");
                all_timeouts &= timeout;
                last = format!("{server} {reason}");
            }
        }
    }
    if !servers.is_empty() && lost_on.len() == servers.len() {
        return ProxyResult::Failed {
            status: 404,
            message: format!("no such asset {} (no storage server holds it)", head.path),
        };
    }
    let status = if all_timeouts { 504 } else { 502 };
    ProxyResult::Failed {
        status,
        message: format!(
            "no storage server could serve {} (tried {}; last: {last})",
            head.path,
            servers.len()
        ),
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
