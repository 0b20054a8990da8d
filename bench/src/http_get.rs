//! A one-shot HTTP/1.1 GET for the harness's own look-ups (strata's /metrics, the idle
//! scenario's first request), reading to the end of a Content-Length body.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::{bail, Context as _};

/// Sends a GET of `path` on `s` and reads the whole response; returns the body.
pub fn exchange(s: &mut TcpStream, path: &str) -> anyhow::Result<Vec<u8>> {
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n").as_bytes())
        .with_context(|| format!("sending GET {path}"))?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut resp = httparse::Response::new(&mut headers);
        if let httparse::Status::Complete(n) = resp
            .parse(&buf)
            .with_context(|| format!("bad response head for {path}"))?
        {
            if resp.code != Some(200) {
                bail!("GET {path}: status {:?}", resp.code);
            }
            let len: usize = resp
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                .and_then(|h| std::str::from_utf8(h.value).ok()?.trim().parse().ok())
                .with_context(|| format!("GET {path}: no Content-Length"))?;
            while buf.len() < n + len {
                let got = s
                    .read(&mut chunk)
                    .with_context(|| format!("reading the body of {path}"))?;
                if got == 0 {
                    bail!("GET {path}: connection closed mid-body");
                }
                buf.extend_from_slice(&chunk[..got]);
            }
            return Ok(buf[n..n + len].to_vec());
        }
        let got = s
            .read(&mut chunk)
            .with_context(|| format!("reading the head of {path}"))?;
        if got == 0 {
            bail!("GET {path}: connection closed before a response");
        }
        buf.extend_from_slice(&chunk[..got]);
    }
}

/// GETs `path` from `addr` on a fresh connection and returns the body as text.
pub fn get_text(addr: SocketAddr, path: &str) -> anyhow::Result<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .with_context(|| format!("connecting to {addr}"))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    Ok(String::from_utf8_lossy(&exchange(&mut s, path)?).into_owned())
}
