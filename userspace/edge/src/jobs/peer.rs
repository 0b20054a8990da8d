//! The peer transfer endpoint on an edge's admin listener: `GET /v1/peer/{tenant}/{content}/{asset}`
//! serves a file this edge holds whole and verified (only indexed files: never a fill or a job
//! transfer in progress) to another edge, by ranges (`Range: bytes=N-` or `N-M` → 206 with
//! Content-Range), with the peer key as bearer (derived from the placement key; the control plane
//! hands it to edges in the job agent's replies). This is how a target that finished becomes a source in a cascade.

use std::io::SeekFrom;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use crate::cache::EdgeCache;
use crate::server::control_agent::PlacementKey;
use strata_http::content_path::ContentPath;

#[derive(Clone)]
struct Peer {
    cache: Arc<EdgeCache>,
    key: PlacementKey,
}

/// The peer routes over `cache`, accepting `key` once the control plane gave it.
pub fn routes(cache: Arc<EdgeCache>, key: PlacementKey) -> Router {
    Router::new()
        .route("/v1/peer/{tenant}/{content}/{asset}", get(serve))
        .with_state(Peer { cache, key })
}

fn refuse(status: StatusCode, message: String) -> Response {
    (status, Json(serde_json::json!({ "error": message }))).into_response()
}

fn key_matches(expected: &str, headers: &HeaderMap) -> bool {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    presented.is_some_and(|p| {
        p.len() == expected.len()
            && p.bytes()
                .zip(expected.bytes())
                .fold(0u8, |acc, (x, y)| acc | (x ^ y))
                == 0
    })
}

/// `bytes=N-` or `bytes=N-M` against `len`: (start, end inclusive); None: not satisfiable.
fn parse_range(v: &str, len: u64) -> Option<(u64, u64)> {
    let (a, b) = v.trim().strip_prefix("bytes=")?.split_once('-')?;
    let start: u64 = a.trim().parse().ok()?;
    let end = if b.trim().is_empty() {
        len.checked_sub(1)?
    } else {
        b.trim().parse::<u64>().ok()?.min(len.checked_sub(1)?)
    };
    (start <= end).then_some((start, end))
}

async fn serve(
    State(peer): State<Peer>,
    headers: HeaderMap,
    Path((t, c, a)): Path<(String, String, String)>,
) -> Response {
    let expected = peer.key.read().unwrap_or_else(|p| p.into_inner()).clone();
    let Some(expected) = expected else {
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "this edge has not heard the peer key from the control plane yet".into(),
        );
    };
    if !key_matches(&expected, &headers) {
        return refuse(StatusCode::UNAUTHORIZED, "missing or wrong peer key".into());
    }
    let rel = match ContentPath::parse(&format!("/{t}/{c}/{a}")) {
        Ok(p) => p.relative(),
        Err(e) => return refuse(StatusCode::BAD_REQUEST, format!("asset {t}/{c}/{a}: {e}")),
    };
    if !peer
        .cache
        .index
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .contains(&rel)
    {
        return refuse(StatusCode::NOT_FOUND, format!("this edge does not hold {rel}"));
    }
    let path = peer.cache.root.join(&rel);
    let mut file = match tokio::fs::File::open(&path).await {
        Ok(f) => f,
        Err(e) => return refuse(StatusCode::NOT_FOUND, format!("opening {rel}: {e}")),
    };
    let len = match file.metadata().await {
        Ok(m) => m.len(),
        Err(e) => return refuse(StatusCode::INTERNAL_SERVER_ERROR, format!("reading {rel}: {e}")),
    };
    let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    let (status, start, end) = match range {
        None => (StatusCode::OK, 0, len.saturating_sub(1)),
        Some(v) => match parse_range(v, len) {
            Some((s, e)) => (StatusCode::PARTIAL_CONTENT, s, e),
            None => {
                return (
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    [(header::CONTENT_RANGE, format!("bytes */{len}"))],
                    Json(serde_json::json!({"error": format!("range {v:?} of {rel} ({len} bytes) is not satisfiable")})),
                )
                    .into_response()
            }
        },
    };
    let count = if len == 0 { 0 } else { end - start + 1 };
    if let Err(e) = file.seek(SeekFrom::Start(start)).await {
        return refuse(StatusCode::INTERNAL_SERVER_ERROR, format!("seeking {rel}: {e}"));
    }
    let cache = peer.cache.clone();
    let body = futures_util::stream::unfold((file, count), move |(mut file, left)| {
        let cache = cache.clone();
        async move {
            if left == 0 {
                return None;
            }
            let mut buf = vec![0u8; (left as usize).min(256 * 1024)];
            match file.read(&mut buf).await {
                Ok(0) => Some((
                    Err(std::io::Error::other("the file shrank while being sent")),
                    (file, 0),
                )),
                Ok(n) => {
                    buf.truncate(n);
                    cache
                        .counters
                        .peer_bytes_sent
                        .fetch_add(n as u64, Ordering::Relaxed);
                    Some((Ok(axum::body::Bytes::from(buf)), (file, left - n as u64)))
                }
                Err(e) => Some((Err(e), (file, 0))),
            }
        }
    });
    let mut resp = Response::builder()
        .status(status)
        .header(header::CONTENT_LENGTH, count)
        .header(header::ACCEPT_RANGES, "bytes");
    if status == StatusCode::PARTIAL_CONTENT {
        resp = resp.header(header::CONTENT_RANGE, format!("bytes {start}-{end}/{len}"));
    }
    resp.body(Body::from_stream(body)).unwrap_or_else(|e| {
        refuse(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("building the answer: {e}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::parse_range;

    #[test]
    fn ranges_resolve_against_the_length() {
        assert_eq!(parse_range("bytes=0-", 10), Some((0, 9)));
        assert_eq!(parse_range("bytes=4-", 10), Some((4, 9)));
        assert_eq!(parse_range("bytes=2-5", 10), Some((2, 5)));
        assert_eq!(parse_range("bytes=2-50", 10), Some((2, 9)));
        assert_eq!(parse_range("bytes=10-", 10), None);
        assert_eq!(parse_range("bytes=-5", 10), None);
        assert_eq!(parse_range("items=0-", 10), None);
    }
}
