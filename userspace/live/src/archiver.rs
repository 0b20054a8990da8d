//! End and archive: a stream ends when the encoder sent `#EXT-X-ENDLIST` or published nothing
//! for the tenant's idle-archive time. The recording is finalized (a VOD playlist of every
//! segment, under the stream's playlist name) and handed to the control plane's ingest API,
//! which places it through the durable work queue on the tenant's home cluster, replicas and
//! the archive with SHA-256 checks. When the content is ready the stream is archived; its local
//! copy goes after a grace time (edges switch to storage at their next lookup refresh).
//! Every step is saved in the stream's state, so a restart (or the cluster's other server)
//! resumes where it stopped; the control plane's "content absent" guard keeps a repeated
//! commit from placing a recording twice.

use serde_json::{json, Value};
use std::sync::Arc;
use strata_wire::client::ServiceClient;
use strata_wire::live::LivePhase;

use crate::context::LiveContext;
use crate::stream_state::{now_unix, write_atomic, StreamState};
use crate::streams::StreamHandle;

/// How long an archived recording's local copy stays servable.
const GRACE_SECS: u64 = 30;

/// Checks every stream each `archive_check` until `shutdown` changes.
pub async fn run(
    ctx: Arc<LiveContext>,
    client: ServiceClient,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(ctx.settings.archive_check);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut ticks = 0u64;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        ticks += 1;
        if ticks.is_multiple_of(10) {
            match ctx.streams.adopt_saved() {
                Ok(0) => {}
                Ok(n) => tracing::info!(
                    streams = n,
                    "took on streams another server of the cluster recorded"
                ),
                Err(e) => {
                    tracing::warn!(root = %ctx.settings.root.display(), error = %e, "scanning the recording root failed")
                }
            }
        }
        for h in ctx.streams.all() {
            step(&ctx, &client, &h).await;
        }
    }
}

/// Moves one stream on by at most one phase.
async fn step(ctx: &Arc<LiveContext>, client: &ServiceClient, h: &StreamHandle) {
    let mut held = h.lock().await;
    let (tenant, stream) = (held.state.tenant.clone(), held.state.stream.clone());
    let dir = ctx.streams.dir(&tenant, &stream);
    held.refresh(&dir);
    let key = held.state.key();
    if held.vanished(&dir) {
        tracing::info!(stream = %key, "another server of the cluster archived this stream; forgetting it");
        ctx.streams.remove(&key);
        return;
    }
    let now = now_unix();
    match held.state.phase {
        LivePhase::Live => {
            let idle = now.saturating_sub(held.state.last_publish_unix) >= held.state.idle_archive_secs;
            if !(held.state.ended || idle) {
                return;
            }
            if held.state.segments.is_empty() {
                tracing::info!(stream = %key, "stream ended with nothing recorded; dropping it");
                let _ = std::fs::remove_dir_all(&dir);
                ctx.streams.remove(&key);
                return;
            }
            held.state.phase = LivePhase::Ending;
            tracing::info!(stream = %key, segments = held.state.segments.len(), by_endlist = held.state.ended, "stream ended; finalizing the recording");
            save(&mut held, &dir);
        }
        LivePhase::Ending => {
            let c = client.clone();
            let (t, s) = (tenant.clone(), stream.clone());
            let chosen = tokio::task::spawn_blocking(move || free_content_id(&c, &t, &s)).await;
            let content = match chosen {
                Ok(Ok(c)) => c,
                Ok(Err(e)) => {
                    return tracing::warn!(stream = %key, error = %e, "cannot choose the archive's name yet; retrying")
                }
                Err(e) => return tracing::error!(error = %e, "archive task failed"),
            };
            let Some(playlist) = held.state.playlist.clone() else {
                return tracing::warn!(stream = %key, "ended stream never published a playlist; waiting");
            };
            if let Err(e) = write_atomic(&dir.join(&playlist), held.state.vod_playlist().as_bytes()) {
                return tracing::warn!(stream = %key, error = %e, "writing the VOD playlist failed; retrying");
            }
            tracing::info!(stream = %key, content = %content, "recording finalized; archiving");
            held.state.archive_content = Some(content);
            held.state.phase = LivePhase::Archiving;
            save(&mut held, &dir);
        }
        LivePhase::Archiving => {
            let snapshot = held.state.clone();
            drop(held);
            let c = client.clone();
            let d = dir.clone();
            let done = tokio::task::spawn_blocking(move || archive(&c, &d, &snapshot)).await;
            match done {
                Ok(Ok(true)) => {
                    let mut held = h.lock().await;
                    held.state.phase = LivePhase::Archived;
                    held.state.archived_unix = now_unix();
                    save(&mut held, &dir);
                    ctx.metrics.archived.inc();
                    tracing::info!(stream = %key, content = ?held.state.archive_content, "recording archived; edges now fetch it from storage");
                }
                Ok(Ok(false)) => {}
                Ok(Err(e)) => tracing::warn!(stream = %key, error = %e, "archiving not finished; retrying"),
                Err(e) => tracing::error!(error = %e, "archive task failed"),
            }
        }
        LivePhase::Archived => {
            if now.saturating_sub(held.state.archived_unix) >= GRACE_SECS {
                tracing::info!(stream = %key, "removing the archived recording's local copy");
                let _ = std::fs::remove_dir_all(&dir);
                ctx.streams.remove(&key);
            }
        }
    }
}

fn save(held: &mut crate::streams::Held, dir: &std::path::Path) {
    if let Err(e) = held.save(dir) {
        tracing::error!(stream = %held.state.key(), error = %e, "saving the stream state failed");
    }
}

/// `stream` if the tenant has no such content, else the first free `stream-N` (N ≥ 2): a key
/// published again after its recording was archived starts a new recording under a new name.
fn free_content_id(client: &ServiceClient, tenant: &str, stream: &str) -> Result<String, String> {
    for n in 1..10_000u32 {
        let id = if n == 1 {
            stream.to_string()
        } else {
            format!("{stream}-{n}")
        };
        match client.get::<Value>(&format!("/v1/tenants/{tenant}/contents/{id}")) {
            Ok(_) => continue,
            Err(e) if e.status() == Some(404) => return Ok(id),
            Err(e) => return Err(e.to_string()),
        }
    }
    Err(format!("no free content name for {tenant}/{stream}"))
}

/// One archiving round: uploads and commits the recording unless the content exists; true once
/// the content is ready (placed everywhere).
fn archive(client: &ServiceClient, dir: &std::path::Path, s: &StreamState) -> Result<bool, String> {
    let content = s
        .archive_content
        .clone()
        .ok_or_else(|| "no archive name chosen".to_string())?;
    let tenant = &s.tenant;
    match client.get::<Value>(&format!("/v1/tenants/{tenant}/contents/{content}")) {
        Ok(v) => {
            let state = v["state"]
                .as_str()
                .or_else(|| v["record"]["state"].as_str())
                .unwrap_or("");
            return Ok(state == "ready");
        }
        Err(e) if e.status() == Some(404) => {}
        Err(e) => return Err(e.to_string()),
    }
    let mut files = s.recorded_files();
    if let Some(p) = &s.playlist {
        files.push(p.clone());
    }
    let mut assets = Vec::new();
    for name in &files {
        let len = std::fs::metadata(dir.join(name))
            .map_err(|e| format!("recorded file {}: {e}", dir.join(name).display()))?
            .len();
        let kind = if name.ends_with(".m3u8") {
            "manifest"
        } else {
            "video"
        };
        assets.push(json!({"name": name, "size": len, "kind": kind}));
    }
    let opened: Value = match client.post(
        &format!("/v1/tenants/{tenant}/ingests"),
        &json!({"content": content, "assets": assets}),
    ) {
        Ok(v) => v,
        Err(e) if e.status() == Some(409) => return Ok(false),
        Err(e) => return Err(e.to_string()),
    };
    let id = opened["id"]
        .as_str()
        .ok_or("ingest answer without id")?
        .to_string();
    for name in &files {
        let path = dir.join(name);
        let mut f = std::fs::File::open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let len = f.metadata().map_err(|e| e.to_string())?.len();
        client
            .put_stream::<Value>(&format!("/v1/ingests/{id}/files/{name}"), &mut f, len, &[])
            .map_err(|e| e.to_string())?;
    }
    match client.post::<_, Value>(&format!("/v1/ingests/{id}/commit"), &json!({})) {
        Ok(_) => {}
        Err(e) if e.status() == Some(409) => {}
        Err(e) => return Err(e.to_string()),
    }
    tracing::info!(tenant = %tenant, content = %content, files = files.len(), "recording committed; placement queued");
    Ok(false)
}
