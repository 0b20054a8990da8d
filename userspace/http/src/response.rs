//! Response heads and short error responses, written into one buffer so each goes out in a
//! single write (the body follows through the kernel path, corked behind it).

use std::cell::RefCell;
use std::time::{SystemTime, UNIX_EPOCH};

use super::range::ByteRange;

/// The server name sent in every response.
pub const SERVER: &str = "strata";

/// Reason phrase for the status codes the server sends.
pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        206 => "Partial Content",
        302 => "Found",
        304 => "Not Modified",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        416 => "Range Not Satisfiable",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

thread_local! {
    static DATE: RefCell<(u64, String)> = const { RefCell::new((0, String::new())) };
}

/// The current IMF-fixdate, formatted at most once a second per thread.
fn with_date<R>(f: impl FnOnce(&str) -> R) -> R {
    let now = SystemTime::now();
    let secs = now.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    DATE.with(|cell| {
        let mut cached = cell.borrow_mut();
        if cached.0 != secs || cached.1.is_empty() {
            *cached = (secs, httpdate::fmt_http_date(now));
        }
        f(&cached.1)
    })
}

/// Builds a response head field by field.
pub struct HeadBuilder {
    buf: Vec<u8>,
}

impl HeadBuilder {
    /// Starts a head with the status line, Server and Date.
    pub fn new(status: u16) -> HeadBuilder {
        let mut buf = Vec::with_capacity(320);
        buf.extend_from_slice(b"HTTP/1.1 ");
        buf.extend_from_slice(itoa::Buffer::new().format(status).as_bytes());
        buf.push(b' ');
        buf.extend_from_slice(reason(status).as_bytes());
        buf.extend_from_slice(b"\r\nServer: ");
        buf.extend_from_slice(SERVER.as_bytes());
        let mut b = HeadBuilder { buf };
        with_date(|d| b.push_header("Date", d));
        b
    }

    /// Adds one header field.
    pub fn header(mut self, name: &str, value: &str) -> HeadBuilder {
        self.push_header(name, value);
        self
    }

    /// Adds one numeric header field.
    pub fn header_u64(mut self, name: &str, value: u64) -> HeadBuilder {
        self.push_header(name, itoa::Buffer::new().format(value));
        self
    }

    fn push_header(&mut self, name: &str, value: &str) {
        self.buf.extend_from_slice(b"\r\n");
        self.buf.extend_from_slice(name.as_bytes());
        self.buf.extend_from_slice(b": ");
        self.buf.extend_from_slice(value.as_bytes());
    }

    /// Adds `Content-Range: bytes a-b/len`.
    pub fn content_range(self, r: ByteRange, len: u64) -> HeadBuilder {
        let value = format!("bytes {}-{}/{}", r.start, r.end, len);
        self.header("Content-Range", &value)
    }

    /// CORS for players on other origins: any origin may read the response, and the headers a
    /// player needs for ranges and caching are exposed to its scripts.
    pub fn cors(self) -> HeadBuilder {
        self.header("Access-Control-Allow-Origin", "*")
            .header("Access-Control-Expose-Headers", CORS_EXPOSED)
    }

    /// Adds `Connection: close` when the connection will not be reused.
    pub fn connection(self, keep_alive: bool) -> HeadBuilder {
        if keep_alive {
            self
        } else {
            self.header("Connection", "close")
        }
    }

    /// Ends the head with the blank line.
    pub fn finish(mut self) -> Vec<u8> {
        self.buf.extend_from_slice(b"\r\n\r\n");
        self.buf
    }
}

/// A complete error response: a one-line text body that says what was wrong.
pub fn error_response(status: u16, message: &str, keep_alive: bool, extra: &[(&str, &str)]) -> Vec<u8> {
    let mut body = String::with_capacity(message.len() + 16);
    body.push_str(itoa::Buffer::new().format(status));
    body.push(' ');
    body.push_str(&message.replace(['\r', '\n'], " "));
    body.push('\n');
    let mut head = HeadBuilder::new(status)
        .header("Content-Type", "text/plain; charset=utf-8")
        .header_u64("Content-Length", body.len() as u64);
    for (name, value) in extra {
        head = head.header(name, value);
    }
    let mut out = head.connection(keep_alive).finish();
    out.extend_from_slice(body.as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_a_file_head() {
        let head = HeadBuilder::new(206)
            .header_u64("Content-Length", 10)
            .content_range(ByteRange { start: 0, end: 9 }, 100)
            .connection(false)
            .finish();
        let text = String::from_utf8(head).unwrap();
        assert!(text.starts_with("HTTP/1.1 206 Partial Content\r\nServer: strata\r\nDate: "));
        assert!(text.contains("\r\nContent-Range: bytes 0-9/100\r\n"));
        assert!(text.ends_with("Connection: close\r\n\r\n"));
    }

    #[test]
    fn error_bodies_are_one_line_with_matching_length() {
        let resp = String::from_utf8(error_response(404, "no such\r\nasset", true, &[])).unwrap();
        let (head, body) = resp.split_once("\r\n\r\n").unwrap();
        assert_eq!(body, "404 no such  asset\n");
        assert!(head.contains(&format!("Content-Length: {}", body.len())));
    }
}

/// Response headers a cross-origin player may read.
pub const CORS_EXPOSED: &str = "Content-Length, Content-Range, Accept-Ranges, ETag, Age";

/// The answer to a CORS preflight (`OPTIONS`): any origin may GET and HEAD with the request
/// headers players send for ranges and revalidation; browsers may keep the answer a day.
pub fn preflight_response(keep_alive: bool) -> Vec<u8> {
    HeadBuilder::new(204)
        .header("Access-Control-Allow-Origin", "*")
        .header("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")
        .header(
            "Access-Control-Allow-Headers",
            "Range, If-Range, If-None-Match, If-Modified-Since",
        )
        .header("Access-Control-Max-Age", "86400")
        .header("Allow", "GET, HEAD, OPTIONS")
        .header_u64("Content-Length", 0)
        .connection(keep_alive)
        .finish()
}

#[cfg(test)]
mod cors_tests {
    use super::*;

    #[test]
    fn cors_heads_let_any_origin_read_and_expose_what_players_need() {
        let head = String::from_utf8(HeadBuilder::new(206).cors().finish()).expect("utf-8");
        assert!(head.contains("\r\nAccess-Control-Allow-Origin: *\r\n"), "{head}");
        assert!(
            head.contains("Access-Control-Expose-Headers: Content-Length, Content-Range"),
            "{head}"
        );
        let pre = String::from_utf8(preflight_response(true)).expect("utf-8");
        assert!(pre.starts_with("HTTP/1.1 204 "), "{pre}");
        assert!(pre.contains("Access-Control-Allow-Headers: Range,"), "{pre}");
        assert!(
            pre.contains("Content-Length: 0") && !pre.contains("Connection: close"),
            "{pre}"
        );
    }
}
