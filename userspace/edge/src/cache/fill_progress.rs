//! A fill in progress as its readers see it: the storage server's head (length, validators)
//! once it arrived, the open temporary file, and how many bytes are in that file so far. The
//! fill publishes each step on a watch channel; viewers (read-while-writer) send what is
//! written and wait for the rest. [`FillsInProgress`] finds the fill of an asset by its path.

use std::collections::HashMap;
use std::fs::File;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::SystemTime;

use tokio::sync::watch;

/// What the storage server said about the asset being filled.
#[derive(Debug)]
pub struct FillHead {
    /// Bytes of the whole asset.
    pub len: u64,
    pub etag: Option<String>,
    pub mtime: SystemTime,
    /// The temporary file being written (still readable once renamed into place).
    pub file: Arc<File>,
}

/// Where a fill stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// Asking the storage servers; no head yet.
    Connecting,
    /// The first `n` body bytes are in the file.
    Written(u64),
    /// Every byte is in the file, verified by length, and the file is in place.
    Complete,
    /// The fill ended without the whole asset (what it wrote is discarded).
    Failed,
}

/// One fill's head and progress.
#[derive(Debug)]
pub struct FillProgress {
    head: OnceLock<FillHead>,
    tx: watch::Sender<Progress>,
    /// The storage server asked last (the access log's upstream for viewers of the fill).
    server: Mutex<Option<std::net::SocketAddr>>,
}

impl FillProgress {
    pub fn new() -> Arc<FillProgress> {
        Arc::new(FillProgress {
            head: OnceLock::new(),
            tx: watch::Sender::new(Progress::Connecting),
            server: Mutex::new(None),
        })
    }

    /// The fill asks `server` now.
    pub fn asking(&self, server: std::net::SocketAddr) {
        *self.server.lock().unwrap_or_else(|p| p.into_inner()) = Some(server);
    }

    /// The storage server asked last.
    pub fn server(&self) -> Option<std::net::SocketAddr> {
        *self.server.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The storage server answered with `head`: readers may start.
    pub fn started(&self, head: FillHead) {
        let _ = self.head.set(head);
        self.tx.send_replace(Progress::Written(0));
    }

    /// `total` body bytes are now in the file.
    pub fn wrote(&self, total: u64) {
        self.tx.send_replace(Progress::Written(total));
    }

    /// The fill ended: complete (in place) or failed.
    pub fn finish(&self, complete: bool) {
        self.tx.send_replace(if complete {
            Progress::Complete
        } else {
            Progress::Failed
        });
    }

    /// The head, once the storage server sent it.
    pub fn head(&self) -> Option<&FillHead> {
        self.head.get()
    }

    pub fn now(&self) -> Progress {
        *self.tx.borrow()
    }

    pub fn subscribe(&self) -> watch::Receiver<Progress> {
        self.tx.subscribe()
    }

    /// Bytes in the file now (0 before the head, the length once complete).
    pub fn written(&self) -> u64 {
        match self.now() {
            Progress::Written(n) => n,
            Progress::Complete => self.head().map_or(0, |h| h.len),
            Progress::Connecting | Progress::Failed => 0,
        }
    }
}

/// The fills running now, by asset (`tenant/content/asset`).
#[derive(Debug, Default)]
pub struct FillsInProgress(Mutex<HashMap<String, Arc<FillProgress>>>);

impl FillsInProgress {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<FillProgress>>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn insert(&self, rel: &str, progress: Arc<FillProgress>) {
        self.map().insert(rel.to_string(), progress);
    }

    pub fn get(&self, rel: &str) -> Option<Arc<FillProgress>> {
        self.map().get(rel).cloned()
    }

    pub fn remove(&self, rel: &str) {
        self.map().remove(rel);
    }

    /// How many fills run and the body bytes they wrote so far.
    pub fn totals(&self) -> (usize, u64) {
        let map = self.map();
        (map.len(), map.values().map(|p| p.written()).sum())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_reader_follows_the_fill_to_its_end() {
        let p = FillProgress::new();
        let mut rx = p.subscribe();
        assert_eq!(p.written(), 0);
        let file = Arc::new(tempfile_in_tmp());
        p.started(FillHead {
            len: 10,
            etag: None,
            mtime: SystemTime::now(),
            file,
        });
        p.wrote(4);
        rx.changed().await.expect("sender alive");
        assert_eq!(*rx.borrow_and_update(), Progress::Written(4));
        p.finish(true);
        rx.changed().await.expect("sender alive");
        assert_eq!(*rx.borrow(), Progress::Complete);
        assert_eq!(p.written(), 10);
    }

    fn tempfile_in_tmp() -> File {
        let path = std::env::temp_dir().join(format!("strata-fp-{}", std::process::id()));
        let f = File::create(&path).expect("temp file");
        let _ = std::fs::remove_file(&path);
        f
    }
}
