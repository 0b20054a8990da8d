//! Per-tenant access rules for viewers: `public` (anyone with the URL) or `signed` (only URLs
//! carrying a valid signature, see `strata_http::signed_url`), and the tenant's signing keys,
//! the newest first and at most two valid at a time: rotating makes a new key and keeps the
//! previous one, so URLs signed before the rotation keep working until they expire. Kept in the
//! registry under `signing/{tenant}` and handed to edges in the name lookup.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::registry::{Op, RegistryError, RegistryStore};
use super::tenant_record::TenantRecords;
use super::tenants::{TenantBook, TenantError};

/// Keys valid at a time.
pub const VALID_KEYS: usize = 2;

/// Who may fetch a tenant's content through the edges.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    #[default]
    Public,
    Signed,
}

/// A tenant's viewer access rule and signing keys (hex, newest first).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signing {
    pub access: Access,
    #[serde(default)]
    pub keys: Vec<String>,
}

#[derive(Debug, Error)]
pub enum SigningError {
    #[error(transparent)]
    Tenant(#[from] TenantError),
    #[error("tenant {0} has no signing key yet: rotate one first (strata control tenant keys {0})")]
    NoKey(String),
    #[error("tenant {0}'s signing record changed meanwhile; try again")]
    Conflict(String),
    #[error(transparent)]
    Registry(#[from] RegistryError),
}

/// The signing records over any registry backend.
pub struct SigningBook<'a> {
    pub store: &'a dyn RegistryStore,
}

impl SigningBook<'_> {
    fn records(&self) -> TenantRecords<'_> {
        TenantRecords {
            store: self.store,
            prefix: "signing/",
        }
    }

    /// The tenant's record (public with no keys if none was written).
    pub fn get(&self, tenant: &str) -> Result<Signing, SigningError> {
        TenantBook { store: self.store }.get(tenant)?;
        Ok(self.records().read(tenant)?.0.unwrap_or_default())
    }

    /// Changes the record if nobody else did meanwhile.
    fn change(&self, tenant: &str, f: impl FnOnce(&mut Signing)) -> Result<Signing, SigningError> {
        TenantBook { store: self.store }.get(tenant)?;
        let records = self.records();
        let (record, guard) = records.read::<Signing>(tenant)?;
        let mut record = record.unwrap_or_default();
        f(&mut record);
        let op = Op::Put {
            key: records.key(tenant),
            value: serde_json::to_vec(&record).unwrap_or_default(),
            lease: None,
        };
        match self.store.commit(&[guard], &[op])? {
            Some(_) => Ok(record),
            None => Err(SigningError::Conflict(tenant.into())),
        }
    }

    /// Sets who may fetch the tenant's content; `signed` without a key makes one.
    pub fn set_access(&self, tenant: &str, access: Access) -> Result<Signing, SigningError> {
        self.change(tenant, |s| {
            s.access = access;
            if access == Access::Signed && s.keys.is_empty() {
                s.keys.push(new_key());
            }
        })
    }

    /// Makes a new key (newest first) and keeps the previous one valid.
    pub fn rotate(&self, tenant: &str) -> Result<Signing, SigningError> {
        self.change(tenant, |s| {
            s.keys.insert(0, new_key());
            s.keys.truncate(VALID_KEYS);
        })
    }

    /// Every signed tenant's keys, for the name lookup.
    pub fn signed_tenants(&self) -> Result<std::collections::BTreeMap<String, Vec<String>>, SigningError> {
        Ok(self
            .records()
            .all::<Signing>()?
            .into_iter()
            .filter(|(_, s)| s.access == Access::Signed)
            .map(|(tenant, s)| (tenant, s.keys))
            .collect())
    }

    /// Signs `path` (or `prefix`) for `ttl_secs` from `now`, optionally for one client address,
    /// with the newest key: the query string to append.
    pub fn sign(
        &self,
        tenant: &str,
        path: &str,
        prefix: Option<&str>,
        expires_unix: u64,
        ip: Option<std::net::IpAddr>,
    ) -> Result<String, SigningError> {
        let record = self.get(tenant)?;
        let newest = record
            .keys
            .first()
            .ok_or_else(|| SigningError::NoKey(tenant.into()))?;
        Ok(strata_http::signed_url::sign(newest.as_bytes(), path, prefix, expires_unix, ip).to_query())
    }
}

fn new_key() -> String {
    strata_wire::content_digest::hex(&rand::random::<[u8; 32]>())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embedded_store::EmbeddedStore;
    use crate::tenants::{Cluster, Tenant, Tier};

    fn store() -> EmbeddedStore {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "strata-signing-{}-{}",
            std::process::id(),
            N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let store = EmbeddedStore::open(&dir).expect("store");
        let book = TenantBook { store: &store };
        book.add_cluster(&Cluster {
            name: "east".into(),
            tier: Tier::Storage,
        })
        .expect("cluster");
        book.create(&Tenant {
            name: "acme".into(),
            home_cluster: "east".into(),
            replica_clusters: vec![],
            quota_bytes: 0,
            hot_edges: 0,
            idle_archive_secs: 60,
        })
        .expect("tenant");
        store
    }

    #[test]
    fn signing_needs_a_key_and_rotation_keeps_two_valid_newest_first() {
        let store = store();
        let book = SigningBook { store: &store };
        assert!(matches!(
            book.sign("acme", "/acme/a/b", None, 10, None),
            Err(SigningError::NoKey(_))
        ));
        let first = book.set_access("acme", Access::Signed).expect("signed");
        assert_eq!(first.keys.len(), 1);
        let second = book.rotate("acme").expect("rotate");
        let third = book.rotate("acme").expect("rotate");
        assert_eq!(third.keys.len(), VALID_KEYS);
        assert_eq!(third.keys[1], second.keys[0], "the previous key stays valid");
        assert!(!third.keys.contains(&first.keys[0]), "the oldest is retired");
        let query = book
            .sign("acme", "/acme/a/b.mp4", None, 10, None)
            .expect("signed");
        let keys: Vec<Vec<u8>> = third.keys.iter().map(|k| k.as_bytes().to_vec()).collect();
        let client = "127.0.0.1".parse().expect("ip");
        assert!(strata_http::signed_url::verify("/acme/a/b.mp4", &query, client, &keys, 1).is_ok());
        assert_eq!(book.signed_tenants().expect("list")["acme"], third.keys);
        book.set_access("acme", Access::Public).expect("public");
        assert!(book.signed_tenants().expect("list").is_empty());
    }

    #[test]
    fn an_unknown_tenant_is_an_error_naming_it() {
        let store = store();
        let e = SigningBook { store: &store }
            .rotate("globex")
            .expect_err("no such tenant");
        assert!(e.to_string().contains("globex"), "{e}");
    }
}
