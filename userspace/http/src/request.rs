//! HTTP/1.x request heads: parsed with httparse into the few fields a media server acts on.
//!
//! The parser is strict where laxness would let a client confuse framing (request bodies,
//! duplicate Host or Content-Length) and copies only the header values the server uses, so a
//! parsed head is small and owns its data.

use thiserror::Error;

/// Most header fields accepted in one request; more answers 431.
pub const MAX_HEADERS: usize = 64;

/// Request methods the server distinguishes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    /// Any other token; answered with 405.
    Other(String),
}

/// The parts of a request head that the server uses.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestHead {
    pub method: Option<Method>,
    /// The path part of the request target, still percent-encoded.
    pub path: String,
    /// The query string after `?`, if any.
    pub query: Option<String>,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor_version: u8,
    /// Whether the connection may stay open after the response.
    pub keep_alive: bool,
    pub range: Option<String>,
    pub if_range: Option<String>,
    pub if_none_match: Option<String>,
    pub if_modified_since: Option<String>,
    /// The director's hop mark ([`HOP_HEADER`]): the request comes from a peer edge, which
    /// must be answered from local files (or 404), never directed or proxied again.
    pub hop: bool,
    /// The `Origin` of a browser's cross-origin request (CORS).
    pub origin: Option<String>,
}

/// The header that marks a request one edge's director sent to another.
pub const HOP_HEADER: &str = "X-Strata-Hop";

impl RequestHead {
    /// The method; parsing always sets it.
    pub fn method(&self) -> &Method {
        self.method.as_ref().unwrap_or(&Method::Get)
    }
}

/// Why a request head was refused. Each variant maps to one status code.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum HeadError {
    /// 400: the bytes are not an HTTP/1.x request head.
    #[error("malformed request: {0}")]
    Malformed(String),
    /// 431: more than [`MAX_HEADERS`] header fields.
    #[error("too many header fields (limit {MAX_HEADERS})")]
    TooManyHeaders,
    /// 505: an HTTP version other than 1.0 or 1.1.
    #[error("HTTP version not supported")]
    Version,
}

/// Parses one request head from the front of `buf`.
///
/// Returns `Ok(None)` when more bytes are needed, or the head and the number of bytes it took.
pub fn parse_request_head(buf: &[u8]) -> Result<Option<(RequestHead, usize)>, HeadError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let consumed = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooManyHeaders),
        Err(httparse::Error::Version) => return Err(HeadError::Version),
        Err(e) => return Err(HeadError::Malformed(e.to_string())),
    };
    let (Some(method), Some(target), Some(version)) = (req.method, req.path, req.version) else {
        return Err(HeadError::Malformed("incomplete request line".into()));
    };
    let mut head = RequestHead {
        method: Some(match method {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            other => Method::Other(other.to_string()),
        }),
        minor_version: version,
        keep_alive: version == 1,
        ..Default::default()
    };
    if !target.starts_with('/') {
        return Err(HeadError::Malformed(format!(
            "request target {:?} is not an absolute path",
            truncate(target)
        )));
    }
    match target.split_once('?') {
        Some((p, q)) => {
            head.path = p.to_string();
            head.query = Some(q.to_string());
        }
        None => head.path = target.to_string(),
    }
    let mut hosts = 0;
    let mut content_lengths = 0;
    for h in req.headers.iter() {
        let name = h.name;
        let text = || {
            std::str::from_utf8(h.value)
                .map(|v| v.trim().to_string())
                .map_err(|_| HeadError::Malformed(format!("header {name} is not valid UTF-8")))
        };
        if name.eq_ignore_ascii_case("host") {
            hosts += 1;
        } else if name.eq_ignore_ascii_case("connection") {
            for token in text()?.split(',') {
                let token = token.trim();
                if token.eq_ignore_ascii_case("close") {
                    head.keep_alive = false;
                } else if token.eq_ignore_ascii_case("keep-alive") && version == 0 {
                    head.keep_alive = true;
                }
            }
        } else if name.eq_ignore_ascii_case("range") {
            head.range = Some(text()?);
        } else if name.eq_ignore_ascii_case("if-range") {
            head.if_range = Some(text()?);
        } else if name.eq_ignore_ascii_case("if-none-match") {
            head.if_none_match = Some(text()?);
        } else if name.eq_ignore_ascii_case("if-modified-since") {
            head.if_modified_since = Some(text()?);
        } else if name.eq_ignore_ascii_case("origin") {
            head.origin = Some(text()?);
        } else if name.eq_ignore_ascii_case(HOP_HEADER) {
            head.hop = true;
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(HeadError::Malformed("request bodies are not accepted".into()));
        } else if name.eq_ignore_ascii_case("content-length") {
            content_lengths += 1;
            if text()? != "0" {
                return Err(HeadError::Malformed("request bodies are not accepted".into()));
            }
        }
    }
    if hosts > 1 {
        return Err(HeadError::Malformed("more than one Host header".into()));
    }
    if hosts == 0 && version == 1 {
        return Err(HeadError::Malformed(
            "HTTP/1.1 request without a Host header".into(),
        ));
    }
    if content_lengths > 1 {
        return Err(HeadError::Malformed("more than one Content-Length header".into()));
    }
    Ok(Some((head, consumed)))
}

/// Shortens client-supplied text before it goes into an error message.
fn truncate(s: &str) -> &str {
    match s.char_indices().nth(80) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Option<(RequestHead, usize)>, HeadError> {
        parse_request_head(s.as_bytes())
    }

    #[test]
    fn parses_a_get_with_range_and_query() {
        let raw = "GET /t/c/a.mp4?bytes=1-2 HTTP/1.1\r\nHost: x\r\nRange: bytes=0-1\r\n\r\nGET";
        let (head, n) = parse(raw).unwrap().unwrap();
        assert_eq!(n, raw.len() - 3);
        assert_eq!(head.method(), &Method::Get);
        assert_eq!(head.path, "/t/c/a.mp4");
        assert_eq!(head.query.as_deref(), Some("bytes=1-2"));
        assert_eq!(head.range.as_deref(), Some("bytes=0-1"));
        assert!(head.keep_alive);
    }

    #[test]
    fn partial_head_asks_for_more() {
        assert_eq!(parse("GET / HTTP/1.1\r\nHost: x\r\n"), Ok(None));
    }

    #[test]
    fn connection_header_decides_keep_alive() {
        let h = |s: &str| parse(s).unwrap().unwrap().0.keep_alive;
        assert!(!h("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
        assert!(!h("GET / HTTP/1.0\r\n\r\n"));
        assert!(h("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"));
    }

    #[test]
    fn refuses_bodies_and_ambiguous_framing() {
        for raw in [
            "GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n",
            "GET / HTTP/1.1\r\n\r\n",
            "GET http://x/ HTTP/1.1\r\nHost: x\r\n\r\n",
            "GET /\0 HTTP/1.1\r\nHost: x\r\n\r\n",
            "G@T / HTTP/1.1\r\nHost: x\r\n\r\n",
        ] {
            assert!(matches!(parse(raw), Err(HeadError::Malformed(_))), "{raw:?}");
        }
    }

    #[test]
    fn other_methods_parse_for_405() {
        let (head, _) = parse("DELETE /a HTTP/1.1\r\nHost: x\r\n\r\n").unwrap().unwrap();
        assert_eq!(head.method(), &Method::Other("DELETE".into()));
    }

    #[test]
    fn too_many_headers_is_its_own_error() {
        let mut raw = String::from("GET / HTTP/1.1\r\nHost: x\r\n");
        for i in 0..MAX_HEADERS {
            raw.push_str(&format!("X-{i}: y\r\n"));
        }
        raw.push_str("\r\n");
        assert_eq!(parse(&raw), Err(HeadError::TooManyHeaders));
    }
}
