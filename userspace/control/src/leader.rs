//! Leader election among control-plane instances sharing one registry: the leader holds
//! `meta/leader` (its instance name), created only if absent under a lease of its own and kept
//! alive; when the leader dies its lease expires, the key disappears and the next instance to
//! try creates it. Every instance serves the API; the singleton loops (the ingestor) work only
//! while [`Leadership::term`] says this instance leads, and commit their progress under
//! [`Leadership::guard`], which fails once another instance has taken the key — so a deposed
//! leader can never commit progress.

use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use super::registry::{Guard, LeaseId, Op, RegistryError, RegistryStore, Revision};

/// The key the leader holds; its value is the leader's instance name.
pub const LEADER_KEY: &str = "meta/leader";

/// This instance's hold on the leader key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Term {
    pub lease: LeaseId,
    /// Revision of the commit that created the leader key.
    pub revision: Revision,
}

/// Whether this instance leads, and the loop that campaigns and keeps the lease alive.
pub struct Leadership {
    instance: String,
    ttl: Duration,
    term: Mutex<Option<Term>>,
}

impl Leadership {
    pub fn new(instance: String, ttl: Duration) -> Arc<Leadership> {
        Arc::new(Leadership {
            instance,
            ttl,
            term: Mutex::new(None),
        })
    }

    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// The current term if this instance leads.
    pub fn term(&self) -> Option<Term> {
        *self.term.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn is_leader(&self) -> bool {
        self.term().is_some()
    }

    /// The guard a leader's commits carry: the leader key is still the one this term created.
    pub fn guard(&self) -> Option<Guard> {
        self.term().map(|t| Guard::At(LEADER_KEY.into(), t.revision))
    }

    /// After a guarded commit failed: steps down at once if the leader key is no longer this
    /// term's (instead of at the next election round). True while this instance still leads.
    pub fn confirm(&self, store: &dyn RegistryStore) -> Result<bool, RegistryError> {
        let Some(term) = self.term() else {
            return Ok(false);
        };
        let ours = store
            .get(LEADER_KEY)?
            .is_some_and(|e| e.revision == term.revision && e.lease == Some(term.lease));
        if !ours {
            self.set(None);
        }
        Ok(ours)
    }

    fn set(&self, term: Option<Term>) {
        let mut held = self.term.lock().unwrap_or_else(|p| p.into_inner());
        if *held != term {
            match term {
                Some(t) => {
                    tracing::info!(instance = %self.instance, revision = t.revision, "became the control-plane leader")
                }
                None => tracing::warn!(instance = %self.instance, "no longer the control-plane leader"),
            }
        }
        *held = term;
    }

    /// Starts the campaign loop; it ends when the store (the plane) is gone.
    pub fn spawn(self: &Arc<Self>, store: Weak<dyn RegistryStore>) -> std::io::Result<()> {
        let me = self.clone();
        let step = self.ttl / 3;
        std::thread::Builder::new()
            .name("leader-election".into())
            .spawn(move || {
                let mut renewed = Instant::now();
                loop {
                    let Some(store) = store.upgrade() else {
                        return;
                    };
                    if let Err(e) = me.step(store.as_ref(), &mut renewed) {
                        tracing::warn!(instance = %me.instance, error = %e, "leader election: registry error");
                    }
                    drop(store);
                    std::thread::sleep(step);
                }
            })?;
        Ok(())
    }

    /// One round: a leader renews its lease (and steps down when it cannot for most of a TTL or
    /// the key is no longer its own); a follower tries to take an absent key.
    fn step(&self, store: &dyn RegistryStore, renewed: &mut Instant) -> Result<(), RegistryError> {
        if let Some(term) = self.term() {
            let kept = store.keep_alive(term.lease).and_then(|()| {
                Ok(store
                    .get(LEADER_KEY)?
                    .is_some_and(|e| e.revision == term.revision && e.lease == Some(term.lease)))
            });
            match kept {
                Ok(true) => *renewed = Instant::now(),
                Ok(false) | Err(RegistryError::NoLease(_)) => self.set(None),
                Err(e) => {
                    if renewed.elapsed() >= self.ttl * 2 / 3 {
                        self.set(None);
                    }
                    return Err(e);
                }
            }
            return Ok(());
        }
        if store.get(LEADER_KEY)?.is_some() {
            return Ok(());
        }
        let lease = store.grant_lease(self.ttl)?;
        let put = Op::Put {
            key: LEADER_KEY.into(),
            value: self.instance.clone().into_bytes(),
            lease: Some(lease),
        };
        if let Some(revision) = store.commit(&[Guard::Absent(LEADER_KEY.into())], &[put])? {
            *renewed = Instant::now();
            self.set(Some(Term { lease, revision }));
        }
        Ok(())
    }
}

/// The instance holding the leader key, if any.
pub fn current_leader(store: &dyn RegistryStore) -> Result<Option<String>, RegistryError> {
    Ok(store
        .get(LEADER_KEY)?
        .map(|e| String::from_utf8_lossy(&e.value).into_owned()))
}

/// A default instance name: host name and process id.
pub fn default_instance() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "control".into());
    format!("{host}-{}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embedded_store::EmbeddedStore;

    #[test]
    fn one_instance_leads_and_the_other_takes_over_when_its_lease_ends() {
        let dir = std::env::temp_dir().join(format!("strata-leader-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = EmbeddedStore::open(&dir).expect("open");
        let a = Leadership::new("a".into(), Duration::from_millis(600));
        let b = Leadership::new("b".into(), Duration::from_millis(600));
        let (mut ra, mut rb) = (Instant::now(), Instant::now());
        a.step(&store, &mut ra).expect("a campaigns");
        b.step(&store, &mut rb).expect("b campaigns");
        assert!(a.is_leader() && !b.is_leader());
        assert_eq!(current_leader(&store).expect("get").as_deref(), Some("a"));
        let guard = a.guard().expect("a leads");
        // a stops renewing (paused, dead): its lease expires and b takes the key.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !b.is_leader() {
            assert!(Instant::now() < deadline, "b never became leader");
            std::thread::sleep(Duration::from_millis(100));
            b.step(&store, &mut rb).expect("b campaigns");
        }
        assert_eq!(current_leader(&store).expect("get").as_deref(), Some("b"));
        // a's commits under its old term fail; a steps down at its next round.
        let put = Op::Put {
            key: "x".into(),
            value: vec![],
            lease: None,
        };
        assert_eq!(store.commit(&[guard], &[put]).expect("commit"), None);
        assert!(!a.confirm(&store).expect("confirm"));
        assert!(!a.is_leader());
        assert!(b.confirm(&store).expect("confirm"));
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
