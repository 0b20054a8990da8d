//! The reverse proxy for misses, copy path: ask a storage server for the client's bytes (the
//! client's range travels upstream), relay the head the edge builds from the upstream head,
//! then move exactly Content-Length body bytes. This is the last fallback of the design; the
//! splice(2) and sockmap paths replace the body copy.
//!
//! Failover: a connect failure, timeout or 5xx before any byte reached the client moves on to
//! the next server. Once the client has the head, an upstream that dies closes the client's
//! connection: a short body is never framed as complete. Bytes past the announced length never
//! reach the client, and such an upstream connection is not reused.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::body_relay::{has_pending_bytes, relay, RelayError};
use super::pool::UpstreamPool;
use crate::http::request::{Method, RequestHead};
use crate::http::response::HeadBuilder;
use crate::metrics::ServerMetrics;

/// Largest upstream response head accepted.
const MAX_UPSTREAM_HEAD: usize = 16 * 1024;
/// Upstream headers relayed to the client.
const RELAYED: &[&str] = &[
    "content-type",
    "content-range",
    "etag",
    "last-modified",
    "accept-ranges",
];

/// How a proxied request ended.
pub enum ProxyResult {
    /// A response went to the client; whether the client connection may be reused.
    Sent { keep_alive: bool },
    /// Nothing went to the client: answer with this status and message.
    Failed { status: u16, message: String },
}

/// Why one upstream attempt failed.
enum Attempt {
    /// Retry elsewhere (nothing reached the client); `timeout` says whether it timed out.
    Retry { reason: String, timeout: bool },
    /// The client already has part of the response: the connection must close.
    Broken,
}

struct UpstreamHead {
    status: u16,
    headers: Vec<(String, String)>,
    content_length: Option<u64>,
    close: bool,
    /// Bytes read past the head (the start of the body).
    rest: Vec<u8>,
}

/// The request line and headers sent upstream: the client's method, path, query, range and
/// validators.
fn upstream_request(head: &RequestHead, server: SocketAddr) -> String {
    let method = if head.method() == &Method::Head {
        "HEAD"
    } else {
        "GET"
    };
    let mut r = format!("{method} {}", head.path);
    if let Some(q) = &head.query {
        r.push('?');
        r.push_str(q);
    }
    r.push_str(&format!(
        " HTTP/1.1\r\nHost: {server}\r\nUser-Agent: strata-edge\r\n"
    ));
    for (name, value) in [
        ("Range", &head.range),
        ("If-Range", &head.if_range),
        ("If-None-Match", &head.if_none_match),
        ("If-Modified-Since", &head.if_modified_since),
    ] {
        if let Some(v) = value {
            r.push_str(&format!("{name}: {v}\r\n"));
        }
    }
    r.push_str("\r\n");
    r
}

async fn read_upstream_head(up: &mut TcpStream, timeout: Duration) -> Result<UpstreamHead, Attempt> {
    let retry = |reason: String| Attempt::Retry {
        reason,
        timeout: false,
    };
    let mut buf = Vec::with_capacity(2048);
    loop {
        let mut chunk = [0u8; 4096];
        let n = match tokio::time::timeout(timeout, up.read(&mut chunk)).await {
            Err(_) => {
                return Err(Attempt::Retry {
                    reason: format!("no response head within {timeout:?}"),
                    timeout: true,
                })
            }
            Ok(Err(e)) => return Err(retry(format!("reading response head: {e}"))),
            Ok(Ok(0)) => return Err(retry("closed before a response head".into())),
            Ok(Ok(n)) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut resp = httparse::Response::new(&mut headers);
        match resp.parse(&buf) {
            Ok(httparse::Status::Complete(used)) => {
                let status = resp.code.unwrap_or(502);
                let mut out = UpstreamHead {
                    status,
                    headers: Vec::new(),
                    content_length: None,
                    close: false,
                    rest: buf[used..].to_vec(),
                };
                for h in resp.headers.iter() {
                    let value = String::from_utf8_lossy(h.value).trim().to_string();
                    let name = h.name.to_ascii_lowercase();
                    if name == "content-length" {
                        out.content_length = value.parse().ok();
                    } else if name == "connection" && value.eq_ignore_ascii_case("close") {
                        out.close = true;
                    } else if name == "transfer-encoding" {
                        return Err(retry("chunked upstream responses are not supported".into()));
                    } else if RELAYED.contains(&name.as_str()) {
                        out.headers.push((h.name.to_string(), value));
                    }
                }
                return Ok(out);
            }
            Ok(httparse::Status::Partial) if buf.len() < MAX_UPSTREAM_HEAD => {}
            Ok(httparse::Status::Partial) => return Err(retry("response head too large".into())),
            Err(e) => return Err(retry(format!("malformed response head: {e}"))),
        }
    }
}

/// One attempt against `server`.
async fn attempt(
    client: &mut TcpStream,
    head: &RequestHead,
    server: SocketAddr,
    pool: &UpstreamPool,
    metrics: &ServerMetrics,
    stall: Duration,
) -> Result<bool, Attempt> {
    let timeout = pool.settings().response_timeout;
    let request = upstream_request(head, server);
    // A pooled connection may have been closed by the server meanwhile: one fresh retry.
    let (mut up, mut upstream_head) = {
        let mut tries = 0;
        loop {
            tries += 1;
            let (mut up, reused) = pool.checkout(server).await.map_err(|e| Attempt::Retry {
                timeout: e.kind() == std::io::ErrorKind::TimedOut,
                reason: format!("connect: {e}"),
            })?;
            if let Err(e) = up.write_all(request.as_bytes()).await {
                if reused && tries == 1 {
                    continue;
                }
                return Err(Attempt::Retry {
                    reason: format!("sending request: {e}"),
                    timeout: false,
                });
            }
            match read_upstream_head(&mut up, timeout).await {
                Ok(h) => break (up, h),
                Err(Attempt::Retry { .. }) if reused && tries == 1 => continue,
                Err(e) => return Err(e),
            }
        }
    };
    if upstream_head.status >= 500 {
        return Err(Attempt::Retry {
            reason: format!("answered {}", upstream_head.status),
            timeout: false,
        });
    }
    let has_body =
        head.method() != &Method::Head && upstream_head.status != 304 && upstream_head.status >= 200;
    let len = match (has_body, upstream_head.content_length) {
        (false, _) => 0,
        (true, Some(n)) => n,
        (true, None) => {
            return Err(Attempt::Retry {
                reason: "response without Content-Length".into(),
                timeout: false,
            })
        }
    };
    let mut builder = HeadBuilder::new(upstream_head.status);
    for (name, value) in &upstream_head.headers {
        builder = builder.header(name, value);
    }
    if upstream_head.status != 304 {
        builder = builder.header_u64("Content-Length", upstream_head.content_length.unwrap_or(len));
    }
    let client_head = builder.connection(head.keep_alive).finish();
    metrics.response(upstream_head.status);
    if tokio::time::timeout(stall, client.write_all(&client_head))
        .await
        .map_or(true, |r| r.is_err())
    {
        return Err(Attempt::Broken);
    }
    // The body: what came with the head, then exactly the rest.
    let mut clean = true;
    let rest = std::mem::take(&mut upstream_head.rest);
    let first = (rest.len() as u64).min(len) as usize;
    if rest.len() > first {
        clean = false; // extra bytes past the announced length: never forwarded, never reused
    }
    let path = pool.settings().proxy_path;
    metrics.body_started(path.label());
    if first > 0 {
        if tokio::time::timeout(stall, client.write_all(&rest[..first]))
            .await
            .map_or(true, |r| r.is_err())
        {
            return Err(Attempt::Broken);
        }
        metrics.body_bytes(path.label(), first as u64);
    }
    let left = len - first as u64;
    if let Err(e) = relay(path, &mut up, client, left, timeout, stall, metrics).await {
        match e {
            RelayError::UpstreamEnded { .. } | RelayError::UpstreamStalled(_) | RelayError::Upstream(_) => {
                pool.failure(server);
                tracing::warn!(%server, error = %e, "upstream failed mid-body; closing the client connection");
            }
            _ => tracing::debug!(%server, error = %e, "client left mid-body; upstream connection dropped"),
        }
        return Err(Attempt::Broken);
    }
    if has_pending_bytes(&up) {
        clean = false; // it sent past the announced length
    }
    pool.success(server);
    if clean && !upstream_head.close {
        pool.checkin(server, up);
    }
    Ok(head.keep_alive)
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
    for &server in servers {
        match attempt(client, head, server, pool, metrics, stall).await {
            Ok(keep_alive) => return ProxyResult::Sent { keep_alive },
            Err(Attempt::Broken) => return ProxyResult::Sent { keep_alive: false },
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
