//! The control plane's registry: a key-value store with revisions, atomic guarded commits,
//! leases and watches — the shape of etcd's API, so an etcd backend can replace the embedded one
//! without changing callers. [`RegistryStore`] is that seam; `embedded_store` is the default
//! (an ACID redb file in the control plane's data directory; one machine needs nothing else).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// A store-wide revision: every commit gets the next one.
pub type Revision = u64;

/// A lease: keys put under it disappear when it is not kept alive within its time to live.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LeaseId(pub u64);

/// A key's current value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub key: String,
    pub value: Vec<u8>,
    /// Revision of the commit that last wrote this key.
    pub revision: Revision,
    pub lease: Option<LeaseId>,
}

/// One write of a commit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    Put {
        key: String,
        value: Vec<u8>,
        lease: Option<LeaseId>,
    },
    Delete {
        key: String,
    },
}

/// A condition a commit needs (etcd's Txn compare).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Guard {
    /// The key does not exist.
    Absent(String),
    /// The key exists and was last written at this revision.
    At(String, Revision),
}

/// What a watcher sees.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    Put(Entry),
    /// Deleted explicitly or by an expired lease.
    Delete {
        key: String,
        revision: Revision,
    },
}

impl Change {
    pub fn key(&self) -> &str {
        match self {
            Change::Put(e) => &e.key,
            Change::Delete { key, .. } => key,
        }
    }
}

#[derive(Debug, Error)]
pub enum RegistryError {
    #[error("registry storage at {path}: {message}")]
    Storage { path: String, message: String },
    #[error("lease {0:?} is unknown or expired")]
    NoLease(LeaseId),
    #[error("corrupt registry record {key}: {message}")]
    Corrupt { key: String, message: String },
    /// The registry cannot be reached (etcd down or without quorum): try again later.
    #[error("registry {registry} unavailable ({what}): {message}")]
    Unavailable {
        registry: String,
        what: String,
        message: String,
    },
}

/// The registry's operations. Every method is atomic on its own; `commit` applies several
/// writes atomically if its guards hold.
pub trait RegistryStore: Send + Sync {
    fn get(&self, key: &str) -> Result<Option<Entry>, RegistryError>;

    /// Every key starting with `prefix`, in key order.
    fn list(&self, prefix: &str) -> Result<Vec<Entry>, RegistryError>;

    /// Applies `ops` in one transaction if every guard holds: `Some(revision)`; `None` (and
    /// nothing written) when a guard fails.
    fn commit(&self, guards: &[Guard], ops: &[Op]) -> Result<Option<Revision>, RegistryError>;

    /// A new lease that expires `ttl` after its last keep-alive.
    fn grant_lease(&self, ttl: Duration) -> Result<LeaseId, RegistryError>;

    /// Extends a lease by its time to live; `NoLease` once it has expired (its keys are gone).
    fn keep_alive(&self, lease: LeaseId) -> Result<(), RegistryError>;

    /// Changes to keys under `prefix` from now on (etcd's Watch).
    fn watch(&self, prefix: &str) -> tokio::sync::mpsc::UnboundedReceiver<Change>;

    /// The latest revision.
    fn revision(&self) -> Result<Revision, RegistryError>;

    /// Writes `key` only if it does not exist yet; false (nothing written) if it does.
    fn create(&self, key: &str, value: Vec<u8>) -> Result<bool, RegistryError> {
        let put = Op::Put {
            key: key.into(),
            value,
            lease: None,
        };
        Ok(self.commit(&[Guard::Absent(key.into())], &[put])?.is_some())
    }
}
