//! Tenants (the seed's media content providers) and storage clusters in the registry. A tenant
//! is created with a home storage cluster that never changes afterwards (URLs handed out stay
//! valid), a storage quota, replication rules and an idle-archive time.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::names::{self, BadName};
use super::registry::{Guard, Op, RegistryError, RegistryStore};

/// What a cluster is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    Storage,
    Archive,
}

/// A storage (or archive) cluster.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cluster {
    pub name: String,
    pub tier: Tier,
}

/// A tenant and its rules.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tenant {
    pub name: String,
    /// Fixed at creation.
    pub home_cluster: String,
    /// Extra storage clusters every content is copied to.
    #[serde(default)]
    pub replica_clusters: Vec<String>,
    /// Bytes the tenant's content may take on its home cluster (0: no limit).
    #[serde(default)]
    pub quota_bytes: u64,
    /// Edges content flagged hot is pushed to at ingest.
    #[serde(default)]
    pub hot_edges: u32,
    /// Seconds a finished live stream stays idle before it is archived.
    #[serde(default = "default_idle_archive")]
    pub idle_archive_secs: u64,
}

fn default_idle_archive() -> u64 {
    3600
}

/// A change to a tenant's rules (absent fields stay as they are).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantChange {
    /// Refused unless equal to the current home: the home cluster never changes.
    pub home_cluster: Option<String>,
    pub replica_clusters: Option<Vec<String>>,
    pub quota_bytes: Option<u64>,
    pub hot_edges: Option<u32>,
    pub idle_archive_secs: Option<u64>,
}

#[derive(Debug, Error)]
pub enum TenantError {
    #[error(transparent)]
    BadName(#[from] BadName),
    #[error("tenant {0} already exists")]
    Exists(String),
    #[error("no tenant {0}")]
    NoTenant(String),
    #[error("cluster {0} already exists")]
    ClusterExists(String),
    #[error("no {tier:?} cluster {name} (register it first: strata control cluster add {name})")]
    NoCluster { name: String, tier: Tier },
    #[error("tenant {tenant}'s home cluster is {home} and cannot change (asked: {asked}); URLs handed out must stay valid")]
    HomeIsFixed {
        tenant: String,
        home: String,
        asked: String,
    },
    #[error("tenant {tenant}: replica cluster {cluster} is its home cluster")]
    ReplicaIsHome { tenant: String, cluster: String },
    #[error("tenant {0} changed while being updated; try again")]
    Conflict(String),
    #[error("registry record {key} is not valid JSON: {message}")]
    Corrupt { key: String, message: String },
    #[error(transparent)]
    Registry(#[from] RegistryError),
}

fn tenant_key(name: &str) -> String {
    format!("tenants/{name}")
}

fn cluster_key(name: &str) -> String {
    format!("clusters/{name}")
}

fn decode<T: for<'de> Deserialize<'de>>(key: &str, bytes: &[u8]) -> Result<T, TenantError> {
    serde_json::from_slice(bytes).map_err(|e| TenantError::Corrupt {
        key: key.into(),
        message: e.to_string(),
    })
}

fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    // Plain structs of strings and numbers always serialise.
    serde_json::to_vec(v).unwrap_or_default()
}

/// Tenant and cluster records over any registry backend.
pub struct TenantBook<'a> {
    pub store: &'a dyn RegistryStore,
}

impl TenantBook<'_> {
    pub fn add_cluster(&self, cluster: &Cluster) -> Result<(), TenantError> {
        names::check("cluster", &cluster.name)?;
        if self.store.create(&cluster_key(&cluster.name), encode(cluster))? {
            Ok(())
        } else {
            Err(TenantError::ClusterExists(cluster.name.clone()))
        }
    }

    pub fn cluster(&self, name: &str) -> Result<Option<Cluster>, TenantError> {
        let key = cluster_key(name);
        self.store.get(&key)?.map(|e| decode(&key, &e.value)).transpose()
    }

    pub fn clusters(&self) -> Result<Vec<Cluster>, TenantError> {
        self.store
            .list("clusters/")?
            .iter()
            .map(|e| decode(&e.key, &e.value))
            .collect()
    }

    fn require_storage_cluster(&self, name: &str) -> Result<(), TenantError> {
        match self.cluster(name)? {
            Some(c) if c.tier == Tier::Storage => Ok(()),
            _ => Err(TenantError::NoCluster {
                name: name.into(),
                tier: Tier::Storage,
            }),
        }
    }

    fn check_rules(&self, t: &Tenant) -> Result<(), TenantError> {
        self.require_storage_cluster(&t.home_cluster)?;
        for r in &t.replica_clusters {
            if *r == t.home_cluster {
                return Err(TenantError::ReplicaIsHome {
                    tenant: t.name.clone(),
                    cluster: r.clone(),
                });
            }
            self.require_storage_cluster(r)?;
        }
        Ok(())
    }

    pub fn create(&self, t: &Tenant) -> Result<(), TenantError> {
        names::check("tenant", &t.name)?;
        self.check_rules(t)?;
        if self.store.create(&tenant_key(&t.name), encode(t))? {
            Ok(())
        } else {
            Err(TenantError::Exists(t.name.clone()))
        }
    }

    pub fn get(&self, name: &str) -> Result<Tenant, TenantError> {
        let key = tenant_key(name);
        match self.store.get(&key)? {
            Some(e) => decode(&key, &e.value),
            None => Err(TenantError::NoTenant(name.into())),
        }
    }

    pub fn list(&self) -> Result<Vec<Tenant>, TenantError> {
        self.store
            .list("tenants/")?
            .iter()
            .map(|e| decode(&e.key, &e.value))
            .collect()
    }

    /// Applies `change` if the tenant did not change meanwhile; the home cluster never changes.
    pub fn update(&self, name: &str, change: &TenantChange) -> Result<Tenant, TenantError> {
        let key = tenant_key(name);
        let entry = self
            .store
            .get(&key)?
            .ok_or_else(|| TenantError::NoTenant(name.into()))?;
        let mut t: Tenant = decode(&key, &entry.value)?;
        if let Some(home) = &change.home_cluster {
            if *home != t.home_cluster {
                return Err(TenantError::HomeIsFixed {
                    tenant: name.into(),
                    home: t.home_cluster,
                    asked: home.clone(),
                });
            }
        }
        if let Some(r) = &change.replica_clusters {
            t.replica_clusters.clone_from(r);
        }
        if let Some(q) = change.quota_bytes {
            t.quota_bytes = q;
        }
        if let Some(h) = change.hot_edges {
            t.hot_edges = h;
        }
        if let Some(i) = change.idle_archive_secs {
            t.idle_archive_secs = i;
        }
        self.check_rules(&t)?;
        let op = Op::Put {
            key: key.clone(),
            value: encode(&t),
            lease: None,
        };
        match self.store.commit(&[Guard::At(key, entry.revision)], &[op])? {
            Some(_) => Ok(t),
            None => Err(TenantError::Conflict(name.into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embedded_store::EmbeddedStore;

    fn book_dir() -> std::path::PathBuf {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        std::env::temp_dir().join(format!(
            "strata-tenants-{}-{}",
            std::process::id(),
            N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ))
    }

    fn tenant(name: &str, home: &str) -> Tenant {
        Tenant {
            name: name.into(),
            home_cluster: home.into(),
            replica_clusters: vec![],
            quota_bytes: 1 << 30,
            hot_edges: 1,
            idle_archive_secs: 600,
        }
    }

    #[test]
    fn a_tenants_home_cluster_is_fixed_but_its_rules_change() {
        let dir = book_dir();
        let store = EmbeddedStore::open(&dir).unwrap();
        let book = TenantBook { store: &store };
        for name in ["east", "west"] {
            book.add_cluster(&Cluster {
                name: name.into(),
                tier: Tier::Storage,
            })
            .unwrap();
        }
        book.add_cluster(&Cluster {
            name: "vault".into(),
            tier: Tier::Archive,
        })
        .unwrap();
        assert!(matches!(
            book.add_cluster(&Cluster {
                name: "east".into(),
                tier: Tier::Storage
            }),
            Err(TenantError::ClusterExists(_))
        ));
        // Home must be a registered storage cluster.
        assert!(matches!(
            book.create(&tenant("acme", "nowhere")),
            Err(TenantError::NoCluster { .. })
        ));
        assert!(matches!(
            book.create(&tenant("acme", "vault")),
            Err(TenantError::NoCluster { .. })
        ));
        book.create(&tenant("acme", "east")).unwrap();
        assert!(matches!(
            book.create(&tenant("acme", "west")),
            Err(TenantError::Exists(_))
        ));

        let moved = book.update(
            "acme",
            &TenantChange {
                home_cluster: Some("west".into()),
                quota_bytes: Some(5),
                ..Default::default()
            },
        );
        let e = moved.unwrap_err();
        assert!(
            e.to_string().contains("home cluster is east and cannot change"),
            "{e}"
        );
        assert_eq!(
            book.get("acme").unwrap(),
            tenant("acme", "east"),
            "a refused change changes nothing"
        );

        let t = book
            .update(
                "acme",
                &TenantChange {
                    home_cluster: Some("east".into()),
                    replica_clusters: Some(vec!["west".into()]),
                    quota_bytes: Some(2 << 30),
                    ..Default::default()
                },
            )
            .unwrap();
        assert_eq!(
            (t.replica_clusters.as_slice(), t.quota_bytes),
            (&["west".to_string()][..], 2 << 30)
        );
        assert!(matches!(
            book.update(
                "acme",
                &TenantChange {
                    replica_clusters: Some(vec!["east".into()]),
                    ..Default::default()
                }
            ),
            Err(TenantError::ReplicaIsHome { .. })
        ));
        assert!(matches!(book.get("nobody"), Err(TenantError::NoTenant(_))));
        assert_eq!(book.list().unwrap().len(), 1);
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
