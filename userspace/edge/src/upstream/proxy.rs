//! The reverse proxy for misses, read top to bottom: pick a server → exchange heads (the
//! client's range travels upstream) → write the client's head from the upstream head → move the
//! body with the one [`BodyMover`] chosen for this response (sockmap, splice or copy: the
//! configured path, or under `auto` the one measured fastest for bodies like it) → return the
//! upstream connection to the pool.
//!
//! Failover: a connect failure, timeout or 5xx before any byte reached the client moves on to
//! the next server. Once the client has the head, an upstream that dies closes the client's
//! connection: a short body is never framed as complete. Bytes past the announced length never
//! reach the client, and such an upstream connection is not reused.
//!
//! An HTTPS client's body always takes the copy relay: the bytes must pass through rustls,
//! which sockmap and splice would bypass.

use std::net::SocketAddr;
use std::time::Duration;

use strata_http::request::{Method, RequestHead};
use strata_http::response::HeadBuilder;

use super::body_mover::BodyMover;
use super::body_relay::{copy_body, has_pending_bytes};
use super::exchange::first_exchange;
use super::pool::UpstreamPool;
use super::relay_error::RelayError;
use super::sockmap_mover::{piece_size, piece_window, Pieces};
use super::transfer::Transfer;
use super::upstream_head::{HeadFailure, UpstreamAsk};
use crate::client_stream::ClientStream;
use crate::delivery_policy::Kind;
use crate::metrics::ServerMetrics;

/// How a proxied request ended.
pub enum ProxyResult {
    /// A response went to the client; whether the client connection may be reused, and the
    /// servers that answered 404 before another served it (they lost the asset).
    Sent {
        keep_alive: bool,
        lost_on: Vec<SocketAddr>,
        /// Body bytes announced to the client (moved in full unless `keep_alive` is false).
        body_bytes: u64,
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

impl From<HeadFailure> for Attempt {
    fn from(f: HeadFailure) -> Attempt {
        Attempt::Retry {
            reason: f.reason,
            timeout: f.timeout,
        }
    }
}

/// One attempt against `server`; `pieces` allows cutting the body into pieces.
async fn attempt(
    client: &mut ClientStream,
    head: &RequestHead,
    server: SocketAddr,
    pool: &UpstreamPool,
    metrics: &ServerMetrics,
    stall: Duration,
    pieces: bool,
) -> Result<(bool, u64), Attempt> {
    let piece = piece_size(pool);
    let window = if pieces && pool.sockmap().is_some() && !client.is_tls() {
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
    crate::request_scope::note_upstream(server);
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
    let client_head = crate::request_scope::decorate(builder, status, Kind::Vod)
        .connection(head.keep_alive)
        .finish();
    metrics.response(status);
    if tokio::time::timeout(stall, client.send(&client_head))
        .await
        .map_or(true, |r| r.is_err())
    {
        return Err(Attempt::Broken);
    }
    let moved = match client.plain_mut() {
        Some(client) => {
            // `auto` chooses this body's path by what it measured for bodies like it.
            let measured = match pool.chooser() {
                Some(chooser) if has_body && len > 0 && (200..300).contains(&status) => {
                    let load = chooser.load_class(metrics.open_connections() as usize);
                    Some((chooser, chooser.choose(server.ip(), len, load)))
                }
                _ => None,
            };
            let path = measured
                .as_ref()
                .map_or(pool.settings().proxy_path, |(_, choice)| choice.path);
            let mover = BodyMover::choose(pool, status, plan, path);
            let mut transfer = Transfer {
                client,
                up: &mut up,
                server,
                head,
                len,
                pool,
                metrics,
                stall,
            };
            let moved = mover.run(&mut transfer).await;
            if let Some((chooser, choice)) = &measured {
                chooser.record(choice, if moved.is_ok() { len } else { 0 });
            }
            moved
        }
        None => {
            let timeout = pool.settings().response_timeout;
            copy_body(&mut up, client, len, timeout, stall, metrics)
                .await
                .map(|()| true)
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
    Ok((head.keep_alive, if has_body { len } else { 0 }))
}

/// Proxies `head` to the first server of `servers` that answers.
pub async fn proxy(
    client: &mut ClientStream,
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
            Ok((keep_alive, body_bytes)) => {
                return ProxyResult::Sent {
                    keep_alive,
                    lost_on,
                    body_bytes,
                }
            }
            Err(Attempt::Broken) => {
                return ProxyResult::Sent {
                    keep_alive: false,
                    lost_on,
                    body_bytes: 0,
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
