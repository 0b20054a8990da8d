//! The HTTP client every party uses to talk to the control plane (CLI, ingest, edges and storage
//! servers) and the ingestor uses to talk to storage servers: blocking (ureq), JSON in and out,
//! bearer token, and errors that name the URL, the status and the server's message.
//!
//! A client may know several instances of one service (`http://a:9090,http://b:9090`): a call
//! goes to the instance that answered last, and moves on to the next one when that instance does
//! not answer or answers 502/503/504; the instance that answers becomes the preferred one.

use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
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
    /// Every instance of the service was tried; `last` is the last one's failure.
    #[error("{method} {path}: none of the {tried} instances answered; the last: {last}")]
    NoInstance {
        method: &'static str,
        path: String,
        tried: usize,
        last: Box<ClientError>,
    },
}

impl ClientError {
    /// The HTTP status, when the server answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Status { status, .. } => Some(*status),
            ClientError::NoInstance { last, .. } => last.status(),
            _ => None,
        }
    }

    /// Whether another instance of the service may answer where this one failed: no answer,
    /// or a gateway / unavailable status (a registry without quorum, a restarting instance).
    fn worth_another_instance(&self) -> bool {
        match self {
            ClientError::Transport { .. } => true,
            ClientError::Status { status, .. } => matches!(status, 502..=504),
            _ => false,
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

/// Splits a comma-separated list of base URLs (`http://a:9090,http://b:9090`), trimming
/// blanks and trailing slashes.
pub fn base_urls(list: &str) -> Vec<String> {
    list.split(',')
        .map(|u| u.trim().trim_end_matches('/').to_string())
        .filter(|u| !u.is_empty())
        .collect()
}

/// A client of one HTTP service (one or more instances' base URLs + bearer token). Clones share
/// which instance is preferred.
#[derive(Clone)]
pub struct ServiceClient {
    agent: ureq::Agent,
    bases: Arc<[String]>,
    preferred: Arc<AtomicUsize>,
    token: String,
}

impl std::fmt::Debug for ServiceClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceClient")
            .field("bases", &self.bases)
            .finish()
    }
}

impl ServiceClient {
    /// `bases` like `http://127.0.0.1:9090` or a comma-separated list of instances;
    /// `timeout` bounds each whole call to one instance.
    pub fn new(bases: &str, token: &str, timeout: Duration) -> ServiceClient {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .proxy(None)
            .timeout_global(Some(timeout))
            .build();
        let mut list = base_urls(bases);
        if list.is_empty() {
            list.push(String::new());
        }
        ServiceClient {
            agent: ureq::Agent::new_with_config(config),
            bases: list.into(),
            preferred: Arc::new(AtomicUsize::new(0)),
            token: token.to_string(),
        }
    }

    /// The instance calls go to first (the one that answered last).
    pub fn base(&self) -> &str {
        &self.bases[self.preferred.load(Ordering::Relaxed) % self.bases.len()]
    }

    /// Every instance this client knows.
    pub fn bases(&self) -> &[String] {
        &self.bases
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base())
    }

    fn bearer(&self) -> String {
        format!("Bearer {}", self.token)
    }

    /// Sends one call to the preferred instance, then to the others in turn while the failure
    /// is one another instance may not have.
    fn with_failover<T: DeserializeOwned>(
        &self,
        method: &'static str,
        path: &str,
        send_to: impl Fn(&str) -> Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<T, ClientError> {
        let count = self.bases.len();
        let first = self.preferred.load(Ordering::Relaxed) % count;
        let mut step = 0;
        loop {
            let index = (first + step) % count;
            let url = format!("{}{path}", self.bases[index]);
            let response = send_to(&url);
            match answer(method, url, response) {
                Err(e) if e.worth_another_instance() && step + 1 < count => {
                    tracing::warn!(instance = %self.bases[index], error = %e, "service instance failed; trying the next one");
                    step += 1;
                }
                Err(e) if e.worth_another_instance() && count > 1 => {
                    return Err(ClientError::NoInstance {
                        method,
                        path: path.to_string(),
                        tried: count,
                        last: Box::new(e),
                    });
                }
                other => {
                    if step > 0 && other.is_ok() {
                        self.preferred.store(index, Ordering::Relaxed);
                        tracing::info!(instance = %self.bases[index], "service instance answers; using it from now on");
                    }
                    return other;
                }
            }
        }
    }

    pub fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.with_failover("GET", path, |url| {
            self.agent.get(url).header("authorization", self.bearer()).call()
        })
    }

    pub fn delete<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.with_failover("DELETE", path, |url| {
            self.agent
                .delete(url)
                .header("authorization", self.bearer())
                .call()
        })
    }

    pub fn post<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> Result<T, ClientError> {
        self.send_json("POST", path, body)
    }

    pub fn patch<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> Result<T, ClientError> {
        self.send_json("PATCH", path, body)
    }

    pub fn put_json<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        self.send_json("PUT", path, body)
    }

    fn send_json<B: Serialize, T: DeserializeOwned>(
        &self,
        method: &'static str,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        self.with_failover(method, path, |url| {
            let req = match method {
                "PATCH" => self.agent.patch(url),
                "PUT" => self.agent.put(url),
                _ => self.agent.post(url),
            };
            req.header("authorization", self.bearer()).send_json(body)
        })
    }

    /// PUTs `len` bytes from `body` with extra headers; the answer's JSON. A stream is read
    /// once, so this goes to the preferred instance only.
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::net::TcpListener;

    /// A one-thread HTTP server answering every request with `status` and a JSON body naming
    /// `who`, for `calls` requests.
    fn instance(status: u16, who: &'static str, calls: usize) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding a test listener");
        let addr = listener.local_addr().expect("test listener address");
        std::thread::spawn(move || {
            for stream in listener.incoming().take(calls) {
                let Ok(mut stream) = stream else { return };
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
                    head.push(byte[0]);
                }
                // Read the request's body too: closing with it unread would reset the connection
                // and the client could lose the answer.
                let text = String::from_utf8_lossy(&head).to_ascii_lowercase();
                let length = text
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                let mut body_in = vec![0u8; length];
                let _ = stream.read_exact(&mut body_in);
                let body = if status == 200 {
                    format!("\"{who}\"")
                } else {
                    format!("{{\"error\":\"{who} says no\"}}")
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        format!("http://{addr}")
    }

    /// A port that refuses connections for as long as the returned socket lives: bound but
    /// never listening, so no other test's listener can take it meanwhile.
    fn closed_port() -> (String, socket2::Socket) {
        let socket =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("a test socket");
        let any: std::net::SocketAddr = "127.0.0.1:0".parse().expect("an address");
        socket.bind(&any.into()).expect("binding a test socket");
        let addr = socket
            .local_addr()
            .ok()
            .and_then(|a| a.as_socket())
            .expect("test socket address");
        (format!("http://{addr}"), socket)
    }

    fn client(bases: &[String]) -> ServiceClient {
        ServiceClient::new(&bases.join(","), "t", Duration::from_secs(5))
    }

    #[test]
    fn a_call_moves_on_from_an_instance_that_does_not_answer_and_keeps_the_one_that_does() {
        let (down, _held) = closed_port();
        let up = instance(200, "b", 2);
        let c = client(&[down, up.clone()]);
        assert_eq!(c.get::<String>("/x").expect("the second instance answers"), "b");
        assert_eq!(c.base(), up);
        assert_eq!(
            c.clone()
                .get::<String>("/x")
                .expect("the preferred instance answers"),
            "b"
        );
    }

    #[test]
    fn an_unavailable_instance_is_skipped_but_a_client_error_is_returned_as_is() {
        let c = client(&[instance(503, "a", 1), instance(200, "b", 1)]);
        assert_eq!(c.get::<String>("/x").expect("503 moves on"), "b");
        let c = client(&[instance(404, "a", 1), instance(200, "b", 1)]);
        let e = c.get::<String>("/x").expect_err("404 is the answer");
        assert_eq!(e.status(), Some(404));
        assert!(e.to_string().contains("a says no"), "{e}");
    }

    #[test]
    fn every_instance_down_is_one_error_that_counts_them_and_keeps_the_last_status() {
        let (down, _held) = closed_port();
        let c = client(&[down, instance(503, "b", 1)]);
        let e = c
            .post::<_, String>("/v1/heartbeat", &1)
            .expect_err("nobody answers");
        assert_eq!(e.status(), Some(503));
        let text = e.to_string();
        assert!(
            text.contains("POST /v1/heartbeat: none of the 2 instances"),
            "{text}"
        );
        assert!(text.contains("b says no"), "{text}");
    }

    #[test]
    fn base_urls_splits_trims_and_drops_blanks() {
        assert_eq!(
            base_urls(" http://a:1/ ,,http://b:2"),
            vec!["http://a:1".to_string(), "http://b:2".to_string()]
        );
    }
}
