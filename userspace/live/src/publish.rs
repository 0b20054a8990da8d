//! Publishing: `PUT`/`POST` of playlists, init and media segments under `/{tenant}/{stream}/`,
//! `DELETE` of old segments (acknowledged; the recording keeps them). Checks the tenant's
//! token, the limits (segment size, playlist size → 413; streams per tenant → 429; quota → 413),
//! writes segments as they arrive, and folds each pushed playlist into the recording.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt as _;
use strata_http::content_path::ContentPath;
use strata_wire::live::LivePhase;

use crate::body_sink;
use crate::context::LiveContext;
use crate::live_metrics::KindLabels;
use crate::playlist;
use crate::publish_auth::TenantInfo;
use crate::publish_error::PublishError;
use crate::stream_state::{write_atomic, StreamState};
use crate::streams::StreamHandle;

/// What a published file is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    Playlist,
    Segment,
}

/// The kind of `name` by its extension; anything else is refused (415).
pub fn file_kind(name: &str) -> Option<FileKind> {
    let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase())?;
    match ext.as_str() {
        "m3u8" => Some(FileKind::Playlist),
        "ts" | "m4s" | "mp4" | "m4a" | "m4v" | "aac" | "cmfv" | "cmfa" | "vtt" | "webvtt" => {
            Some(FileKind::Segment)
        }
        _ => None,
    }
}

/// PUT, POST or DELETE of `path`.
pub async fn publish(
    ctx: &Arc<LiveContext>,
    method: &str,
    path: &ContentPath,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, PublishError> {
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok());
    let tenant = ctx.auth.check(&path.tenant, auth).await?;
    let kind = file_kind(&path.asset).ok_or_else(|| {
        PublishError::new(
            415,
            format!(
                "{}: not a file a stream publishes (playlists .m3u8; segments .ts, .m4s, .mp4, .m4a, .aac, .vtt)",
                path.asset
            ),
        )
    })?;
    if method == "DELETE" {
        ctx.metrics
            .publishes
            .get_or_create(&KindLabels { kind: "delete" })
            .inc();
        tracing::debug!(path = %path.relative(), "encoder deleted a segment from its window; the recording keeps it");
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let handle = stream_for(ctx, path, &tenant).await?;
    match kind {
        FileKind::Segment => publish_segment(ctx, path, headers, body, &tenant, &handle).await,
        FileKind::Playlist => publish_playlist(ctx, path, body, &tenant, &handle).await,
    }
}

/// The stream `path` publishes to: held, saved by another server, or new (within the
/// tenant's stream limit). A stream that ended and is being archived refuses more (409).
async fn stream_for(
    ctx: &Arc<LiveContext>,
    path: &ContentPath,
    tenant: &TenantInfo,
) -> Result<StreamHandle, PublishError> {
    let dir = ctx.streams.dir(&path.tenant, &path.content_id);
    let handle = match ctx.streams.find(&path.tenant, &path.content_id) {
        Some(h) => h,
        None => {
            let limit = ctx.settings.limits.max_streams_per_tenant;
            let active = ctx.streams.active_of(&path.tenant).await;
            if active >= limit {
                return Err(PublishError::new(
                    429,
                    format!(
                        "tenant {} already publishes {active} streams, the limit per tenant; stream {} refused",
                        path.tenant, path.content_id
                    ),
                ));
            }
            tokio::fs::create_dir_all(&dir)
                .await
                .map_err(|e| PublishError::new(500, format!("creating {}: {e}", dir.display())))?;
            tracing::info!(stream = %format!("{}/{}", path.tenant, path.content_id), "new live stream");
            ctx.streams.insert(StreamState::new(
                &path.tenant,
                &path.content_id,
                tenant.idle_archive_secs,
            ))
        }
    };
    let mut held = handle.lock().await;
    held.refresh(&dir);
    match held.state.phase {
        LivePhase::Live => {}
        LivePhase::Archived => {
            tokio::fs::create_dir_all(&dir)
                .await
                .map_err(|e| PublishError::new(500, format!("creating {}: {e}", dir.display())))?;
            let generation = held.state.generation + 1;
            held.state = StreamState::new(&path.tenant, &path.content_id, tenant.idle_archive_secs);
            held.state.generation = generation;
        }
        LivePhase::Ending | LivePhase::Archiving => {
            return Err(PublishError::new(
                409,
                format!(
                    "stream {}/{} ended and its recording is being archived; publish again once it is archived (GET /v1/live on the control plane)",
                    path.tenant, path.content_id
                ),
            ));
        }
    }
    held.state.idle_archive_secs = tenant.idle_archive_secs;
    drop(held);
    Ok(handle)
}

async fn publish_segment(
    ctx: &Arc<LiveContext>,
    path: &ContentPath,
    headers: &HeaderMap,
    body: Body,
    tenant: &TenantInfo,
    handle: &StreamHandle,
) -> Result<Response, PublishError> {
    let max = ctx.settings.limits.max_segment_bytes;
    let declared = headers
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(len) = declared.filter(|l| *l > max) {
        return Err(PublishError::new(
            413,
            format!(
                "{}: {len} bytes is more than the {max}-byte segment limit",
                path.relative()
            ),
        ));
    }
    let dir = ctx.streams.dir(&path.tenant, &path.content_id);
    let recorded = {
        let mut held = handle.lock().await;
        if tenant.quota_bytes > 0 {
            let after = tenant.used_bytes + held.state.bytes() + declared.unwrap_or(0);
            if after > tenant.quota_bytes {
                return Err(PublishError::new(
                    413,
                    format!(
                        "{}: tenant {}'s quota is {} bytes; stored content and this recording would reach {after} bytes",
                        path.relative(),
                        path.tenant,
                        tenant.quota_bytes
                    ),
                ));
            }
        }
        let name = held.state.name_upload(&path.asset);
        if name.new_run {
            tracing::info!(stream = %held.state.key(), run = held.state.run, "encoder restarted: a new run of the recording (discontinuity)");
        }
        name.recorded
    };
    // Clears the in-flight mark if this request is dropped mid-body (the peer vanished).
    let mut in_flight = InFlight {
        handle: Some(handle.clone()),
        name: path.asset.clone(),
    };
    let bytes_in = &ctx.metrics.bytes_in;
    let written = body_sink::receive(&dir, &recorded, body, max, ctx.settings.limits.body_stall, |n| {
        bytes_in.inc_by(n);
    })
    .await;
    let mut held = handle.lock().await;
    let written = match written {
        Ok(n) => n,
        Err(e) => {
            held.state.upload_failed(&path.asset);
            in_flight.handle = None;
            return Err(PublishError::new(
                e.status(),
                format!("{}/{}: {e}", path.tenant, path.content_id),
            ));
        }
    };
    held.state.uploaded(&path.asset, &recorded, written);
    in_flight.handle = None;
    if held.state.listed_late(&path.asset) {
        if let (Some(p), Some(name)) = (held.state.last_pushed.clone(), held.state.playlist.clone()) {
            held.state.apply(&name, &p);
            let live = held.state.live_playlist();
            write_atomic(&dir.join(&name), live.as_bytes()).map_err(|e| {
                PublishError::new(
                    500,
                    format!("writing the live playlist of {}: {e}", held.state.key()),
                )
            })?;
        }
    }
    held.save(&dir)
        .map_err(|e| PublishError::new(500, format!("saving the state of {}: {e}", held.state.key())))?;
    ctx.metrics
        .publishes
        .get_or_create(&KindLabels { kind: "segment" })
        .inc();
    Ok((
        StatusCode::CREATED,
        format!("stored {} ({written} bytes)\n", path.relative()),
    )
        .into_response())
}

/// An upload's in-flight mark, cleared by a task if the request is dropped before it ends.
struct InFlight {
    handle: Option<StreamHandle>,
    name: String,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take() {
            let name = std::mem::take(&mut self.name);
            tokio::spawn(async move { handle.lock().await.state.upload_failed(&name) });
        }
    }
}

async fn publish_playlist(
    ctx: &Arc<LiveContext>,
    path: &ContentPath,
    body: Body,
    tenant: &TenantInfo,
    handle: &StreamHandle,
) -> Result<Response, PublishError> {
    let max = ctx.settings.limits.max_playlist_bytes;
    let mut text = Vec::new();
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            PublishError::new(
                400,
                format!(
                    "{}: body broke off after {} bytes: {e}",
                    path.relative(),
                    text.len()
                ),
            )
        })?;
        if text.len() + chunk.len() > max as usize {
            return Err(PublishError::new(
                413,
                format!("{}: playlist larger than the {max}-byte limit", path.relative()),
            ));
        }
        text.extend_from_slice(&chunk);
    }
    ctx.metrics.bytes_in.inc_by(text.len() as u64);
    let text = String::from_utf8(text)
        .map_err(|_| PublishError::new(400, format!("{}: playlist is not UTF-8", path.relative())))?;
    let pushed =
        playlist::parse(&text).map_err(|e| PublishError::new(400, format!("{}: {e}", path.relative())))?;
    let dir = ctx.streams.dir(&path.tenant, &path.content_id);
    // Encoders send the playlist as soon as a segment's body is out, without its answer: wait
    // (a bounded time) for uploads the playlist lists that are still being written.
    let mut held = handle.lock().await;
    for _ in 0..500 {
        if held.state.awaited(&pushed).is_empty() {
            break;
        }
        drop(held);
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        held = handle.lock().await;
    }
    if let Some(other) = held.state.playlist.as_deref().filter(|p| *p != path.asset) {
        return Err(PublishError::new(
            409,
            format!(
                "stream {} already publishes playlist {other}; one media playlist per stream ({} refused)",
                held.state.key(),
                path.asset
            ),
        ));
    }
    held.state.idle_archive_secs = tenant.idle_archive_secs;
    let applied = held.state.apply(&path.asset, &pushed);
    if !applied.missing.is_empty() {
        tracing::debug!(stream = %held.state.key(), missing = ?applied.missing, "the playlist lists files not whole yet; they are recorded when they arrive");
    }
    let live = held.state.live_playlist();
    write_atomic(&dir.join(&path.asset), live.as_bytes()).map_err(|e| {
        PublishError::new(
            500,
            format!("writing the live playlist of {}: {e}", held.state.key()),
        )
    })?;
    held.save(&dir)
        .map_err(|e| PublishError::new(500, format!("saving the state of {}: {e}", held.state.key())))?;
    if pushed.ended {
        tracing::info!(stream = %held.state.key(), segments = held.state.segments.len(), "encoder ended the stream (ENDLIST)");
    }
    ctx.metrics
        .publishes
        .get_or_create(&KindLabels { kind: "playlist" })
        .inc();
    Ok((
        StatusCode::CREATED,
        format!(
            "recorded {} new segments of {}\n",
            applied.added,
            held.state.key()
        ),
    )
        .into_response())
}
