//! Serving a stream's files to edges (GET/HEAD): the live playlist (rewritten on every publish,
//! short `Cache-Control`) and recorded segments (immutable: their names are unique for the
//! whole recording), with validators and single byte ranges (edges fetch pieces).

use std::os::unix::fs::MetadataExt as _;
use std::sync::Arc;
use std::time::SystemTime;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::Response;
use strata_http::content_path::ContentPath;
use strata_http::file_plan::{plan_file_response, PlanError, Validators};
use strata_http::request::{Method, RequestHead};
use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _};

use crate::context::LiveContext;
use crate::live_metrics::KindLabels;
use crate::publish::{file_kind, FileKind};
use crate::publish_error::PublishError;

/// Largest file served (bodies are read into memory: playlists and segments are small).
const MAX_SERVED: u64 = 256 << 20;

/// GET or HEAD of `path`.
pub async fn serve(
    ctx: &Arc<LiveContext>,
    head_only: bool,
    path: &ContentPath,
    query: Option<&str>,
    headers: &HeaderMap,
) -> Result<Response, PublishError> {
    let kind = file_kind(&path.asset);
    ctx.metrics
        .viewer_requests
        .get_or_create(&KindLabels {
            kind: if kind == Some(FileKind::Playlist) {
                "playlist"
            } else {
                "segment"
            },
        })
        .inc();
    let file_path = ctx.streams.dir(&path.tenant, &path.content_id).join(&path.asset);
    let not_found = || PublishError::new(404, format!("no such live file {}", path.relative()));
    let mut file = tokio::fs::File::open(&file_path).await.map_err(|_| not_found())?;
    let meta = file.metadata().await.map_err(|_| not_found())?;
    if !meta.is_file() {
        return Err(not_found());
    }
    if meta.len() > MAX_SERVED {
        return Err(PublishError::new(
            500,
            format!("{} is larger than {MAX_SERVED} bytes", path.relative()),
        ));
    }
    let mtime = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
    let etag = format!(
        "\"{:x}-{:x}-{:x}\"",
        meta.ino(),
        meta.len(),
        meta.mtime_nsec() ^ (meta.mtime() << 20)
    );
    let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).map(str::to_string);
    let request = RequestHead {
        method: Some(if head_only { Method::Head } else { Method::Get }),
        path: String::new(),
        query: query.map(str::to_string),
        minor_version: 1,
        keep_alive: true,
        range: header("range"),
        if_range: header("if-range"),
        if_none_match: header("if-none-match"),
        if_modified_since: header("if-modified-since"),
        hop: false,
        origin: header("origin"),
    };
    let validators = Validators {
        len: meta.len(),
        etag: &etag,
        mtime,
    };
    let plan = plan_file_response(&request, validators).map_err(|e| match e {
        PlanError::BadQuery(_) => PublishError::new(400, e.to_string()),
        PlanError::Unsatisfiable { .. } => PublishError::new(416, e.to_string()),
    })?;
    let mut body = Vec::new();
    if let (true, Some(range)) = (plan.send_body, plan.body) {
        file.seek(std::io::SeekFrom::Start(range.start))
            .await
            .map_err(|e| PublishError::new(500, format!("reading {}: {e}", path.relative())))?;
        body = vec![0u8; range.len() as usize];
        file.read_exact(&mut body)
            .await
            .map_err(|e| PublishError::new(500, format!("reading {}: {e}", path.relative())))?;
    }
    let mut resp = Response::builder().status(plan.status);
    let ctype = match path.asset.rsplit_once('.').map(|(_, e)| e) {
        Some("m3u8") => "application/vnd.apple.mpegurl",
        Some("ts") => "video/mp2t",
        Some("m4s") | Some("mp4") | Some("m4v") | Some("cmfv") => "video/mp4",
        Some("m4a") | Some("cmfa") => "audio/mp4",
        Some("aac") => "audio/aac",
        Some("vtt") | Some("webvtt") => "text/vtt",
        _ => "application/octet-stream",
    };
    let cache = if kind == Some(FileKind::Playlist) {
        "max-age=1"
    } else {
        "max-age=86400, immutable"
    };
    let h = resp.headers_mut().expect("builder without error");
    h.insert("content-type", HeaderValue::from_static(ctype));
    h.insert("cache-control", HeaderValue::from_static(cache));
    h.insert("accept-ranges", HeaderValue::from_static("bytes"));
    h.insert("access-control-allow-origin", HeaderValue::from_static("*"));
    h.insert("age", HeaderValue::from_static("0"));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert("etag", v);
    }
    if let Ok(v) = HeaderValue::from_str(&httpdate::fmt_http_date(mtime)) {
        h.insert("last-modified", v);
    }
    if let (true, Some(range)) = (plan.partial, plan.body) {
        if let Ok(v) = HeaderValue::from_str(&format!("bytes {}-{}/{}", range.start, range.end, meta.len())) {
            h.insert("content-range", v);
        }
    }
    let len = plan.body.map_or(0, |b| b.len());
    if plan.status != 304 {
        h.insert("content-length", HeaderValue::from(len));
    }
    resp.body(Body::from(body))
        .map_err(|e| PublishError::new(500, format!("building the response: {e}")))
}
