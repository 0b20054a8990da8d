//! The storage-tier side of one exchange: the request line and headers the edge sends, and the
//! response head it reads back, exactly (peeked, then consumed to its last byte), so every body
//! byte is still on the socket for the splice paths.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use strata_http::request::{Method, RequestHead};

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

/// A parsed upstream response head.
#[derive(Debug, Default)]
pub struct UpstreamHead {
    pub status: u16,
    /// Headers to relay, as received.
    pub headers: Vec<(String, String)>,
    pub content_length: Option<u64>,
    /// `Content-Range: bytes FIRST-LAST/TOTAL`.
    pub content_range: Option<ContentRange>,
    pub close: bool,
    /// `Age` (seconds), 0 when absent.
    pub age: u64,
}

impl UpstreamHead {
    /// A relayed header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A satisfied range as a 206 response states it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ContentRange {
    pub first: u64,
    pub last: u64,
    pub total: u64,
}

/// Parses `bytes FIRST-LAST/TOTAL` (not the unsatisfied `bytes */TOTAL` form).
pub fn parse_content_range(value: &str) -> Option<ContentRange> {
    let rest = value.trim().strip_prefix("bytes ")?;
    let (span, total) = rest.split_once('/')?;
    let (first, last) = span.split_once('-')?;
    let r = ContentRange {
        first: first.trim().parse().ok()?,
        last: last.trim().parse().ok()?,
        total: total.trim().parse().ok()?,
    };
    (r.first <= r.last && r.last < r.total).then_some(r)
}

/// Why reading a response head failed.
#[derive(Debug)]
pub struct HeadFailure {
    pub reason: String,
    pub timeout: bool,
}

/// What the edge asks a storage server for.
pub struct UpstreamAsk<'a> {
    pub head: &'a RequestHead,
    /// A range the edge chose instead of the client's (a piece of the body).
    pub range: Option<(u64, u64)>,
    /// Validator that must still match for a later piece (If-Range: a changed file answers
    /// 200, which the edge refuses to splice into the middle of a response).
    pub if_range: Option<&'a str>,
}

/// The request line and headers sent upstream: the client's method, path, query and
/// validators, and the client's range or the edge's piece of it.
pub fn upstream_request(ask: &UpstreamAsk<'_>, server: SocketAddr) -> String {
    let head = ask.head;
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
    let piece = ask.range.map(|(first, last)| format!("bytes={first}-{last}"));
    let (range, if_range) = match &piece {
        Some(p) => (Some(p), ask.if_range.map(str::to_string)),
        None => (head.range.as_ref(), head.if_range.clone()),
    };
    for (name, value) in [
        ("Range", range),
        ("If-Range", if_range.as_ref()),
        ("If-None-Match", head.if_none_match.as_ref()),
        ("If-Modified-Since", head.if_modified_since.as_ref()),
    ] {
        if let Some(v) = value {
            r.push_str(&format!("{name}: {v}\r\n"));
        }
    }
    if head.hop {
        r.push_str(strata_http::request::HOP_HEADER);
        r.push_str(": 1\r\n");
    }
    r.push_str("\r\n");
    r
}

/// Reads one response head and nothing more: peeks, parses, and consumes only the head's bytes.
pub async fn read_upstream_head(up: &mut TcpStream, timeout: Duration) -> Result<UpstreamHead, HeadFailure> {
    let fail = |reason: String| HeadFailure {
        reason,
        timeout: false,
    };
    // Bytes consumed so far: all of them head bytes (a head is consumed only when complete).
    let mut taken: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 8192];
    loop {
        let n = match tokio::time::timeout(timeout, up.peek(&mut chunk)).await {
            Err(_) => {
                return Err(HeadFailure {
                    reason: format!("no response head within {timeout:?}"),
                    timeout: true,
                })
            }
            Ok(Err(e)) => return Err(fail(format!("reading response head: {e}"))),
            Ok(Ok(0)) => return Err(fail("closed before a response head".into())),
            Ok(Ok(n)) => n,
        };
        let mut seen = taken.clone();
        seen.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut resp = httparse::Response::new(&mut headers);
        match resp.parse(&seen) {
            Ok(httparse::Status::Complete(used)) => {
                let head = parse_head(&resp)?;
                let mut rest = vec![0u8; used - taken.len()];
                up.read_exact(&mut rest)
                    .await
                    .map_err(|e| fail(format!("consuming response head: {e}")))?;
                return Ok(head);
            }
            Ok(httparse::Status::Partial) if seen.len() < MAX_UPSTREAM_HEAD => {
                // Everything peeked belongs to the head: take it and wait for more.
                up.read_exact(&mut chunk[..n])
                    .await
                    .map_err(|e| fail(format!("reading response head: {e}")))?;
                taken.extend_from_slice(&chunk[..n]);
            }
            Ok(httparse::Status::Partial) => return Err(fail("response head too large".into())),
            Err(e) => return Err(fail(format!("malformed response head: {e}"))),
        }
    }
}

fn parse_head(resp: &httparse::Response<'_, '_>) -> Result<UpstreamHead, HeadFailure> {
    let fail = |reason: String| HeadFailure {
        reason,
        timeout: false,
    };
    let mut out = UpstreamHead {
        status: resp.code.unwrap_or(502),
        ..Default::default()
    };
    for h in resp.headers.iter() {
        let value = String::from_utf8_lossy(h.value).trim().to_string();
        let name = h.name.to_ascii_lowercase();
        match name.as_str() {
            "content-length" => {
                out.content_length = Some(
                    value
                        .parse()
                        .map_err(|_| fail(format!("bad Content-Length {value:?}")))?,
                )
            }
            "connection" if value.eq_ignore_ascii_case("close") => out.close = true,
            "age" => out.age = value.parse().unwrap_or(0),
            "transfer-encoding" => return Err(fail("chunked upstream responses are not supported".into())),
            _ => {}
        }
        if name == "content-range" {
            out.content_range = parse_content_range(&value);
        }
        if RELAYED.contains(&name.as_str()) {
            out.headers.push((h.name.to_string(), value));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range_parses_the_satisfied_form_only() {
        assert_eq!(
            parse_content_range("bytes 0-99/1000"),
            Some(ContentRange {
                first: 0,
                last: 99,
                total: 1000
            })
        );
        assert_eq!(parse_content_range("bytes */1000"), None);
        assert_eq!(parse_content_range("bytes 5-4/10"), None);
        assert_eq!(parse_content_range("bytes 0-10/10"), None);
    }

    #[tokio::test]
    async fn head_reader_leaves_every_body_byte_on_the_socket() {
        use tokio::io::AsyncWriteExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            // The head in two writes, the second carrying the body's first bytes.
            s.write_all(b"HTTP/1.1 206 Partial Content\r\nContent-Le")
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
            s.write_all(b"ngth: 5\r\nContent-Range: bytes 10-14/20\r\n\r\nhello")
                .await
                .unwrap();
            s
        });
        let mut up = TcpStream::connect(addr).await.unwrap();
        let head = read_upstream_head(&mut up, Duration::from_secs(5)).await.unwrap();
        assert_eq!(head.status, 206);
        assert_eq!(head.content_length, Some(5));
        assert_eq!(head.content_range.map(|r| r.total), Some(20));
        let mut body = [0u8; 5];
        up.read_exact(&mut body).await.unwrap();
        assert_eq!(&body, b"hello");
        drop(server.await.unwrap());
    }
}
