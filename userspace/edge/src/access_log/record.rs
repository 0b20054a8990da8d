//! One access log line: what was asked, by whom, how it was answered and where the bytes came
//! from; formatted as a JSON object on one line by the writer thread.
//!
//! The query is logged with the values of the signed-URL parameters (`sig`, `ip`) replaced by
//! `-`: a signature is a credential for as long as it has not expired.

use std::net::SocketAddr;
use std::time::SystemTime;

use serde::Serialize;

/// Where a response's content came from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// A file on this server's disk (storage root or edge cache).
    Hit,
    /// Proxied (or redirected) from the storage tier.
    Miss,
    /// A miss that also started filling the edge cache with the asset.
    Fill,
    /// Relayed from a peer edge of the region (the director).
    Peer,
    /// A live stream: its playlist from memory or its segments from the ingest cluster.
    Live,
    /// Made here: a steering manifest, a CORS preflight.
    Generated,
    /// Answered with an error before any content was found.
    #[default]
    Error,
}

/// One line of the access log.
#[derive(Clone, Debug, Serialize)]
pub struct AccessRecord {
    /// When the request head was complete (RFC 3339, UTC, milliseconds).
    #[serde(serialize_with = "rfc3339")]
    pub time: SystemTime,
    pub client: Option<SocketAddr>,
    pub tenant: Option<String>,
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub range: Option<String>,
    pub status: u16,
    /// Body bytes written to the client's socket (heads not counted).
    pub bytes: u64,
    pub duration_ms: f64,
    pub outcome: Outcome,
    /// How the body moved: io_uring_splice, sendfile, proxy_sockmap, proxy_splice,
    /// proxy_copy, memory, or none.
    pub body_path: &'static str,
    /// The server a miss, peer or live segment was fetched from.
    pub upstream: Option<SocketAddr>,
}

fn rfc3339<S: serde::Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&humantime::format_rfc3339_millis(*t))
}

impl AccessRecord {
    /// The line, without its newline.
    pub fn to_json(&self) -> String {
        let mut out = Vec::with_capacity(320);
        self.write_json(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    /// Appends the line, without its newline, to `out`.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        if let Err(e) = serde_json::to_writer(&mut *out, self) {
            out.extend_from_slice(format!("{{\"error\":\"access record: {e}\"}}").as_bytes());
        }
    }
}

/// The query string with the values of signature parameters masked.
pub fn redacted_query(query: &str) -> String {
    query
        .split('&')
        .map(|kv| match kv.split_once('=') {
            Some((k, _)) if SECRET_PARAMS.contains(&k) => format!("{k}=-"),
            _ => kv.to_string(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// Signed-URL parameters whose values stay out of the log (the signature, and the client
/// address the URL was bound to).
const SECRET_PARAMS: [&str; 2] = ["sig", "ip"];

/// The tenant a request path names (its first segment), if any.
pub fn tenant_of(path: &str) -> Option<String> {
    let first = path.trim_start_matches('/').split('/').next()?;
    (!first.is_empty()).then(|| first.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_one_json_object_with_every_field() {
        let r = AccessRecord {
            time: std::time::UNIX_EPOCH + std::time::Duration::from_millis(1_700_000_000_123),
            client: Some("10.0.0.1:5000".parse().unwrap()),
            tenant: Some("acme".into()),
            method: "GET".into(),
            path: "/acme/c/a.mp4".into(),
            query: Some(redacted_query("exp=9&sig=abcdef&x=1")),
            range: Some("bytes=0-9".into()),
            status: 206,
            bytes: 10,
            duration_ms: 1.5,
            outcome: Outcome::Hit,
            body_path: "sendfile",
            upstream: None,
        };
        let line = r.to_json();
        assert!(!line.contains('\n'));
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["time"], "2023-11-14T22:13:20.123Z");
        assert_eq!(v["query"], "exp=9&sig=-&x=1");
        assert_eq!(v["outcome"], "hit");
        assert_eq!(v["status"], 206);
        assert_eq!(v["client"], "10.0.0.1:5000");
        assert!(v["upstream"].is_null());
        assert!(!line.contains("abcdef"));
    }

    #[test]
    fn the_tenant_is_the_first_path_segment() {
        assert_eq!(tenant_of("/acme/c/a.mp4").as_deref(), Some("acme"));
        assert_eq!(tenant_of("/"), None);
    }
}
