//! The background fill of an admitted asset: one whole-asset fetch from the storage tier,
//! written to a temporary file under `.strata-fill/` in the cache directory, fsynced, given the
//! storage server's modification time, renamed into place and its directory fsynced. Only then
//! is it indexed and served as a hit: a partial fill is never served, and after a crash the
//! leftovers are removed at start.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::fill_dir::FILL_DIR;
use super::EdgeCache;
use crate::upstream::body_relay::has_pending_bytes;
use crate::upstream::pool::UpstreamPool;
use crate::upstream::upstream_head::read_upstream_head;
use strata_http::content_path::ContentPath;

/// Why a fill from one server failed.
#[derive(Debug, Error)]
pub enum FillError {
    #[error("connecting: {0}")]
    Connect(std::io::Error),
    #[error("storage server: {0}")]
    Upstream(String),
    #[error("answered {0}, not 200")]
    Status(u16),
    #[error("response without Content-Length")]
    NoLength,
    #[error("{len} bytes do not fit a cache of {capacity} bytes")]
    TooLarge { len: u64, capacity: u64 },
    #[error("the storage server ended the body {missing} bytes early")]
    Short { missing: u64 },
    #[error("writing {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
}

/// Starts the one fill of `path` (its raw request path `raw_path`) from the first of `servers`
/// that serves it whole.
pub fn spawn_fill(
    cache: Arc<EdgeCache>,
    pool: Arc<UpstreamPool>,
    path: ContentPath,
    raw_path: String,
    servers: Vec<SocketAddr>,
) {
    cache.counters.fills_started.fetch_add(1, Ordering::Relaxed);
    tokio::spawn(async move {
        let rel = path.relative();
        tracing::info!(asset = %rel, "cache fill started (admitted)");
        let mut outcome = Err(FillError::Upstream("no storage server to fill from".into()));
        for server in servers {
            outcome = fill_from(&cache, &pool, &rel, &raw_path, server).await;
            match &outcome {
                Ok(len) => {
                    tracing::info!(asset = %rel, %server, bytes = len, "cache fill completed; later requests are local hits");
                    break;
                }
                Err(e) => {
                    tracing::warn!(asset = %rel, %server, error = %e, "cache fill from this server failed")
                }
            }
        }
        let counter = match outcome {
            Ok(_) => &cache.counters.fills_completed,
            Err(_) => &cache.counters.fills_failed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        cache
            .admission
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .fill_ended(&rel);
    });
}

async fn fill_from(
    cache: &EdgeCache,
    pool: &UpstreamPool,
    rel: &str,
    raw_path: &str,
    server: SocketAddr,
) -> Result<u64, FillError> {
    let timeout = pool.settings().response_timeout;
    let (mut up, _) = pool.checkout(server).await.map_err(FillError::Connect)?;
    let request =
        format!("GET {raw_path} HTTP/1.1\r\nHost: {server}\r\nUser-Agent: strata-edge-fill\r\n\r\n");
    up.write_all(request.as_bytes())
        .await
        .map_err(|e| FillError::Upstream(format!("sending request: {e}")))?;
    let head = read_upstream_head(&mut up, timeout)
        .await
        .map_err(|f| FillError::Upstream(f.reason))?;
    if head.status != 200 {
        return Err(FillError::Status(head.status));
    }
    let len = head.content_length.ok_or(FillError::NoLength)?;
    if !cache.make_room(len) {
        return Err(FillError::TooLarge {
            len,
            capacity: cache.settings.capacity,
        });
    }
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let tmp = cache.root.join(FILL_DIR).join(format!(
        "{}-{}.part",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let written = write_body(&mut up, &tmp, len, timeout, head.header("last-modified")).await;
    if written.is_ok() {
        keep_content_tag(&tmp, head.header("etag"));
    }
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    let dest = cache.root.join(rel);
    let placed = place(&tmp, &dest);
    if let Err(source) = placed {
        let _ = std::fs::remove_file(&tmp);
        return Err(FillError::Write { path: dest, source });
    }
    cache
        .index
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .touch(rel, len);
    cache.make_room(0); // another fill may have landed meanwhile
    if !head.close && !has_pending_bytes(&up) {
        pool.checkin(server, up);
    }
    Ok(len)
}

/// Copies exactly `len` body bytes into a new file at `tmp`, fsyncs it and gives it the
/// storage server's modification time.
async fn write_body(
    up: &mut tokio::net::TcpStream,
    tmp: &Path,
    len: u64,
    timeout: Duration,
    last_modified: Option<&str>,
) -> Result<(), FillError> {
    let write_err = |source| FillError::Write {
        path: tmp.to_path_buf(),
        source,
    };
    let mut file = tokio::fs::File::create(tmp).await.map_err(write_err)?;
    let mut buf = vec![0u8; (len as usize).clamp(1, 256 * 1024)];
    let mut left = len;
    while left > 0 {
        let want = (left as usize).min(buf.len());
        let n = match tokio::time::timeout(timeout, up.read(&mut buf[..want])).await {
            Err(_) => return Err(FillError::Upstream(format!("nothing for {timeout:?}"))),
            Ok(Err(e)) => return Err(FillError::Upstream(e.to_string())),
            Ok(Ok(0)) => return Err(FillError::Short { missing: left }),
            Ok(Ok(n)) => n,
        };
        file.write_all(&buf[..n]).await.map_err(write_err)?;
        left -= n as u64;
    }
    file.sync_all().await.map_err(write_err)?;
    let std_file = file.into_std().await;
    if let Some(t) = last_modified.and_then(|v| httpdate::parse_http_date(v).ok()) {
        std_file.set_modified(t).map_err(write_err)?;
    }
    Ok(())
}

/// Copies a storage server's content ETag (32 hex digits, from a placed file's SHA-256) onto
/// the filled file, so the edge serves the same ETag and a conditional request matches.
fn keep_content_tag(tmp: &Path, etag: Option<&str>) {
    let Some(hex) = etag.and_then(|e| e.strip_prefix('"')?.strip_suffix('"')) else {
        return;
    };
    if hex.len() != 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return;
    }
    if let Err(e) = strata_wire::content_digest::set_sha256_xattr(tmp, hex) {
        tracing::debug!(file = %tmp.display(), error = %e, "could not keep the content tag");
    }
}

/// Renames the finished fill into place and makes the rename durable.
fn place(tmp: &Path, dest: &Path) -> std::io::Result<()> {
    let dir = dest
        .parent()
        .ok_or_else(|| std::io::Error::other("asset path without a directory"))?;
    std::fs::create_dir_all(dir)?;
    std::fs::rename(tmp, dest)?;
    std::fs::File::open(dir)?.sync_all()
}
