//! HTTP/1.1 responses as the harness reads them: the head (status and Content-Length, shared
//! with the load generator), and a one-shot GET for its own look-ups (strata's /metrics, the
//! idle scenario's first request).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::{bail, Context as _};

/// A parsed response head.
pub struct ResponseHead {
    pub status: u16,
    pub content_length: u64,
}

/// Reads from `s` into `buf` until a whole response head is there, parses it, and leaves in
/// `buf` only the bytes after the head (the start of the body).
pub fn read_head(s: &mut impl Read, buf: &mut Vec<u8>) -> anyhow::Result<ResponseHead> {
    let mut chunk = [0u8; 16 << 10];
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut resp = httparse::Response::new(&mut headers);
        if let httparse::Status::Complete(n) = resp.parse(buf).context("bad response head")? {
            let status = resp.code.context("response without a status")?;
            let content_length = resp
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                .and_then(|h| std::str::from_utf8(h.value).ok()?.trim().parse().ok())
                .with_context(|| format!("status {status} without a Content-Length"))?;
            buf.drain(..n);
            return Ok(ResponseHead {
                status,
                content_length,
            });
        }
        let got = s.read(&mut chunk).context("reading a response head")?;
        if got == 0 {
            bail!("connection closed before a response");
        }
        buf.extend_from_slice(&chunk[..got]);
    }
}

/// Sends a GET of `path` on `s` and reads the whole response; returns the body.
pub fn exchange(s: &mut TcpStream, path: &str) -> anyhow::Result<Vec<u8>> {
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n").as_bytes())
        .with_context(|| format!("sending GET {path}"))?;
    let mut buf = Vec::new();
    let head = read_head(s, &mut buf).with_context(|| format!("GET {path}"))?;
    if head.status != 200 {
        bail!("GET {path}: status {}", head.status);
    }
    let len = head.content_length as usize;
    let mut chunk = [0u8; 8192];
    while buf.len() < len {
        let got = s
            .read(&mut chunk)
            .with_context(|| format!("reading the body of {path}"))?;
        if got == 0 {
            bail!("GET {path}: connection closed mid-body");
        }
        buf.extend_from_slice(&chunk[..got]);
    }
    buf.truncate(len);
    Ok(buf)
}

/// GETs `path` from `addr` on a fresh connection and returns the body as text.
pub fn get_text(addr: SocketAddr, path: &str) -> anyhow::Result<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .with_context(|| format!("connecting to {addr}"))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    Ok(String::from_utf8_lossy(&exchange(&mut s, path)?).into_owned())
}
