//! The streams this server holds: each stream's state behind its own lock, loaded from the
//! shared root when a publish, the archiver or a restart needs it, and loaded again when another
//! server of the cluster saved a newer one (the encoder moved to it).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use strata_wire::live::{LivePhase, LiveStream};

use crate::stream_state::{StreamState, STATE_DIR};

/// A stream's state and the modification time of the saved copy it reflects.
pub struct Held {
    pub state: StreamState,
    saved: Option<SystemTime>,
}

pub type StreamHandle = Arc<tokio::sync::Mutex<Held>>;

/// Every stream held, by `tenant/stream`.
pub struct Streams {
    root: PathBuf,
    map: Mutex<HashMap<String, StreamHandle>>,
}

fn saved_at(dir: &Path) -> Option<SystemTime> {
    std::fs::metadata(dir.join(STATE_DIR).join("state.json"))
        .and_then(|m| m.modified())
        .ok()
}

impl Held {
    /// Loads the saved state again if another server saved a newer one.
    pub fn refresh(&mut self, dir: &Path) {
        let on_disk = saved_at(dir);
        if on_disk.is_some() && on_disk != self.saved {
            match StreamState::load(dir) {
                Ok(Some(s)) => {
                    self.state = s;
                    self.saved = on_disk;
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(dir = %dir.display(), error = %e, "stream state unreadable; keeping the one in memory")
                }
            }
        }
    }

    /// Whether the saved state this server knew is gone (another server of the cluster archived
    /// the stream and removed its copy).
    pub fn vanished(&self, dir: &Path) -> bool {
        self.saved.is_some() && saved_at(dir).is_none()
    }

    /// Saves the state (temp file, rename) and remembers the saved copy's time.
    pub fn save(&mut self, dir: &Path) -> std::io::Result<()> {
        self.state.save(dir)?;
        self.saved = saved_at(dir);
        Ok(())
    }
}

impl Streams {
    /// Loads every saved stream under `root`.
    pub fn open(root: &Path) -> std::io::Result<Streams> {
        std::fs::create_dir_all(root)?;
        let streams = Streams {
            root: root.to_path_buf(),
            map: Mutex::new(HashMap::new()),
        };
        streams.adopt_saved()?;
        Ok(streams)
    }

    /// Takes on every stream saved under the root that this server does not hold (one another
    /// server of the cluster recorded and then died): its archiving must not wait for a restart.
    /// Returns how many were taken on.
    pub fn adopt_saved(&self) -> std::io::Result<usize> {
        let mut adopted = 0;
        for tenant in std::fs::read_dir(&self.root)?.flatten() {
            let Ok(inner) = std::fs::read_dir(tenant.path()) else {
                continue;
            };
            for stream in inner.flatten() {
                let dir = stream.path();
                let key = format!(
                    "{}/{}",
                    tenant.file_name().to_string_lossy(),
                    stream.file_name().to_string_lossy()
                );
                if self.lock_map().contains_key(&key) {
                    continue;
                }
                match StreamState::load(&dir) {
                    Ok(Some(state)) => {
                        let held = Held {
                            state,
                            saved: saved_at(&dir),
                        };
                        self.lock_map()
                            .entry(key)
                            .or_insert_with(|| Arc::new(tokio::sync::Mutex::new(held)));
                        adopted += 1;
                    }
                    Ok(None) => {}
                    Err(e) => {
                        tracing::warn!(dir = %dir.display(), error = %e, "skipping a stream whose state cannot be read")
                    }
                }
            }
        }
        Ok(adopted)
    }

    fn lock_map(&self) -> std::sync::MutexGuard<'_, HashMap<String, StreamHandle>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The directory of `tenant/stream`.
    pub fn dir(&self, tenant: &str, stream: &str) -> PathBuf {
        self.root.join(tenant).join(stream)
    }

    /// The held stream, or the one saved under the root by another server, if any.
    pub fn find(&self, tenant: &str, stream: &str) -> Option<StreamHandle> {
        let key = format!("{tenant}/{stream}");
        if let Some(h) = self.lock_map().get(&key) {
            return Some(h.clone());
        }
        let dir = self.dir(tenant, stream);
        let state = StreamState::load(&dir).ok().flatten()?;
        let held = Arc::new(tokio::sync::Mutex::new(Held {
            state,
            saved: saved_at(&dir),
        }));
        Some(self.lock_map().entry(key).or_insert(held).clone())
    }

    /// Adds a new stream (or returns the one another task added first).
    pub fn insert(&self, state: StreamState) -> StreamHandle {
        let key = state.key();
        let held = Arc::new(tokio::sync::Mutex::new(Held { state, saved: None }));
        self.lock_map().entry(key).or_insert(held).clone()
    }

    pub fn remove(&self, key: &str) {
        self.lock_map().remove(key);
    }

    /// Every held stream.
    pub fn all(&self) -> Vec<StreamHandle> {
        self.lock_map().values().cloned().collect()
    }

    /// Streams of `tenant` not yet archived (what the per-tenant limit counts).
    pub async fn active_of(&self, tenant: &str) -> usize {
        let mut n = 0;
        for h in self.all() {
            let held = h.lock().await;
            if held.state.tenant == tenant && held.state.phase != LivePhase::Archived {
                n += 1;
            }
        }
        n
    }

    /// The heartbeat's report (from a plain thread: blocking locks).
    pub fn report_blocking(&self) -> Vec<LiveStream> {
        self.all()
            .iter()
            .map(|h| h.blocking_lock().state.report())
            .collect()
    }

    /// The same, from a task.
    pub async fn report(&self) -> Vec<LiveStream> {
        let mut out = Vec::new();
        for h in self.all() {
            out.push(h.lock().await.state.report());
        }
        out
    }
}
