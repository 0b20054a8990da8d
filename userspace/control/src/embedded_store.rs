//! The embedded registry: [`RegistryStore`] on a redb database file (ACID, crash-safe commits)
//! in the control plane's data directory. Leases live in the file too and are expired by a
//! sweeper thread; watchers get every committed change under their prefix.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

use super::registry::{Change, Entry, Guard, LeaseId, Op, RegistryError, RegistryStore, Revision};

const KV: TableDefinition<&str, &[u8]> = TableDefinition::new("kv");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// lease id → (ttl ms, deadline ms since the epoch)
const LEASES: TableDefinition<u64, (u64, u64)> = TableDefinition::new("leases");

/// How often expired leases are looked for.
const SWEEP_EVERY: Duration = Duration::from_millis(200);

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A value as stored: revision, lease, bytes.
fn encode(revision: Revision, lease: Option<LeaseId>, value: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(17 + value.len());
    v.extend_from_slice(&revision.to_le_bytes());
    v.push(u8::from(lease.is_some()));
    v.extend_from_slice(&lease.map_or(0, |l| l.0).to_le_bytes());
    v.extend_from_slice(value);
    v
}

fn decode(key: &str, raw: &[u8]) -> Result<Entry, RegistryError> {
    let corrupt = |m: &str| RegistryError::Corrupt {
        key: key.into(),
        message: m.into(),
    };
    if raw.len() < 17 {
        return Err(corrupt("record shorter than its 17-byte header"));
    }
    let revision = u64::from_le_bytes(raw[0..8].try_into().map_err(|_| corrupt("revision"))?);
    let lease = u64::from_le_bytes(raw[9..17].try_into().map_err(|_| corrupt("lease"))?);
    Ok(Entry {
        key: key.into(),
        value: raw[17..].to_vec(),
        revision,
        lease: (raw[8] == 1).then_some(LeaseId(lease)),
    })
}

struct Inner {
    db: Database,
    path: PathBuf,
    watchers: Mutex<Vec<(String, UnboundedSender<Change>)>>,
}

/// The embedded store; cheap to clone.
#[derive(Clone)]
pub struct EmbeddedStore {
    inner: Arc<Inner>,
}

impl Inner {
    fn err(&self, e: impl std::fmt::Display) -> RegistryError {
        RegistryError::Storage {
            path: self.path.display().to_string(),
            message: e.to_string(),
        }
    }

    fn notify(&self, changes: Vec<Change>) {
        if changes.is_empty() {
            return;
        }
        let mut watchers = self.watchers.lock().unwrap_or_else(|p| p.into_inner());
        watchers.retain(|(prefix, tx)| {
            changes
                .iter()
                .filter(|c| c.key().starts_with(prefix.as_str()))
                .all(|c| tx.send(c.clone()).is_ok())
        });
    }

    /// Deletes the keys of every lease past its deadline; returns how many keys went.
    fn sweep(&self) -> Result<usize, RegistryError> {
        let now = now_ms();
        let expired: Vec<u64> = {
            let tx = self.db.begin_read().map_err(|e| self.err(e))?;
            let leases = match tx.open_table(LEASES) {
                Ok(t) => t,
                Err(redb::TableError::TableDoesNotExist(_)) => return Ok(0),
                Err(e) => return Err(self.err(e)),
            };
            let mut out = Vec::new();
            for row in leases.iter().map_err(|e| self.err(e))? {
                let (id, v) = row.map_err(|e| self.err(e))?;
                if v.value().1 <= now {
                    out.push(id.value());
                }
            }
            out
        };
        if expired.is_empty() {
            return Ok(0);
        }
        let tx = self.db.begin_write().map_err(|e| self.err(e))?;
        let mut changes = Vec::new();
        {
            let mut kv = tx.open_table(KV).map_err(|e| self.err(e))?;
            let mut meta = tx.open_table(META).map_err(|e| self.err(e))?;
            let mut leases = tx.open_table(LEASES).map_err(|e| self.err(e))?;
            let revision = meta
                .get("revision")
                .map_err(|e| self.err(e))?
                .map_or(0, |v| v.value())
                + 1;
            let mut doomed = Vec::new();
            for row in kv.iter().map_err(|e| self.err(e))? {
                let (k, v) = row.map_err(|e| self.err(e))?;
                let entry = decode(k.value(), v.value())?;
                if entry.lease.is_some_and(|l| expired.contains(&l.0)) {
                    doomed.push(entry.key);
                }
            }
            for key in doomed {
                kv.remove(key.as_str()).map_err(|e| self.err(e))?;
                changes.push(Change::Delete { key, revision });
            }
            for id in &expired {
                leases.remove(id).map_err(|e| self.err(e))?;
            }
            meta.insert("revision", revision).map_err(|e| self.err(e))?;
        }
        tx.commit().map_err(|e| self.err(e))?;
        let n = changes.len();
        self.notify(changes);
        Ok(n)
    }
}

impl EmbeddedStore {
    /// Opens (or creates) the registry file `registry.redb` in `dir`, and starts the lease
    /// sweeper (it stops when the last handle is dropped).
    pub fn open(dir: &Path) -> Result<EmbeddedStore, RegistryError> {
        let path = dir.join("registry.redb");
        let storage = |e: &dyn std::fmt::Display| RegistryError::Storage {
            path: path.display().to_string(),
            message: e.to_string(),
        };
        std::fs::create_dir_all(dir).map_err(|e| storage(&e))?;
        let db = Database::create(&path).map_err(|e| storage(&e))?;
        // Create the tables so readers never meet a missing one.
        let tx = db.begin_write().map_err(|e| storage(&e))?;
        tx.open_table(KV).map_err(|e| storage(&e))?;
        tx.open_table(META).map_err(|e| storage(&e))?;
        tx.open_table(LEASES).map_err(|e| storage(&e))?;
        tx.commit().map_err(|e| storage(&e))?;
        let inner = Arc::new(Inner {
            db,
            path: path.clone(),
            watchers: Mutex::new(Vec::new()),
        });
        let weak: Weak<Inner> = Arc::downgrade(&inner);
        std::thread::Builder::new()
            .name("registry-leases".into())
            .spawn(move || loop {
                std::thread::sleep(SWEEP_EVERY);
                let Some(inner) = weak.upgrade() else { return };
                if let Err(e) = inner.sweep() {
                    tracing::warn!(error = %e, "expiring registry leases failed; will retry");
                }
            })
            .map_err(|e| storage(&e))?;
        Ok(EmbeddedStore { inner })
    }
}

impl RegistryStore for EmbeddedStore {
    fn get(&self, key: &str) -> Result<Option<Entry>, RegistryError> {
        let i = &self.inner;
        let tx = i.db.begin_read().map_err(|e| i.err(e))?;
        let kv = tx.open_table(KV).map_err(|e| i.err(e))?;
        kv.get(key)
            .map_err(|e| i.err(e))?
            .map(|v| decode(key, v.value()))
            .transpose()
    }

    fn list(&self, prefix: &str) -> Result<Vec<Entry>, RegistryError> {
        let i = &self.inner;
        let tx = i.db.begin_read().map_err(|e| i.err(e))?;
        let kv = tx.open_table(KV).map_err(|e| i.err(e))?;
        let mut out = Vec::new();
        for row in kv.range(prefix..).map_err(|e| i.err(e))? {
            let (k, v) = row.map_err(|e| i.err(e))?;
            if !k.value().starts_with(prefix) {
                break;
            }
            out.push(decode(k.value(), v.value())?);
        }
        Ok(out)
    }

    fn commit(&self, guards: &[Guard], ops: &[Op]) -> Result<Option<Revision>, RegistryError> {
        let i = &self.inner;
        let tx = i.db.begin_write().map_err(|e| i.err(e))?;
        let mut changes = Vec::new();
        let revision;
        {
            let mut kv = tx.open_table(KV).map_err(|e| i.err(e))?;
            let mut meta = tx.open_table(META).map_err(|e| i.err(e))?;
            let leases = tx.open_table(LEASES).map_err(|e| i.err(e))?;
            for g in guards {
                let holds = match g {
                    Guard::Absent(k) => kv.get(k.as_str()).map_err(|e| i.err(e))?.is_none(),
                    Guard::At(k, rev) => match kv.get(k.as_str()).map_err(|e| i.err(e))? {
                        Some(v) => decode(k, v.value())?.revision == *rev,
                        None => false,
                    },
                };
                if !holds {
                    return Ok(None); // the transaction is dropped: nothing written
                }
            }
            revision = meta
                .get("revision")
                .map_err(|e| i.err(e))?
                .map_or(0, |v| v.value())
                + 1;
            for op in ops {
                match op {
                    Op::Put { key, value, lease } => {
                        if let Some(l) = lease {
                            if leases.get(l.0).map_err(|e| i.err(e))?.is_none() {
                                return Err(RegistryError::NoLease(*l));
                            }
                        }
                        kv.insert(key.as_str(), encode(revision, *lease, value).as_slice())
                            .map_err(|e| i.err(e))?;
                        changes.push(Change::Put(Entry {
                            key: key.clone(),
                            value: value.clone(),
                            revision,
                            lease: *lease,
                        }));
                    }
                    Op::Delete { key } => {
                        if kv.remove(key.as_str()).map_err(|e| i.err(e))?.is_some() {
                            changes.push(Change::Delete {
                                key: key.clone(),
                                revision,
                            });
                        }
                    }
                }
            }
            meta.insert("revision", revision).map_err(|e| i.err(e))?;
        }
        tx.commit().map_err(|e| i.err(e))?;
        i.notify(changes);
        Ok(Some(revision))
    }

    fn grant_lease(&self, ttl: Duration) -> Result<LeaseId, RegistryError> {
        let i = &self.inner;
        let tx = i.db.begin_write().map_err(|e| i.err(e))?;
        let id;
        {
            let mut meta = tx.open_table(META).map_err(|e| i.err(e))?;
            let mut leases = tx.open_table(LEASES).map_err(|e| i.err(e))?;
            id = meta
                .get("next_lease")
                .map_err(|e| i.err(e))?
                .map_or(1, |v| v.value());
            meta.insert("next_lease", id + 1).map_err(|e| i.err(e))?;
            let ttl_ms = ttl.as_millis() as u64;
            leases
                .insert(id, (ttl_ms, now_ms() + ttl_ms))
                .map_err(|e| i.err(e))?;
        }
        tx.commit().map_err(|e| i.err(e))?;
        Ok(LeaseId(id))
    }

    fn keep_alive(&self, lease: LeaseId) -> Result<(), RegistryError> {
        let i = &self.inner;
        let tx = i.db.begin_write().map_err(|e| i.err(e))?;
        {
            let mut leases = tx.open_table(LEASES).map_err(|e| i.err(e))?;
            let Some((ttl, deadline)) = leases.get(lease.0).map_err(|e| i.err(e))?.map(|v| v.value()) else {
                return Err(RegistryError::NoLease(lease));
            };
            if deadline <= now_ms() {
                return Err(RegistryError::NoLease(lease)); // expired; the sweeper removes its keys
            }
            leases
                .insert(lease.0, (ttl, now_ms() + ttl))
                .map_err(|e| i.err(e))?;
        }
        tx.commit().map_err(|e| i.err(e))
    }

    fn watch(&self, prefix: &str) -> UnboundedReceiver<Change> {
        let (tx, rx) = unbounded_channel();
        self.inner
            .watchers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((prefix.to_string(), tx));
        rx
    }

    fn revision(&self) -> Result<Revision, RegistryError> {
        let i = &self.inner;
        let tx = i.db.begin_read().map_err(|e| i.err(e))?;
        let meta = tx.open_table(META).map_err(|e| i.err(e))?;
        Ok(meta
            .get("revision")
            .map_err(|e| i.err(e))?
            .map_or(0, |v| v.value()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A registry directory removed when the test ends.
    struct Scratch(PathBuf);

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn store() -> (EmbeddedStore, Scratch) {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "strata-registry-{}-{}",
            std::process::id(),
            N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        (EmbeddedStore::open(&dir).unwrap(), Scratch(dir))
    }

    fn put(key: &str, value: &str) -> Op {
        Op::Put {
            key: key.into(),
            value: value.as_bytes().to_vec(),
            lease: None,
        }
    }

    #[test]
    fn a_commit_is_all_or_nothing_and_guards_decide_it() {
        let (s, _dir) = store();
        let r1 = s
            .commit(
                &[Guard::Absent("t/acme".into())],
                &[put("t/acme", "1"), put("t/x", "2")],
            )
            .unwrap();
        assert_eq!(r1, Some(1));
        // Creating again fails as a whole: neither key changes.
        let again = s
            .commit(
                &[Guard::Absent("t/acme".into())],
                &[put("t/acme", "9"), put("t/y", "9")],
            )
            .unwrap();
        assert_eq!(again, None);
        assert_eq!(s.get("t/acme").unwrap().unwrap().value, b"1");
        assert!(s.get("t/y").unwrap().is_none());
        // Compare-and-swap on the revision.
        assert_eq!(
            s.commit(&[Guard::At("t/acme".into(), 1)], &[put("t/acme", "3")])
                .unwrap(),
            Some(2)
        );
        assert_eq!(
            s.commit(&[Guard::At("t/acme".into(), 1)], &[put("t/acme", "4")])
                .unwrap(),
            None
        );
        let keys: Vec<String> = s.list("t/").unwrap().into_iter().map(|e| e.key).collect();
        assert_eq!(keys, ["t/acme", "t/x"]);
        assert_eq!(s.revision().unwrap(), 2);
    }

    #[test]
    fn committed_data_survives_reopening_the_file() {
        let (s, dir) = store();
        s.commit(&[], &[put("k", "v")]).unwrap();
        drop(s);
        let s = EmbeddedStore::open(&dir.0).unwrap();
        assert_eq!(s.get("k").unwrap().unwrap().value, b"v");
        assert_eq!(s.revision().unwrap(), 1);
    }

    #[test]
    fn keys_under_an_expired_lease_disappear_and_watchers_see_it() {
        const TTL: Duration = Duration::from_millis(1000);
        let (s, _dir) = store();
        let granted = std::time::Instant::now();
        let lease = s.grant_lease(TTL).unwrap();
        let mut changes = s.watch("alive/");
        s.commit(
            &[],
            &[Op::Put {
                key: "alive/s1".into(),
                value: b"x".to_vec(),
                lease: Some(lease),
            }],
        )
        .unwrap();
        assert!(matches!(changes.blocking_recv(), Some(Change::Put(e)) if e.key == "alive/s1"));
        // Kept alive every 100 ms for three TTLs, the key stays: only keep-alives that move
        // the deadline can hold it past the first TTL.
        let mut last = granted;
        let mut longest_gap = Duration::ZERO;
        while granted.elapsed() < 3 * TTL {
            std::thread::sleep(Duration::from_millis(100));
            longest_gap = longest_gap.max(last.elapsed());
            last = std::time::Instant::now();
            let kept = s.keep_alive(lease);
            let at = granted.elapsed();
            assert!(
                kept.is_ok() && s.get("alive/s1").unwrap().is_some(),
                "kept alive, the key went {at:?} after the grant (TTL {TTL:?}, longest gap between \
                 keep-alives {longest_gap:?}): {kept:?}"
            );
        }
        assert!(changes.try_recv().is_err(), "no change while kept alive");
        // Then left alone, it goes, and keep-alive says so.
        let left = std::time::Instant::now();
        let change = loop {
            match changes.try_recv() {
                Ok(change) => break change,
                Err(_) if left.elapsed() < 10 * TTL => std::thread::sleep(Duration::from_millis(20)),
                Err(e) => panic!("the key outlived its lease by {:?}: {e}", left.elapsed()),
            }
        };
        assert!(matches!(change, Change::Delete { ref key, .. } if key == "alive/s1"));
        assert!(s.get("alive/s1").unwrap().is_none());
        assert!(matches!(s.keep_alive(lease), Err(RegistryError::NoLease(_))));
        // A put under a dead lease is refused.
        let dead = s.commit(
            &[],
            &[Op::Put {
                key: "alive/s1".into(),
                value: vec![],
                lease: Some(lease),
            }],
        );
        assert!(matches!(dead, Err(RegistryError::NoLease(_))));
    }
}
