//! One assignment executed on an edge: `fetch` moves every asset of the job from the assigned
//! source (a storage server's data listener, or a peer edge's transfer endpoint with the
//! peer key) by ranges into `.strata-fill/`, hashing as it writes; when the control plane
//! names another source (a faster one, or a replacement for one that failed), the transfer
//! reopens there at its current offset, keeping every byte it has. The SHA-256 from the
//! registry decides: a match is fsynced, renamed into the cache and indexed; a mismatch is a
//! failure, never `done`. An asset the cache already holds with the right SHA-256 is not moved
//! again. `pin`, `unpin` and `delete` act on the cache's files. Blocking: runs on its own
//! thread, reporting through [`TaskStatus`].

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use tokio::sync::watch;

use crate::cache::fill_dir::FILL_DIR;
use crate::cache::EdgeCache;
use strata_wire::content_digest::{hex, set_sha256_xattr, sha256_file};
use strata_wire::jobs::{AssetSpec, Assignment, CommandKind, Source, TargetReport, TargetState, PEER_PATH};
use strata_wire::range_fetch::open_from;

/// The source name of a copy the edge already held.
pub const LOCAL: &str = "local";

/// How long a source may stay silent before the receiver gives up on it.
const SOURCE_TIMEOUT: Duration = Duration::from_secs(8);
/// Chunk size of reads and writes.
const CHUNK: usize = 256 * 1024;

/// What a running assignment reports.
#[derive(Debug)]
pub struct TaskStatus {
    pub job: String,
    pub command: usize,
    pub offset: AtomicU64,
    pub total: u64,
    pub rate_bps: AtomicU64,
    pub cancel: AtomicBool,
    inner: Mutex<StatusInner>,
}

#[derive(Debug, Clone)]
struct StatusInner {
    state: TargetState,
    source: Option<String>,
    error: Option<String>,
    source_failed: bool,
}

impl TaskStatus {
    pub fn new(a: &Assignment) -> TaskStatus {
        TaskStatus {
            job: a.job.clone(),
            command: a.command,
            offset: AtomicU64::new(0),
            total: a.assets.iter().map(|x| x.size).sum(),
            rate_bps: AtomicU64::new(0),
            cancel: AtomicBool::new(false),
            inner: Mutex::new(StatusInner {
                state: TargetState::Queued,
                source: None,
                error: None,
                source_failed: false,
            }),
        }
    }

    fn set(&self, state: TargetState, source: Option<String>, error: Option<String>, source_failed: bool) {
        *self.inner.lock().unwrap_or_else(|p| p.into_inner()) = StatusInner {
            state,
            source,
            error,
            source_failed,
        };
    }

    pub fn state(&self) -> TargetState {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).state
    }

    pub fn report(&self) -> TargetReport {
        let s = self.inner.lock().unwrap_or_else(|p| p.into_inner()).clone();
        TargetReport {
            job: self.job.clone(),
            command: self.command,
            state: s.state,
            source: s.source,
            offset: self.offset.load(Ordering::Relaxed),
            total: self.total,
            rate_bps: self.rate_bps.load(Ordering::Relaxed),
            error: s.error,
            source_failed: s.source_failed,
        }
    }
}

/// Runs `a` to its end (or until cancelled), leaving the outcome in `status`.
pub fn run(
    a: Assignment,
    cache: Arc<EdgeCache>,
    sources: watch::Receiver<Option<Source>>,
    key: Arc<std::sync::RwLock<Option<String>>>,
    status: Arc<TaskStatus>,
) {
    let outcome = match a.kind {
        CommandKind::Fetch => Fetch {
            a: &a,
            cache: &cache,
            sources,
            key,
            status: &status,
        }
        .run(),
        kind => local_command(kind, &a, &cache).map(|()| None),
    };
    match outcome {
        Ok(Some((source, rate))) => {
            status.offset.store(status.total, Ordering::Relaxed);
            status.rate_bps.store(rate, Ordering::Relaxed);
            status.set(TargetState::Done, Some(source), None, false);
            tracing::info!(job = %a.job, content = %format!("{}/{}", a.tenant, a.content), kind = ?a.kind, "job command done");
        }
        Ok(None) => {
            status.set(TargetState::Done, None, None, false);
            tracing::info!(job = %a.job, content = %format!("{}/{}", a.tenant, a.content), kind = ?a.kind, "job command done");
        }
        Err(Stop::Cancelled) => tracing::info!(job = %a.job, "job command withdrawn"),
        Err(Stop::Failed(e)) => {
            tracing::warn!(job = %a.job, kind = ?a.kind, error = %e, "job command failed");
            let source = status.report().source;
            status.set(TargetState::Failed, source, Some(e), false);
        }
    }
}

enum Stop {
    Cancelled,
    Failed(String),
}

fn rel(a: &Assignment, asset: &str) -> String {
    format!("{}/{}/{}", a.tenant, a.content, asset)
}

fn local_command(kind: CommandKind, a: &Assignment, cache: &EdgeCache) -> Result<(), Stop> {
    for asset in &a.assets {
        let rel = rel(a, &asset.name);
        let held = cache
            .index
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&rel);
        let io = |e: std::io::Error| Stop::Failed(format!("saving the pin of {rel}: {e}"));
        match kind {
            CommandKind::Pin if !held => {
                return Err(Stop::Failed(format!(
                    "cannot pin {rel}: this edge does not hold it (fetch it first)"
                )))
            }
            CommandKind::Pin => cache.pins.set(&rel, true).map_err(io)?,
            CommandKind::Unpin => cache.pins.set(&rel, false).map_err(io)?,
            CommandKind::Delete => {
                cache.pins.set(&rel, false).map_err(io)?;
                cache.evict_now(&rel);
            }
            CommandKind::Fetch => {}
        }
    }
    Ok(())
}

/// A fetch in progress.
struct Fetch<'a> {
    a: &'a Assignment,
    cache: &'a EdgeCache,
    sources: watch::Receiver<Option<Source>>,
    key: Arc<std::sync::RwLock<Option<String>>>,
    status: &'a TaskStatus,
}

/// Bytes-per-second over the last second or so.
struct RateMeter {
    window_start: Instant,
    window_bytes: u64,
}

impl RateMeter {
    fn add(&mut self, n: u64, status: &TaskStatus) {
        self.window_bytes += n;
        let dt = self.window_start.elapsed();
        if dt >= Duration::from_millis(500) {
            let rate = (self.window_bytes as f64 / dt.as_secs_f64()) as u64;
            status.rate_bps.store(rate, Ordering::Relaxed);
            self.window_start = Instant::now();
            self.window_bytes = 0;
        }
    }
}

/// Removes a partial file when dropped unless it was placed.
struct Partial(Option<PathBuf>);

impl Drop for Partial {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

impl Fetch<'_> {
    /// The source the bytes came from at the end and the average rate; or why it stopped.
    fn run(mut self) -> Result<Option<(String, u64)>, Stop> {
        let started = Instant::now();
        let mut moved = 0u64;
        let mut done_before = 0u64;
        let mut last_source = String::from(LOCAL);
        for asset in &self.a.assets.clone() {
            let rel = rel(self.a, &asset.name);
            if self.holds(&rel, asset) {
                done_before += asset.size;
                self.status.offset.store(done_before, Ordering::Relaxed);
                continue;
            }
            let (n, source) = self.fetch_asset(&rel, asset, done_before)?;
            moved += n;
            last_source = source;
            done_before += asset.size;
        }
        let secs = started.elapsed().as_secs_f64().max(0.001);
        let rate = if moved == 0 {
            0
        } else {
            (moved as f64 / secs) as u64
        };
        Ok(Some((last_source, rate)))
    }

    /// Whether the cache holds `rel` with the registry's SHA-256.
    fn holds(&self, rel: &str, asset: &AssetSpec) -> bool {
        if !self
            .cache
            .index
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(rel)
        {
            return false;
        }
        self.status
            .set(TargetState::Verifying, Some(LOCAL.into()), None, false);
        let same = sha256_file(&self.cache.root.join(rel)).is_ok_and(|s| s == asset.sha256);
        if !same {
            tracing::warn!(asset = %rel, "the cached copy does not match the registry's SHA-256; fetching it again");
        }
        same
    }

    fn cancelled(&self) -> Result<(), Stop> {
        if self.status.cancel.load(Ordering::Relaxed) {
            Err(Stop::Cancelled)
        } else {
            Ok(())
        }
    }

    /// Waits for a source (a new one after a failure, when `changed_only`).
    fn wait_source(&mut self, changed_only: bool) -> Result<Source, Stop> {
        loop {
            self.cancelled()?;
            if !changed_only || self.sources.has_changed().unwrap_or(false) {
                if let Some(s) = self.sources.borrow_and_update().clone() {
                    return Ok(s);
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn url(&self, source: &Source, asset: &str) -> String {
        let enc = |s: &str| percent_encoding::utf8_percent_encode(s, SEGMENT).to_string();
        let path = format!("/{}/{}/{}", enc(&self.a.tenant), enc(&self.a.content), enc(asset));
        if source.peer {
            format!("{}{PEER_PATH}{path}", source.url)
        } else {
            format!("{}{path}", source.url)
        }
    }

    /// Moves one asset; the bytes moved and the source that sent the last of them.
    fn fetch_asset(&mut self, rel: &str, asset: &AssetSpec, base: u64) -> Result<(u64, String), Stop> {
        if !self.cache.make_room(asset.size) {
            return Err(Stop::Failed(format!(
                "{rel}: {} bytes do not fit this edge's cache of {} bytes",
                asset.size, self.cache.settings.capacity
            )));
        }
        let dir = self.cache.root.join(FILL_DIR);
        let fail =
            |what: &str, p: &Path, e: std::io::Error| Stop::Failed(format!("{what} {}: {e}", p.display()));
        std::fs::create_dir_all(&dir).map_err(|e| fail("creating", &dir, e))?;
        let tmp = dir.join(format!("job-{}-{}.part", self.a.job, self.a.command));
        let mut partial = Partial(Some(tmp.clone()));
        let mut file = std::fs::File::create(&tmp).map_err(|e| fail("creating", &tmp, e))?;
        let mut hasher = Sha256::new();
        let mut offset = 0u64;
        let mut buf = vec![0u8; CHUNK];
        let mut meter = RateMeter {
            window_start: Instant::now(),
            window_bytes: 0,
        };
        let mut source = self.wait_source(false)?;
        while offset < asset.size {
            self.cancelled()?;
            let url = self.url(&source, &asset.name);
            let key = source
                .peer
                .then(|| self.key.read().unwrap_or_else(|p| p.into_inner()).clone())
                .flatten();
            self.status
                .set(TargetState::Transferring, Some(source.name.clone()), None, false);
            let opened = open_from(&url, key.as_deref(), offset, SOURCE_TIMEOUT);
            let mut body = match opened {
                Ok((total, _)) if total != asset.size => {
                    return Err(Stop::Failed(format!(
                        "{rel}: {} says {total} bytes, the registry {}",
                        source.name, asset.size
                    )))
                }
                Ok((_, body)) => body,
                Err(e) => {
                    source = self.source_failed(&source, offset + base, e.to_string())?;
                    continue;
                }
            };
            tracing::info!(asset = %rel, source = %source.name, offset, "job transfer reading");
            // Read until the end, a switch, or a failure of this source.
            let mut switched = false;
            while offset < asset.size {
                self.cancelled()?;
                if self.sources.has_changed().unwrap_or(false) {
                    if let Some(next) = self.sources.borrow_and_update().clone() {
                        if next != source {
                            tracing::info!(asset = %rel, from = %source.name, to = %next.name, offset, "switching source; resuming at the offset");
                            source = next;
                            switched = true;
                            break;
                        }
                    }
                }
                let want = ((asset.size - offset) as usize).min(CHUNK);
                match body.read(&mut buf[..want]) {
                    Ok(0) => {
                        let e = format!(
                            "{} ended the body at byte {offset} of {}",
                            source.name, asset.size
                        );
                        source = self.source_failed(&source, offset + base, e)?;
                        switched = true;
                        break;
                    }
                    Ok(n) => {
                        file.write_all(&buf[..n]).map_err(|e| fail("writing", &tmp, e))?;
                        hasher.update(&buf[..n]);
                        offset += n as u64;
                        self.status.offset.store(base + offset, Ordering::Relaxed);
                        meter.add(n as u64, self.status);
                    }
                    Err(e) => {
                        source = self.source_failed(
                            &source,
                            offset + base,
                            format!("reading from {}: {e}", source.name),
                        )?;
                        switched = true;
                        break;
                    }
                }
            }
            if switched {
                continue;
            }
        }
        self.status
            .set(TargetState::Verifying, Some(source.name.clone()), None, false);
        let got = hex(&hasher.finalize());
        if got != asset.sha256 {
            return Err(Stop::Failed(format!(
                "{rel}: {} bytes arrived with SHA-256 {got}, the registry says {}",
                asset.size, asset.sha256
            )));
        }
        file.sync_all().map_err(|e| fail("syncing", &tmp, e))?;
        drop(file);
        if let Err(e) = set_sha256_xattr(&tmp, &asset.sha256) {
            tracing::debug!(file = %tmp.display(), error = %e, "no extended attributes: the ETag will be inode-based");
        }
        let dest = self.cache.root.join(rel);
        let parent = dest.parent().unwrap_or(&self.cache.root).to_path_buf();
        std::fs::create_dir_all(&parent).map_err(|e| fail("creating", &parent, e))?;
        std::fs::rename(&tmp, &dest).map_err(|e| fail("renaming into", &dest, e))?;
        partial.0 = None;
        std::fs::File::open(&parent)
            .and_then(|d| d.sync_all())
            .map_err(|e| fail("syncing", &parent, e))?;
        self.cache
            .index
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .touch(rel, asset.size);
        self.cache.make_room(0);
        Ok((asset.size, source.name))
    }

    /// Reports the source as failed (bytes kept) and waits for the control plane's next one.
    fn source_failed(&mut self, source: &Source, at: u64, error: String) -> Result<Source, Stop> {
        tracing::warn!(source = %source.name, offset = at, error = %error, "job source failed; asking for another");
        self.status
            .set(TargetState::Failed, Some(source.name.clone()), Some(error), true);
        let next = self.wait_source(true)?;
        self.status
            .set(TargetState::Transferring, Some(next.name.clone()), None, false);
        Ok(next)
    }
}

/// Characters a path segment keeps unencoded (RFC 3986 unreserved).
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');
