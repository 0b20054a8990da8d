//! Placement on a storage server's admin listener: the control plane's ingestor asks
//! `GET /v1/objects/{tenant}/{content}/{asset}` for what the server holds (size and SHA-256)
//! and sends `PUT` with the bytes and their SHA-256 (`x-strata-sha256`). A PUT is written
//! beside (`.strata-put/`, never served: dot name), hashed while it arrives, fsynced, checked,
//! tagged with its SHA-256 (extended attribute: the ETag every server then agrees on) and
//! renamed into place, so a reader sees the old file or the whole new one, never a part.
//! Both need the placement key the control plane hands out in heartbeat replies.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use futures_util::StreamExt as _;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt as _;

use strata_http::content_path::ContentPath;
use strata_wire::content_digest::{hex, set_sha256_xattr, sha256_file};
use strata_wire::objects::{remove_leftover_puts, ObjectInfo, PUT_DIR};

use super::control_agent::PlacementKey;

#[derive(Clone)]
struct Intake {
    root: PathBuf,
    key: PlacementKey,
}

/// The object routes over `root`, accepting `key` once it is known.
pub fn routes(root: PathBuf, key: PlacementKey) -> Router {
    let _ = std::fs::create_dir_all(root.join(PUT_DIR));
    let leftovers = remove_leftover_puts(&root);
    if leftovers > 0 {
        tracing::warn!(
            leftovers,
            "removed partial placements an earlier run left; the control plane sends them again"
        );
    }
    Router::new()
        .route("/v1/objects/{tenant}/{content}/{asset}", get(info).put(store))
        .with_state(Intake { root, key })
}

fn refuse(status: StatusCode, message: String) -> Response {
    (status, Json(serde_json::json!({ "error": message }))).into_response()
}

fn refused(status: StatusCode, message: String) -> Box<Response> {
    Box::new(refuse(status, message))
}

/// Checks the bearer key and the path; the file's path relative to the root.
fn admit(intake: &Intake, headers: &HeaderMap, t: &str, c: &str, a: &str) -> Result<String, Box<Response>> {
    let expected = intake.key.read().unwrap_or_else(|p| p.into_inner()).clone();
    let Some(expected) = expected else {
        return Err(refused(
            StatusCode::SERVICE_UNAVAILABLE,
            "this storage server has not registered with a control plane yet".into(),
        ));
    };
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let same = presented.is_some_and(|p| {
        p.len() == expected.len()
            && p.bytes()
                .zip(expected.bytes())
                .fold(0u8, |acc, (x, y)| acc | (x ^ y))
                == 0
    });
    if !same {
        return Err(refused(
            StatusCode::UNAUTHORIZED,
            "missing or wrong placement key".into(),
        ));
    }
    let path = ContentPath::parse(&format!("/{t}/{c}/{a}"))
        .map_err(|e| refused(StatusCode::BAD_REQUEST, format!("object {t}/{c}/{a}: {e}")))?;
    Ok(path.relative())
}

async fn info(
    State(intake): State<Intake>,
    headers: HeaderMap,
    Path((t, c, a)): Path<(String, String, String)>,
) -> Response {
    let rel = match admit(&intake, &headers, &t, &c, &a) {
        Ok(r) => r,
        Err(resp) => return *resp,
    };
    let path = intake.root.join(&rel);
    let hashed = tokio::task::spawn_blocking(move || {
        let size = std::fs::metadata(&path)?.len();
        Ok::<_, std::io::Error>((size, sha256_file(&path)?))
    })
    .await;
    match hashed {
        Ok(Ok((size, sha256))) => Json(ObjectInfo { size, sha256 }).into_response(),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => {
            refuse(StatusCode::NOT_FOUND, format!("no object {rel}"))
        }
        Ok(Err(e)) => refuse(StatusCode::INTERNAL_SERVER_ERROR, format!("reading {rel}: {e}")),
        Err(e) => refuse(StatusCode::INTERNAL_SERVER_ERROR, format!("hashing {rel}: {e}")),
    }
}

async fn store(
    State(intake): State<Intake>,
    headers: HeaderMap,
    Path((t, c, a)): Path<(String, String, String)>,
    body: Body,
) -> Response {
    let rel = match admit(&intake, &headers, &t, &c, &a) {
        Ok(r) => r,
        Err(resp) => return *resp,
    };
    let Some(expected) = headers
        .get("x-strata-sha256")
        .and_then(|v| v.to_str().ok())
        .map(str::to_ascii_lowercase)
    else {
        return refuse(StatusCode::BAD_REQUEST, "header x-strata-sha256: missing".into());
    };
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let tmp = intake.root.join(PUT_DIR).join(format!(
        "{}-{}.part",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    // Removes the partial file if the sender goes away and this handler is dropped mid-body.
    let mut partial = PartialFile(Some(tmp.clone()));
    let result = write_checked(&tmp, body, &expected).await;
    let size = match result {
        Ok(size) => size,
        Err((status, msg)) => {
            let _ = tokio::fs::remove_file(&tmp).await;
            return refuse(status, format!("object {rel}: {msg}"));
        }
    };
    let dest = intake.root.join(&rel);
    let sha256 = expected.clone();
    partial.0 = None; // the blocking task below renames or removes it
    let placed = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        if let Err(e) = set_sha256_xattr(&tmp, &expected) {
            tracing::warn!(file = %tmp.display(), error = %e, "no extended attributes here: this copy's ETag will be inode-based");
        }
        let dir = dest.parent().ok_or_else(|| std::io::Error::other("object path without a directory"))?;
        std::fs::create_dir_all(dir)?;
        std::fs::rename(&tmp, &dest).inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp);
        })?;
        std::fs::File::open(dir)?.sync_all()
    })
    .await;
    match placed {
        Ok(Ok(())) => {
            tracing::info!(object = %rel, bytes = size, "object placed");
            (StatusCode::CREATED, Json(ObjectInfo { size, sha256 })).into_response()
        }
        Ok(Err(e)) => refuse(StatusCode::INTERNAL_SERVER_ERROR, format!("placing {rel}: {e}")),
        Err(e) => refuse(StatusCode::INTERNAL_SERVER_ERROR, format!("placing {rel}: {e}")),
    }
}

/// A placement being written; removed when dropped unless taken.
struct PartialFile(Option<PathBuf>);

impl Drop for PartialFile {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Streams the body into `tmp`, hashing it; fsyncs; checks the SHA-256.
async fn write_checked(
    tmp: &std::path::Path,
    body: Body,
    expected: &str,
) -> Result<u64, (StatusCode, String)> {
    let io = |e: std::io::Error| {
        (
            StatusCode::INSUFFICIENT_STORAGE,
            format!("writing {}: {e}", tmp.display()),
        )
    };
    let mut file = tokio::fs::File::create(tmp).await.map_err(io)?;
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            (
                StatusCode::BAD_REQUEST,
                format!("body broke off after {size} bytes: {e}"),
            )
        })?;
        hasher.update(&chunk);
        size += chunk.len() as u64;
        file.write_all(&chunk).await.map_err(io)?;
    }
    file.sync_all().await.map_err(io)?;
    let got = hex(&hasher.finalize());
    if got != expected {
        return Err((
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("{size} bytes arrived with SHA-256 {got}, expected {expected}"),
        ));
    }
    Ok(size)
}
