//! The control plane's /v1 API as scenario (f) uses it: one JSON request on a fresh loopback
//! connection with a bearer token, the JSON answer back (any status outside 2xx is an error
//! naming the request and the body the control plane sent).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::{bail, Context as _};
use serde_json::Value;

use crate::http_get::read_head;

/// A control plane and the token to speak to it with.
#[derive(Clone)]
pub struct ControlApi {
    pub addr: SocketAddr,
    pub token: String,
}

impl ControlApi {
    pub fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.request("GET", path, None)
    }

    pub fn post(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        self.request("POST", path, Some(body))
    }

    /// The same API with another token.
    pub fn as_token(&self, token: &str) -> ControlApi {
        ControlApi {
            addr: self.addr,
            token: token.to_string(),
        }
    }

    fn request(&self, method: &str, path: &str, body: Option<&Value>) -> anyhow::Result<Value> {
        let what = format!("{method} http://{}{path}", self.addr);
        let mut s = TcpStream::connect_timeout(&self.addr, Duration::from_secs(5))
            .with_context(|| format!("{what}: connecting"))?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        let body = body.map(Value::to_string).unwrap_or_default();
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            self.addr,
            self.token,
            body.len()
        );
        s.write_all(head.as_bytes())
            .and_then(|()| s.write_all(body.as_bytes()))
            .with_context(|| format!("{what}: sending"))?;
        let mut buf = Vec::new();
        let head = read_head(&mut s, &mut buf).with_context(|| format!("{what}: the response head"))?;
        let len = usize::try_from(head.content_length)?;
        let mut chunk = [0u8; 8192];
        while buf.len() < len {
            let n = s
                .read(&mut chunk)
                .with_context(|| format!("{what}: the response body"))?;
            if n == 0 {
                bail!("{what}: connection closed mid-body");
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        buf.truncate(len);
        if !(200..300).contains(&head.status) {
            bail!(
                "{what}: status {}: {}",
                head.status,
                String::from_utf8_lossy(&buf)
            );
        }
        serde_json::from_slice(&buf).with_context(|| format!("{what}: the answer is not JSON"))
    }
}
