//! The durable work queue: one registry record per work item (`work/{id}`), written in the same
//! transaction as the content it places, so a killed control plane loses no work: on restart
//! the ingestor picks up every item and redoes the targets not marked done. Each target's step
//! is idempotent (a storage server that already holds the bytes answers with their SHA-256 and
//! nothing is copied again), so redoing one never duplicates content.

use serde::{Deserialize, Serialize};

use super::contents::{content_key, ContentRecord, ContentState};
use super::registry::{Guard, Op, RegistryError, RegistryStore};

/// Where a target copy goes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "to", rename_all = "lowercase")]
pub enum Place {
    /// A storage server (by registered name) of `cluster`.
    Server { name: String, cluster: String },
    /// The archive tier.
    Archive,
}

impl Place {
    /// The name recorded in a content's `placed` set.
    pub fn label(&self) -> String {
        match self {
            Place::Server { name, .. } => name.clone(),
            Place::Archive => "archive".into(),
        }
    }
}

/// One copy to make.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    pub place: Place,
    pub done: bool,
    #[serde(default)]
    pub attempts: u32,
    #[serde(default)]
    pub last_error: Option<String>,
}

impl Target {
    /// A copy still to make.
    pub fn new(place: Place) -> Target {
        Target {
            place,
            done: false,
            attempts: 0,
            last_error: None,
        }
    }
}

/// What the item does.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum WorkKind {
    /// Copy a freshly ingested content from staging directory `staging` to every target.
    Place { staging: String },
    /// Copy assets back from the archive to servers that lost them.
    Restore { assets: Vec<String> },
}

/// A queued piece of work.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkItem {
    pub id: String,
    pub tenant: String,
    pub content: String,
    pub kind: WorkKind,
    pub targets: Vec<Target>,
    pub created_unix: u64,
}

impl WorkItem {
    pub fn key(&self) -> String {
        format!("work/{}", self.id)
    }

    pub fn done(&self) -> bool {
        self.targets.iter().all(|t| t.done)
    }
}

/// A new, time-ordered work item id.
pub fn new_id() -> String {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    format!("{ms:013}-{:08x}", rand::random::<u32>())
}

pub fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}

fn corrupt(key: &str, e: serde_json::Error) -> RegistryError {
    RegistryError::Corrupt {
        key: key.into(),
        message: e.to_string(),
    }
}

/// Every queued item, oldest first, with its record's revision.
pub fn pending(store: &dyn RegistryStore) -> Result<Vec<(WorkItem, u64)>, RegistryError> {
    store
        .list("work/")?
        .into_iter()
        .map(|e| {
            Ok((
                serde_json::from_slice(&e.value).map_err(|err| corrupt(&e.key, err))?,
                e.revision,
            ))
        })
        .collect()
}

/// Reads a content record with its revision.
pub fn content_at(
    store: &dyn RegistryStore,
    tenant: &str,
    content: &str,
) -> Result<Option<(ContentRecord, u64)>, RegistryError> {
    let key = content_key(tenant, content);
    store
        .get(&key)?
        .map(|e| {
            Ok((
                serde_json::from_slice(&e.value).map_err(|err| corrupt(&key, err))?,
                e.revision,
            ))
        })
        .transpose()
}

/// Saves `item` (its target states) if nobody changed it since `revision`; when a target
/// became done, records the place in the content's `placed` set in the same commit; when
/// every target is done, removes the item, marks the content ready and applies `when_done`
/// (the hot content's distribution job). Returns the item's new revision, or None on a
/// conflicting change (the caller reads again).
pub fn save_progress(
    store: &dyn RegistryStore,
    item: &WorkItem,
    revision: u64,
    newly_placed: Option<&Place>,
    leader: &Guard,
    when_done: &[Op],
) -> Result<Option<u64>, RegistryError> {
    let mut guards = vec![Guard::At(item.key(), revision), leader.clone()];
    let mut ops = Vec::new();
    if newly_placed.is_some() || item.done() {
        if let Some((mut record, rev)) = content_at(store, &item.tenant, &item.content)? {
            if let Some(p) = newly_placed {
                record.placed.insert(p.label());
            }
            if item.done() {
                record.state = ContentState::Ready;
            }
            guards.push(Guard::At(content_key(&item.tenant, &item.content), rev));
            ops.push(Op::Put {
                key: content_key(&item.tenant, &item.content),
                value: encode(&record),
                lease: None,
            });
        }
    }
    if item.done() {
        ops.push(Op::Delete { key: item.key() });
        ops.extend_from_slice(when_done);
    } else {
        ops.push(Op::Put {
            key: item.key(),
            value: encode(item),
            lease: None,
        });
    }
    store.commit(&guards, &ops)
}
