//! Storage servers and edges registered with the control plane. A server announces itself with
//! heartbeats; its record (`servers/{name}`) stays, while its liveness key (`alive/{name}`)
//! lives under a registry lease that each heartbeat keeps alive. A server that misses
//! heartbeats for the lease's time to live loses the key: it is down and is no longer chosen.
//! Its next heartbeat grants a new lease, and it is up again by itself.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use strata_wire::heartbeat::{ServerRecord, ServerRole};
use thiserror::Error;

use super::names::{self, BadName};
use super::registry::{LeaseId, Op, RegistryError, RegistryStore};

#[derive(Debug, Error)]
pub enum ServerError {
    #[error(transparent)]
    BadName(#[from] BadName),
    #[error("server {name} belongs to {role:?} servers; a storage server needs its cluster")]
    NoCluster { name: String, role: ServerRole },
    #[error("server {name}: no storage cluster {cluster} (register it first)")]
    UnknownCluster { name: String, cluster: String },
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error("registry record {key} is not valid JSON: {message}")]
    Corrupt { key: String, message: String },
}

/// A server and whether it is up.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerState {
    #[serde(flatten)]
    pub record: ServerRecord,
    pub up: bool,
}

/// Registration and liveness over any registry backend.
pub struct ServerBook {
    ttl: Duration,
    leases: Mutex<HashMap<String, LeaseId>>,
}

impl ServerBook {
    /// `ttl`: how long a server stays up without a heartbeat.
    pub fn new(ttl: Duration) -> ServerBook {
        ServerBook {
            ttl,
            leases: Mutex::new(HashMap::new()),
        }
    }

    /// Records a heartbeat: registers or updates the server, keeps it alive. Returns whether
    /// the server was down (or new) before this heartbeat.
    pub fn heartbeat(&self, store: &dyn RegistryStore, record: &ServerRecord) -> Result<bool, ServerError> {
        names::check("server", &record.name)?;
        if record.role == ServerRole::Storage {
            let Some(cluster) = &record.cluster else {
                return Err(ServerError::NoCluster {
                    name: record.name.clone(),
                    role: record.role,
                });
            };
            if store.get(&format!("clusters/{cluster}"))?.is_none() {
                return Err(ServerError::UnknownCluster {
                    name: record.name.clone(),
                    cluster: cluster.clone(),
                });
            }
        }
        let key = format!("servers/{}", record.name);
        let value = serde_json::to_vec(record).unwrap_or_default();
        if store.get(&key)?.map(|e| e.value) != Some(value.clone()) {
            store.commit(
                &[],
                &[Op::Put {
                    key,
                    value,
                    lease: None,
                }],
            )?;
        }
        let mut leases = self.leases.lock().unwrap_or_else(|p| p.into_inner());
        let alive_key = format!("alive/{}", record.name);
        if let Some(lease) = leases.get(&record.name) {
            if store.keep_alive(*lease).is_ok() && store.get(&alive_key)?.is_some() {
                return Ok(false);
            }
        }
        let lease = store.grant_lease(self.ttl)?;
        store.commit(
            &[],
            &[Op::Put {
                key: alive_key,
                value: Vec::new(),
                lease: Some(lease),
            }],
        )?;
        leases.insert(record.name.clone(), lease);
        tracing::info!(server = %record.name, role = ?record.role, addr = %record.addr, "server is up");
        Ok(true)
    }

    /// The lease that keeps `name` alive (its state row lives under it too).
    pub fn lease_of(&self, name: &str) -> Option<LeaseId> {
        self.leases
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .copied()
    }

    /// Every registered server and whether it is up, by name.
    pub fn all(store: &dyn RegistryStore) -> Result<Vec<ServerState>, ServerError> {
        let alive: std::collections::HashSet<String> = store
            .list("alive/")?
            .into_iter()
            .map(|e| e.key["alive/".len()..].to_string())
            .collect();
        store
            .list("servers/")?
            .into_iter()
            .map(|e| {
                let record: ServerRecord =
                    serde_json::from_slice(&e.value).map_err(|err| ServerError::Corrupt {
                        key: e.key.clone(),
                        message: err.to_string(),
                    })?;
                let up = alive.contains(&record.name);
                Ok(ServerState { record, up })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embedded_store::EmbeddedStore;

    fn storage(name: &str, cluster: &str) -> ServerRecord {
        ServerRecord {
            name: name.into(),
            role: ServerRole::Storage,
            cluster: Some(cluster.into()),
            addr: "127.0.0.1:1".parse().unwrap(),
            admin_addr: "127.0.0.1:2".parse().unwrap(),
            region: None,
            capacity_bps: 0,
        }
    }

    #[test]
    fn a_server_that_stops_heartbeating_goes_down_and_comes_back_with_its_next_heartbeat() {
        let dir = std::env::temp_dir().join(format!("strata-servers-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let store = EmbeddedStore::open(&dir).unwrap();
        store.create("clusters/east", b"{}".to_vec()).unwrap();
        let book = ServerBook::new(Duration::from_millis(300));
        assert!(matches!(
            book.heartbeat(&store, &storage("s1", "nowhere")),
            Err(ServerError::UnknownCluster { .. })
        ));
        assert!(book.heartbeat(&store, &storage("s1", "east")).unwrap());
        assert!(!book.heartbeat(&store, &storage("s1", "east")).unwrap());
        assert!(ServerBook::all(&store).unwrap()[0].up);
        std::thread::sleep(Duration::from_millis(900));
        let all = ServerBook::all(&store).unwrap();
        assert_eq!(all.len(), 1, "the record stays");
        assert!(!all[0].up, "no heartbeat for the lease's ttl: down");
        assert!(book.heartbeat(&store, &storage("s1", "east")).unwrap(), "back up");
        assert!(ServerBook::all(&store).unwrap()[0].up);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
