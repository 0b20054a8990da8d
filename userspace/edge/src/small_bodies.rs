//! Small bodies (playlists, LL-HLS parts, init segments, thumbnails) held in memory, so a hit on
//! one costs one `fstatat` (is the file still the one we read?) and one write of head and body
//! together, instead of open, fstat, xattr, fadvise, cork, write, sendfile, uncork and close.
//! At these sizes the per-request system calls, not the bytes, are the cost.
//!
//! An entry is the whole file's bytes with the identity it was read under (device, inode,
//! length, modification time); a file replaced (a fill renamed into place, a placement) or
//! removed (eviction) no longer matches and the entry is dropped. The table is bounded in bytes;
//! when full, the least recently used quarter goes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// Files up to this size are kept in memory.
pub const SMALL_BODY_MAX: u64 = 64 << 10;

/// What a file was when it was read: it is still the same file only if all of these match.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileIdentity {
    pub len: u64,
    pub dev: u64,
    pub ino: u64,
    pub mtime: SystemTime,
}

/// One small file's bytes and validators.
#[derive(Debug)]
pub struct SmallBody {
    pub bytes: Vec<u8>,
    pub identity: FileIdentity,
    /// The file's content tag (file_store's `ContentTag`: 128 bits of its SHA-256).
    pub tag: Option<[u8; 16]>,
    last_used: AtomicU64,
}

impl SmallBody {
    pub fn new(bytes: Vec<u8>, identity: FileIdentity, tag: Option<[u8; 16]>) -> SmallBody {
        SmallBody {
            bytes,
            identity,
            tag,
            last_used: AtomicU64::new(0),
        }
    }
}

/// The in-memory table of small bodies, bounded in bytes.
#[derive(Debug)]
pub struct SmallBodies {
    budget: u64,
    table: Mutex<Table>,
    clock: AtomicU64,
}

#[derive(Debug, Default)]
struct Table {
    entries: HashMap<String, Arc<SmallBody>>,
    bytes: u64,
}

impl SmallBodies {
    /// A table holding at most `budget` bytes of bodies (0: nothing is kept).
    pub fn new(budget: u64) -> SmallBodies {
        SmallBodies {
            budget,
            table: Mutex::new(Table::default()),
            clock: AtomicU64::new(0),
        }
    }

    /// Whether bodies of `len` bytes are kept.
    pub fn keeps(&self, len: u64) -> bool {
        len <= SMALL_BODY_MAX && len <= self.budget
    }

    /// The body kept for `rel`, marked as used now.
    pub fn get(&self, rel: &str) -> Option<Arc<SmallBody>> {
        let body = self.table.lock().ok()?.entries.get(rel)?.clone();
        body.last_used
            .store(self.clock.fetch_add(1, Ordering::Relaxed), Ordering::Relaxed);
        Some(body)
    }

    /// Keeps `body` for `rel` (replacing what was kept), making room by dropping the least
    /// recently used quarter of the table when it would go over the budget.
    pub fn insert(&self, rel: &str, body: SmallBody) -> Arc<SmallBody> {
        body.last_used
            .store(self.clock.fetch_add(1, Ordering::Relaxed), Ordering::Relaxed);
        let body = Arc::new(body);
        if !self.keeps(body.bytes.len() as u64) {
            return body;
        }
        let Ok(mut table) = self.table.lock() else {
            return body;
        };
        if let Some(old) = table.entries.remove(rel) {
            table.bytes -= old.bytes.len() as u64;
        }
        if table.bytes + body.bytes.len() as u64 > self.budget {
            evict_oldest_quarter(&mut table);
        }
        table.bytes += body.bytes.len() as u64;
        table.entries.insert(rel.to_string(), body.clone());
        body
    }

    /// Drops what is kept for `rel` (the file changed or went away).
    pub fn remove(&self, rel: &str) {
        if let Ok(mut table) = self.table.lock() {
            if let Some(old) = table.entries.remove(rel) {
                table.bytes -= old.bytes.len() as u64;
            }
        }
    }

    /// Bytes and entries held now.
    pub fn held(&self) -> (u64, usize) {
        self.table
            .lock()
            .map(|t| (t.bytes, t.entries.len()))
            .unwrap_or((0, 0))
    }
}

fn evict_oldest_quarter(table: &mut Table) {
    let mut ages: Vec<(u64, String)> = table
        .entries
        .iter()
        .map(|(k, v)| (v.last_used.load(Ordering::Relaxed), k.clone()))
        .collect();
    ages.sort_unstable();
    let drop = ages.len().div_ceil(4);
    for (_, key) in ages.into_iter().take(drop) {
        if let Some(old) = table.entries.remove(&key) {
            table.bytes -= old.bytes.len() as u64;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(len: usize, ino: u64) -> SmallBody {
        SmallBody::new(
            vec![7; len],
            FileIdentity {
                len: len as u64,
                dev: 1,
                ino,
                mtime: SystemTime::UNIX_EPOCH,
            },
            None,
        )
    }

    #[test]
    fn the_table_stays_within_its_budget_and_drops_the_least_recently_used() {
        let t = SmallBodies::new(40 << 10);
        for i in 0..10u64 {
            t.insert(&format!("t/c/{i}"), body(4 << 10, i));
        }
        assert_eq!(t.held(), (40 << 10, 10));
        // 0 is used again, so 1, 2 and 3 are the oldest quarter when 10 needs room.
        assert!(t.get("t/c/0").is_some());
        t.insert("t/c/10", body(4 << 10, 10));
        let (bytes, n) = t.held();
        assert!(bytes <= 40 << 10 && n == 8, "{bytes} {n}");
        assert!(t.get("t/c/0").is_some());
        assert!(t.get("t/c/1").is_none() && t.get("t/c/3").is_none());
        assert!(t.get("t/c/10").is_some());
    }

    #[test]
    fn large_bodies_and_a_zero_budget_keep_nothing() {
        let t = SmallBodies::new(1 << 20);
        t.insert("t/c/big", body(SMALL_BODY_MAX as usize + 1, 1));
        assert!(t.get("t/c/big").is_none());
        let off = SmallBodies::new(0);
        off.insert("t/c/a", body(10, 2));
        assert!(off.get("t/c/a").is_none());
        assert!(!off.keeps(10));
    }

    #[test]
    fn replacing_or_removing_an_entry_keeps_the_byte_count_exact() {
        let t = SmallBodies::new(1 << 20);
        t.insert("t/c/a", body(1000, 1));
        t.insert("t/c/a", body(3000, 2));
        assert_eq!(t.held(), (3000, 1));
        assert_eq!(t.get("t/c/a").map(|b| b.identity.ino), Some(2));
        t.remove("t/c/a");
        assert_eq!(t.held(), (0, 0));
    }
}
