//! The fill of an admitted asset: one whole-asset fetch from the storage tier, spliced
//! (socket → pipe → file, the bytes never enter userspace) into a temporary file under
//! `.strata-fill/` in the cache directory, fsynced, given the storage server's modification
//! time, renamed into place once its length is verified, and its directory fsynced. Only then
//! is it indexed and served as a hit: a partial fill is never served as a hit, and after a crash
//! the leftovers are removed at start.
//!
//! The same fetch serves the viewers: the fill publishes its head and progress
//! ([`FillProgress`]) and every viewer of the asset, the one whose miss admitted it first, sends
//! from the file what is written and waits for the rest (`fill_reader`). A fill does not depend
//! on any viewer: one they all abandon runs on to its end, bounded by the upstream's response
//! timeout between reads and by `fill_timeout` overall, and is discarded if it does not end whole.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use thiserror::Error;
use tokio::io::AsyncWriteExt;

use super::fill_dir::FILL_DIR;
use super::fill_progress::{FillHead, FillProgress};
use super::EdgeCache;
use crate::upstream::body_relay::has_pending_bytes;
use crate::upstream::pool::UpstreamPool;
use crate::upstream::socket_watch::{SocketWatch, Want};
use crate::upstream::upstream_head::read_upstream_head;
use strata_http::content_path::ContentPath;
use strata_kernel::pipe::Pipe;

/// Why a fill from one server failed.
#[derive(Debug, Error)]
pub enum FillError {
    #[error("connecting: {0}")]
    Connect(std::io::Error),
    #[error("storage server: {0}")]
    Upstream(String),
    #[error("answered {0}, not 200")]
    Status(u16),
    #[error("does not hold the asset (404)")]
    NotHere,
    #[error("not complete within the fill timeout of {0:?}")]
    TimedOut(Duration),
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
/// that serves it whole; its progress is registered before this returns, so viewers can follow.
pub fn spawn_fill(
    cache: Arc<EdgeCache>,
    pool: Arc<UpstreamPool>,
    path: ContentPath,
    raw_path: String,
    servers: Vec<SocketAddr>,
) -> Arc<FillProgress> {
    cache.counters.fills_started.fetch_add(1, Ordering::Relaxed);
    let rel = path.relative();
    let progress = FillProgress::new();
    cache.fills.insert(&rel, progress.clone());
    let fill = progress.clone();
    tokio::spawn(async move {
        tracing::info!(asset = %rel, "cache fill started (admitted); viewers are served from it as it is written");
        let limit = cache.settings.fill_timeout;
        let mut outcome = Err(FillError::Upstream("no storage server to fill from".into()));
        for server in servers {
            outcome =
                match tokio::time::timeout(limit, fill_from(&cache, &pool, &rel, &raw_path, server, &fill))
                    .await
                {
                    Ok(r) => r,
                    Err(_) => Err(FillError::TimedOut(limit)),
                };
            match &outcome {
                Ok(len) => {
                    tracing::info!(asset = %rel, %server, bytes = len, "cache fill completed; later requests are local hits");
                    break;
                }
                // Another server may hold it, but only while no byte went to a viewer.
                Err(FillError::NotHere | FillError::Connect(_)) if fill.head().is_none() => {
                    tracing::info!(asset = %rel, %server, error = %outcome.as_ref().err().map(ToString::to_string).unwrap_or_default(), "cache fill: trying the next server")
                }
                Err(e) => {
                    tracing::warn!(asset = %rel, %server, error = %e, "cache fill from this server failed; discarded");
                    if fill.head().is_some() || matches!(e, FillError::TooLarge { .. }) {
                        break;
                    }
                }
            }
        }
        let counter = match outcome {
            Ok(_) => &cache.counters.fills_completed,
            Err(_) => &cache.counters.fills_failed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        cache.fills.remove(&rel);
        fill.finish(outcome.is_ok());
        cache
            .admission
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .fill_ended(&rel);
    });
    progress
}

async fn fill_from(
    cache: &EdgeCache,
    pool: &UpstreamPool,
    rel: &str,
    raw_path: &str,
    server: SocketAddr,
    progress: &FillProgress,
) -> Result<u64, FillError> {
    let timeout = pool.settings().response_timeout;
    progress.asking(server);
    let (mut up, _) = pool.checkout(server).await.map_err(FillError::Connect)?;
    let request =
        format!("GET {raw_path} HTTP/1.1\r\nHost: {server}\r\nUser-Agent: strata-edge-fill\r\n\r\n");
    up.write_all(request.as_bytes())
        .await
        .map_err(|e| FillError::Upstream(format!("sending request: {e}")))?;
    let head = read_upstream_head(&mut up, timeout)
        .await
        .map_err(|f| FillError::Upstream(f.reason))?;
    match head.status {
        200 => {}
        404 => return Err(FillError::NotHere),
        s => return Err(FillError::Status(s)),
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
    let mtime = head
        .header("last-modified")
        .and_then(|v| httpdate::parse_http_date(v).ok());
    let written = write_body(&up, &tmp, len, timeout, mtime, head.header("etag"), progress).await;
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

/// Splices exactly `len` body bytes from `up` into a new file at `tmp` (socket → pipe → file),
/// publishing the head and each step to `progress`, then verifies the length, fsyncs and gives
/// the file the storage server's modification time.
async fn write_body(
    up: &tokio::net::TcpStream,
    tmp: &Path,
    len: u64,
    timeout: Duration,
    mtime: Option<SystemTime>,
    etag: Option<&str>,
    progress: &FillProgress,
) -> Result<(), FillError> {
    let write_err = |source| FillError::Write {
        path: tmp.to_path_buf(),
        source,
    };
    // Readable too: viewers send from this descriptor while it is written.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(tmp)
        .map_err(write_err)?;
    let file = Arc::new(file);
    progress.started(FillHead {
        len,
        etag: etag.map(str::to_string),
        mtime: mtime.unwrap_or_else(SystemTime::now),
        file: file.clone(),
    });
    let pipe = Pipe::new(true).map_err(write_err)?;
    let capacity = u64::from(pipe.capacity);
    let watch = SocketWatch::new(up).map_err(|e| FillError::Upstream(e.to_string()))?;
    let (up_fd, file_fd) = (up.as_raw_fd(), file.as_raw_fd());
    let (pipe_r, pipe_w) = (pipe.read.as_raw_fd(), pipe.write.as_raw_fd());
    let mut read = 0u64;
    let mut written = 0u64;
    while written < len {
        // Take what the socket has (at most the body's end), waiting only with an empty pipe.
        let want = (len - read).min(capacity - (read - written));
        if want > 0 {
            match splice_once(up_fd, pipe_w, want, None) {
                Ok(0) => {
                    return Err(FillError::Short {
                        missing: len - written,
                    })
                }
                Ok(n) => read += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if read == written {
                        let moved = watch
                            .wait(Want::Readable, timeout)
                            .await
                            .map_err(|e| FillError::Upstream(e.to_string()))?;
                        if !moved {
                            return Err(FillError::Upstream(format!("nothing for {timeout:?}")));
                        }
                        continue;
                    }
                }
                Err(e) => return Err(FillError::Upstream(e.to_string())),
            }
        }
        // Everything in the pipe goes to the file (the page cache; a regular file never blocks
        // for long), then readers may send it.
        while written < read {
            let mut at = written as libc::loff_t;
            match splice_once(pipe_r, file_fd, read - written, Some(&mut at)) {
                Ok(0) => return Err(write_err(io::Error::other("the file took no bytes"))),
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(write_err(e)),
            }
        }
        progress.wrote(written);
    }
    let on_disk = file.metadata().map_err(write_err)?.len();
    if on_disk != len {
        return Err(write_err(io::Error::other(format!(
            "file holds {on_disk} bytes, the storage server announced {len}"
        ))));
    }
    let sync = file.clone();
    tokio::task::spawn_blocking(move || sync.sync_all())
        .await
        .map_err(|e| write_err(io::Error::other(e.to_string())))?
        .map_err(write_err)?;
    if let Some(t) = mtime {
        file.set_modified(t).map_err(write_err)?;
    }
    Ok(())
}

/// One non-blocking splice(2) between two descriptors; `to_offset`: where in a file `to` the
/// bytes go (the file's own position is left alone, as readers' sendfile leaves it).
fn splice_once(from: RawFd, to: RawFd, len: u64, to_offset: Option<&mut libc::loff_t>) -> io::Result<u64> {
    let flags = libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK;
    let out = to_offset.map_or(std::ptr::null_mut(), |o| o as *mut libc::loff_t);
    // SAFETY: plain syscall on descriptors the caller keeps open; `out` is null (a pipe) or
    // points to a live loff_t.
    let n = unsafe { libc::splice(from, std::ptr::null_mut(), to, out, len as usize, flags) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as u64)
    }
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
