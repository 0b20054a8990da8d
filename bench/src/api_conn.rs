//! One keep-alive HTTP/1.1 connection to the control plane's API, async (tokio), as scenario
//! (g)'s simulated servers and API writers use it: a request with a bearer token and a JSON
//! body, the status and body back. A connection that fails is dropped; the caller connects again.

use std::net::{Ipv4Addr, SocketAddr};

use anyhow::{bail, Context as _};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// A connection and what it has read past the last response.
pub struct ApiConn {
    addr: SocketAddr,
    stream: TcpStream,
    buf: Vec<u8>,
}

/// A response: status and body.
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Answer {
    /// The body as JSON, or an error naming `what` and the status when it is not a 2xx.
    pub fn json(&self, what: &str) -> anyhow::Result<serde_json::Value> {
        if !(200..300).contains(&self.status) {
            bail!(
                "{what}: status {}: {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            );
        }
        serde_json::from_slice(&self.body).with_context(|| format!("{what}: the answer is not JSON"))
    }
}

impl ApiConn {
    /// Connects to `addr`, from `source` (a loopback address, to spread the source ports over
    /// several addresses) when given.
    pub async fn connect(addr: SocketAddr, source: Option<Ipv4Addr>) -> anyhow::Result<ApiConn> {
        let socket = TcpSocket::new_v4().context("creating a socket")?;
        if let Some(ip) = source {
            socket
                .bind(SocketAddr::from((ip, 0)))
                .with_context(|| format!("binding to {ip}"))?;
        }
        let stream = socket
            .connect(addr)
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true).context("TCP_NODELAY")?;
        Ok(ApiConn {
            addr,
            stream,
            buf: Vec::with_capacity(4096),
        })
    }

    /// Sends one request and reads its response (Content-Length bodies only, as the control
    /// plane sends them).
    pub async fn request(
        &mut self,
        method: &str,
        path: &str,
        token: &str,
        body: &[u8],
    ) -> anyhow::Result<Answer> {
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            self.addr,
            body.len()
        );
        let mut out = Vec::with_capacity(head.len() + body.len());
        out.extend_from_slice(head.as_bytes());
        out.extend_from_slice(body);
        self.stream
            .write_all(&out)
            .await
            .with_context(|| format!("{method} {path}: sending"))?;
        let (status, head_len, body_len) = loop {
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut response = httparse::Response::new(&mut headers);
            match response
                .parse(&self.buf)
                .with_context(|| format!("{method} {path}: parsing the response head"))?
            {
                httparse::Status::Complete(n) => {
                    let len = response
                        .headers
                        .iter()
                        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                        .and_then(|h| std::str::from_utf8(h.value).ok()?.trim().parse::<usize>().ok())
                        .with_context(|| format!("{method} {path}: no Content-Length in the response"))?;
                    break (response.code.unwrap_or(0), n, len);
                }
                httparse::Status::Partial => self.fill(method, path).await?,
            }
        };
        while self.buf.len() < head_len + body_len {
            self.fill(method, path).await?;
        }
        let body = self.buf[head_len..head_len + body_len].to_vec();
        self.buf.drain(..head_len + body_len);
        Ok(Answer { status, body })
    }

    async fn fill(&mut self, method: &str, path: &str) -> anyhow::Result<()> {
        let mut chunk = [0u8; 16384];
        let n = self
            .stream
            .read(&mut chunk)
            .await
            .with_context(|| format!("{method} {path}: reading the response"))?;
        if n == 0 {
            bail!("{method} {path}: the control plane closed the connection");
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }
}
