//! Byte-range GETs over one keep-alive connection to one server, checked exactly: a range
//! must come back as `206` with the `Content-Range` asked for and exactly that many bytes; a
//! whole GET as `200` with its `Content-Length`. Anything else is an error that names the
//! server, never bytes taken on trust.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use thiserror::Error;

/// Largest response head accepted.
const MAX_HEAD: usize = 16 * 1024;

#[derive(Debug, Error)]
pub enum RangeError {
    #[error("{server}: {source}")]
    Io {
        server: SocketAddr,
        source: std::io::Error,
    },
    #[error("{server}: malformed response head: {message}")]
    Head { server: SocketAddr, message: String },
    #[error("{server} answered {status} to {what}")]
    Status {
        server: SocketAddr,
        status: u16,
        what: String,
    },
    #[error("{server} answered {got} to a request for bytes {want}")]
    WrongRange {
        server: SocketAddr,
        got: String,
        want: String,
    },
    #[error("{server} sent {got} bytes where {want} were announced")]
    Short { server: SocketAddr, got: u64, want: u64 },
}

/// One downloaded range and how long it took (request sent → last byte).
#[derive(Debug)]
pub struct Fetched {
    pub bytes: Vec<u8>,
    pub elapsed: Duration,
}

/// A keep-alive connection to one server.
pub struct Conn {
    pub server: SocketAddr,
    host: String,
    stream: Option<TcpStream>,
    timeout: Duration,
}

struct Head {
    status: u16,
    content_length: Option<u64>,
    content_range: Option<String>,
    close: bool,
}

impl Conn {
    pub fn new(server: SocketAddr, timeout: Duration) -> Conn {
        Conn {
            server,
            host: server.to_string(),
            stream: None,
            timeout,
        }
    }

    fn io(&self, source: std::io::Error) -> RangeError {
        RangeError::Io {
            server: self.server,
            source,
        }
    }

    fn stream(&mut self) -> Result<&mut TcpStream, RangeError> {
        if self.stream.is_none() {
            let s = TcpStream::connect_timeout(&self.server, self.timeout).map_err(|e| self.io(e))?;
            s.set_read_timeout(Some(self.timeout)).map_err(|e| self.io(e))?;
            s.set_write_timeout(Some(self.timeout)).map_err(|e| self.io(e))?;
            let _ = s.set_nodelay(true);
            self.stream = Some(s);
        }
        Ok(self.stream.as_mut().expect("connected above"))
    }

    /// Bytes `first..=last` of `path`.
    pub fn range(&mut self, path: &str, first: u64, last: u64) -> Result<Fetched, RangeError> {
        let want = format!("{first}-{last}");
        let extra = format!("Range: bytes={want}\r\n");
        let started = Instant::now();
        let result = self.exchange(path, &extra).and_then(|(head, s)| {
            let server = s.server;
            if head.status != 206 {
                return Err(RangeError::Status {
                    server,
                    status: head.status,
                    what: format!("a range request for {path} bytes {want}"),
                });
            }
            let got = head.content_range.clone().unwrap_or_default();
            let span = got
                .strip_prefix("bytes ")
                .and_then(|r| r.split('/').next())
                .unwrap_or("");
            if span != want || head.content_length != Some(last - first + 1) {
                return Err(RangeError::WrongRange {
                    server,
                    got: format!("{got} (Content-Length {:?})", head.content_length),
                    want,
                });
            }
            s.body(&head, last - first + 1)
        });
        self.finish(result, started)
    }

    /// The whole of `path` (a small document such as the asset list).
    pub fn whole(&mut self, path: &str) -> Result<Fetched, RangeError> {
        let started = Instant::now();
        let result = self.exchange(path, "").and_then(|(head, s)| {
            if head.status != 200 {
                return Err(RangeError::Status {
                    server: s.server,
                    status: head.status,
                    what: format!("GET {path}"),
                });
            }
            let len = head.content_length.ok_or_else(|| RangeError::Head {
                server: s.server,
                message: "no Content-Length".into(),
            })?;
            s.body(&head, len)
        });
        self.finish(result, started)
    }

    fn finish(
        &mut self,
        result: Result<Vec<u8>, RangeError>,
        started: Instant,
    ) -> Result<Fetched, RangeError> {
        match result {
            Ok(bytes) => Ok(Fetched {
                bytes,
                elapsed: started.elapsed(),
            }),
            Err(e) => {
                // Whatever is left on the connection is unknown: never reuse it.
                self.stream = None;
                Err(e)
            }
        }
    }

    /// Sends a GET and reads the head; the connection stays positioned at the body.
    fn exchange(&mut self, path: &str, extra: &str) -> Result<(Head, &mut Self), RangeError> {
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\n{extra}User-Agent: strata-fetch\r\n\r\n",
            self.host
        );
        let mut reused = self.stream.is_some();
        loop {
            let sent = self.stream()?.write_all(request.as_bytes());
            let head = sent.map_err(|e| self.io(e)).and_then(|_| self.read_head());
            match head {
                Ok(h) => return Ok((h, self)),
                // A kept-alive connection the server closed meanwhile: once more on a fresh one.
                Err(RangeError::Io { .. }) | Err(RangeError::Head { .. }) if reused => {
                    self.stream = None;
                    reused = false;
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn read_head(&mut self) -> Result<Head, RangeError> {
        let server = self.server;
        let mut buf = Vec::with_capacity(1024);
        let mut byte = [0u8; 1];
        let stream = self.stream()?;
        // Byte by byte up to the blank line: the body stays on the socket, exactly.
        while !buf.ends_with(b"\r\n\r\n") {
            if buf.len() > MAX_HEAD {
                return Err(RangeError::Head {
                    server,
                    message: format!("longer than {MAX_HEAD} bytes"),
                });
            }
            match stream.read(&mut byte) {
                Ok(0) => {
                    return Err(RangeError::Head {
                        server,
                        message: "connection closed before the head ended".into(),
                    })
                }
                Ok(_) => buf.push(byte[0]),
                Err(e) => return Err(RangeError::Io { server, source: e }),
            }
        }
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut resp = httparse::Response::new(&mut headers);
        match resp.parse(&buf) {
            Ok(httparse::Status::Complete(_)) => {}
            Ok(httparse::Status::Partial) | Err(_) => {
                return Err(RangeError::Head {
                    server,
                    message: String::from_utf8_lossy(&buf)
                        .lines()
                        .next()
                        .unwrap_or("")
                        .to_string(),
                })
            }
        }
        let header = |name: &str| {
            resp.headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case(name))
                .map(|h| String::from_utf8_lossy(h.value).trim().to_string())
        };
        Ok(Head {
            status: resp.code.unwrap_or(0),
            content_length: header("content-length").and_then(|v| v.parse().ok()),
            content_range: header("content-range"),
            close: header("connection").is_some_and(|v| v.eq_ignore_ascii_case("close")),
        })
    }

    /// Reads exactly `len` body bytes.
    fn body(&mut self, head: &Head, len: u64) -> Result<Vec<u8>, RangeError> {
        let server = self.server;
        let mut bytes = vec![0u8; len as usize];
        let stream = self.stream()?;
        let mut got = 0usize;
        while got < bytes.len() {
            match stream.read(&mut bytes[got..]) {
                Ok(0) => {
                    return Err(RangeError::Short {
                        server,
                        got: got as u64,
                        want: len,
                    })
                }
                Ok(n) => got += n,
                Err(e) => return Err(RangeError::Io { server, source: e }),
            }
        }
        if head.close {
            self.stream = None;
        }
        Ok(bytes)
    }
}
