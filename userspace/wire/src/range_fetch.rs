//! A ranged GET as a byte stream (blocking, plain HTTP/1.1 over a TCP socket): `Range:
//! bytes=OFFSET-`, optionally with a bearer key. Used by distribution jobs to fetch an asset
//! from a storage server or a peer edge and to resume at an offset after switching sources.
//! The timeout bounds each wait for bytes (connect, head, every body read), not the whole
//! transfer, so a slow but moving source is kept and a silent one is left. Only `206` with a
//! `Content-Range` that starts at the offset (or `200` when the offset is 0) is accepted, so a
//! resumed transfer can never splice the wrong bytes into a file.

use std::io::{Cursor, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use thiserror::Error;

/// Longest response head accepted.
const MAX_HEAD: usize = 16 * 1024;

#[derive(Debug, Error)]
pub enum RangeFetchError {
    #[error("GET {url}: {message}")]
    Transport { url: String, message: String },
    #[error("GET {url} from byte {offset}: answered {status}")]
    Status { url: String, offset: u64, status: u16 },
    #[error("GET {url} from byte {offset}: Content-Range {got:?} does not start there")]
    WrongRange { url: String, offset: u64, got: String },
}

/// The body of `url` (`http://host:port/path`) from `offset` to its end, and the asset's
/// total length.
pub fn open_from(
    url: &str,
    bearer: Option<&str>,
    offset: u64,
    timeout: Duration,
) -> Result<(u64, Box<dyn Read + Send>), RangeFetchError> {
    let fail = |message: String| RangeFetchError::Transport {
        url: url.into(),
        message,
    };
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| fail("only http:// URLs".into()))?;
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let addr = host
        .to_socket_addrs()
        .map_err(|e| fail(format!("resolving {host}: {e}")))?
        .next()
        .ok_or_else(|| fail(format!("{host} has no address")))?;
    let mut stream =
        TcpStream::connect_timeout(&addr, timeout).map_err(|e| fail(format!("connecting: {e}")))?;
    stream
        .set_read_timeout(Some(timeout))
        .and_then(|()| stream.set_write_timeout(Some(timeout)))
        .map_err(|e| fail(format!("socket timeouts: {e}")))?;
    let _ = stream.set_nodelay(true);
    let mut req = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nRange: bytes={offset}-\r\nUser-Agent: strata-job\r\nConnection: close\r\n"
    );
    if let Some(key) = bearer {
        req.push_str(&format!("Authorization: Bearer {key}\r\n"));
    }
    req.push_str("\r\n");
    stream
        .write_all(req.as_bytes())
        .map_err(|e| fail(format!("sending the request: {e}")))?;
    // Read the head (and whatever body bytes came with it).
    let mut buf = Vec::with_capacity(4096);
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > MAX_HEAD {
            return Err(fail(format!("response head longer than {MAX_HEAD} bytes")));
        }
        let mut chunk = [0u8; 4096];
        let n = stream
            .read(&mut chunk)
            .map_err(|e| fail(format!("reading the response head: {e}")))?;
        if n == 0 {
            return Err(fail("the connection closed before a response head".into()));
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| fail(format!("not an HTTP response: {:?}", head.lines().next())))?;
    let header = |name: &str| {
        head.split("\r\n").skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    };
    let length: Option<u64> = header("content-length").and_then(|v| v.parse().ok());
    let total = match status {
        206 => {
            let cr = header("content-range").unwrap_or_default();
            // bytes START-END/TOTAL
            let parsed = cr.strip_prefix("bytes ").and_then(|r| {
                let (span, total) = r.split_once('/')?;
                let (start, _) = span.split_once('-')?;
                Some((start.parse::<u64>().ok()?, total.parse::<u64>().ok()?))
            });
            match parsed {
                Some((start, total)) if start == offset => total,
                _ => {
                    return Err(RangeFetchError::WrongRange {
                        url: url.into(),
                        offset,
                        got: cr,
                    })
                }
            }
        }
        200 if offset == 0 => length.ok_or_else(|| fail("200 without Content-Length".into()))?,
        _ => {
            return Err(RangeFetchError::Status {
                url: url.into(),
                offset,
                status,
            })
        }
    };
    let body_len = length.unwrap_or(total - offset.min(total));
    let early = Cursor::new(buf[head_end..].to_vec());
    Ok((total, Box::new(early.chain(stream).take(body_len))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// A one-shot server answering with `answer` and then `body`.
    fn serve(answer: &'static str, body: &'static [u8]) -> String {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/a/b/c", l.local_addr().unwrap());
        std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut req = [0u8; 1024];
            let _ = s.read(&mut req);
            s.write_all(answer.as_bytes()).unwrap();
            s.write_all(body).unwrap();
        });
        url
    }

    #[test]
    fn a_206_from_the_offset_is_read_exactly() {
        let url = serve(
            "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 4-9/10\r\nContent-Length: 6\r\n\r\n",
            b"456789",
        );
        let (total, mut body) = open_from(&url, None, 4, Duration::from_secs(5)).unwrap();
        let mut got = Vec::new();
        body.read_to_end(&mut got).unwrap();
        assert_eq!((total, got.as_slice()), (10, &b"456789"[..]));
    }

    #[test]
    fn a_range_that_starts_elsewhere_is_refused() {
        let url = serve(
            "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-9/10\r\nContent-Length: 10\r\n\r\n",
            b"0123456789",
        );
        assert!(matches!(
            open_from(&url, None, 4, Duration::from_secs(5)),
            Err(RangeFetchError::WrongRange { .. })
        ));
    }
}
