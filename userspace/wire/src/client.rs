//! The HTTP client every party uses to talk to the control plane (CLI, ingest, edges and storage
//! servers) and the ingestor uses to talk to storage servers: blocking (ureq), JSON in and out,
//! bearer token, and errors that name the URL, the status and the server's message.

use std::io::Read;
use std::path::Path;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;
use thiserror::Error;

/// Why a call failed.
#[derive(Debug, Error)]
pub enum ClientError {
    /// The server answered with an error status; `message` is its `error` field.
    #[error("{method} {url}: {status} {message}")]
    Status {
        method: &'static str,
        url: String,
        status: u16,
        message: String,
    },
    /// No answer (refused, reset, timed out) or an unreadable one.
    #[error("{method} {url}: {message}")]
    Transport {
        method: &'static str,
        url: String,
        message: String,
    },
    #[error("reading the token file {path}: {message}")]
    TokenFile { path: String, message: String },
}

impl ClientError {
    /// The HTTP status, when the server answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// A reader that reports how many bytes each read returned (upload progress, counters).
pub struct ReadTap<R, F> {
    inner: R,
    on_read: F,
}

impl<R: Read, F: FnMut(usize)> ReadTap<R, F> {
    pub fn new(inner: R, on_read: F) -> ReadTap<R, F> {
        ReadTap { inner, on_read }
    }
}

impl<R: Read, F: FnMut(usize)> Read for ReadTap<R, F> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        (self.on_read)(n);
        Ok(n)
    }
}

/// Reads a token file (surrounding whitespace ignored).
pub fn read_token_file(path: &Path) -> Result<String, ClientError> {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .map_err(|e| ClientError::TokenFile {
            path: path.display().to_string(),
            message: e.to_string(),
        })
}

/// A client of one HTTP service (base URL + bearer token).
#[derive(Clone)]
pub struct ServiceClient {
    agent: ureq::Agent,
    base: String,
    token: String,
}

impl std::fmt::Debug for ServiceClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceClient").field("base", &self.base).finish()
    }
}

impl ServiceClient {
    /// `base` like `http://127.0.0.1:9090`; `timeout` bounds each whole call.
    pub fn new(base: &str, token: &str, timeout: Duration) -> ServiceClient {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .proxy(None)
            .timeout_global(Some(timeout))
            .build();
        ServiceClient {
            agent: ureq::Agent::new_with_config(config),
            base: base.trim_end_matches('/').to_string(),
            token: token.to_string(),
        }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn bearer(&self) -> String {
        format!("Bearer {}", self.token)
    }

    pub fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let url = self.url(path);
        let resp = self.agent.get(&url).header("authorization", self.bearer()).call();
        answer("GET", url, resp)
    }

    pub fn delete<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let url = self.url(path);
        let resp = self
            .agent
            .delete(&url)
            .header("authorization", self.bearer())
            .call();
        answer("DELETE", url, resp)
    }

    pub fn post<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> Result<T, ClientError> {
        self.send_json("POST", path, body)
    }

    pub fn patch<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> Result<T, ClientError> {
        self.send_json("PATCH", path, body)
    }

    fn send_json<B: Serialize, T: DeserializeOwned>(
        &self,
        method: &'static str,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        let url = self.url(path);
        let req = match method {
            "PATCH" => self.agent.patch(&url),
            _ => self.agent.post(&url),
        };
        let resp = req.header("authorization", self.bearer()).send_json(body);
        answer(method, url, resp)
    }

    /// PUTs `len` bytes from `body` with extra headers; the answer's JSON.
    pub fn put_stream<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &mut dyn Read,
        len: u64,
        headers: &[(&str, &str)],
    ) -> Result<T, ClientError> {
        let url = self.url(path);
        let mut req = self
            .agent
            .put(&url)
            .header("authorization", self.bearer())
            .header("content-length", len.to_string());
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = req.send(ureq::SendBody::from_reader(body));
        answer("PUT", url, resp)
    }
}

/// Turns a ureq result into the JSON body or a [`ClientError`].
fn answer<T: DeserializeOwned>(
    method: &'static str,
    url: String,
    resp: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
) -> Result<T, ClientError> {
    let mut resp = resp.map_err(|e| ClientError::Transport {
        method,
        url: url.clone(),
        message: e.to_string(),
    })?;
    let status = resp.status().as_u16();
    let text = resp
        .body_mut()
        .with_config()
        .limit(64 << 20)
        .read_to_string()
        .map_err(|e| ClientError::Transport {
            method,
            url: url.clone(),
            message: format!("reading the answer: {e}"),
        })?;
    if !(200..300).contains(&status) {
        let message = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string))
            .unwrap_or_else(|| text.trim().to_string());
        return Err(ClientError::Status {
            method,
            url,
            status,
            message,
        });
    }
    let text = if text.trim().is_empty() { "null" } else { &text };
    serde_json::from_str(text).map_err(|e| ClientError::Transport {
        method,
        url,
        message: format!("answer is not the expected JSON: {e}"),
    })
}
