//! Tenants' delivery settings (`strata_wire::delivery::TenantDelivery`: Cache-Control
//! overrides per kind, CORS origins), kept in the registry under `delivery/{tenant}` and
//! handed to edges in the name lookup. A record equal to the defaults is deleted.

use std::collections::BTreeMap;

use strata_wire::delivery::{DeliveryError, TenantDelivery};
use thiserror::Error;

use super::registry::{Guard, Op, RegistryError, RegistryStore};
use super::tenants::{TenantBook, TenantError};

#[derive(Debug, Error)]
pub enum DeliveryBookError {
    #[error(transparent)]
    Tenant(#[from] TenantError),
    #[error(transparent)]
    Invalid(#[from] DeliveryError),
    #[error("tenant {0}'s delivery record changed meanwhile; try again")]
    Conflict(String),
    #[error("registry record {key} is not valid JSON: {message}")]
    Corrupt { key: String, message: String },
    #[error(transparent)]
    Registry(#[from] RegistryError),
}

fn key(tenant: &str) -> String {
    format!("delivery/{tenant}")
}

/// The delivery records over any registry backend.
pub struct DeliveryBook<'a> {
    pub store: &'a dyn RegistryStore,
}

impl DeliveryBook<'_> {
    /// The tenant's settings (the defaults if none were set).
    pub fn get(&self, tenant: &str) -> Result<TenantDelivery, DeliveryBookError> {
        TenantBook { store: self.store }.get(tenant)?;
        Ok(self.read(tenant)?.map(|(d, _)| d).unwrap_or_default())
    }

    fn read(&self, tenant: &str) -> Result<Option<(TenantDelivery, u64)>, DeliveryBookError> {
        let k = key(tenant);
        match self.store.get(&k)? {
            None => Ok(None),
            Some(e) => serde_json::from_slice(&e.value)
                .map(|d| Some((d, e.revision)))
                .map_err(|err| DeliveryBookError::Corrupt {
                    key: k,
                    message: err.to_string(),
                }),
        }
    }

    /// Replaces the tenant's settings (checked first) if nobody changed them meanwhile.
    pub fn set(&self, tenant: &str, settings: TenantDelivery) -> Result<TenantDelivery, DeliveryBookError> {
        settings.validate()?;
        TenantBook { store: self.store }.get(tenant)?;
        let guard = match self.read(tenant)? {
            Some((_, rev)) => Guard::At(key(tenant), rev),
            None => Guard::Absent(key(tenant)),
        };
        let op = if settings.is_default() {
            Op::Delete { key: key(tenant) }
        } else {
            Op::Put {
                key: key(tenant),
                value: serde_json::to_vec(&settings).unwrap_or_default(),
                lease: None,
            }
        };
        match self.store.commit(&[guard], &[op])? {
            Some(_) => Ok(settings),
            None => Err(DeliveryBookError::Conflict(tenant.into())),
        }
    }

    /// Every tenant with settings, for the name lookup.
    pub fn all(&self) -> Result<BTreeMap<String, TenantDelivery>, DeliveryBookError> {
        let mut out = BTreeMap::new();
        for e in self.store.list("delivery/")? {
            let tenant = e.key["delivery/".len()..].to_string();
            let d: TenantDelivery =
                serde_json::from_slice(&e.value).map_err(|err| DeliveryBookError::Corrupt {
                    key: e.key.clone(),
                    message: err.to_string(),
                })?;
            out.insert(tenant, d);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embedded_store::EmbeddedStore;
    use crate::tenants::{Cluster, Tenant, Tier};

    fn store() -> EmbeddedStore {
        let dir = std::env::temp_dir().join(format!("strata-delivery-{}", std::process::id()));
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
    fn settings_are_checked_stored_listed_and_removed_when_default() {
        let store = store();
        let book = DeliveryBook { store: &store };
        assert_eq!(book.get("acme").expect("get"), TenantDelivery::default());
        let bad = TenantDelivery {
            cors_origins: Some(vec!["player.example.com".into()]),
            ..Default::default()
        };
        assert!(matches!(
            book.set("acme", bad),
            Err(DeliveryBookError::Invalid(_))
        ));
        assert!(matches!(
            book.set("nobody", TenantDelivery::default()),
            Err(DeliveryBookError::Tenant(_))
        ));
        let good = TenantDelivery {
            cache_control_vod: Some("public, max-age=60".into()),
            cors_origins: Some(vec!["https://player.example.com".into()]),
            ..Default::default()
        };
        book.set("acme", good.clone()).expect("set");
        assert_eq!(book.get("acme").expect("get"), good);
        assert_eq!(book.all().expect("all")["acme"], good);
        book.set("acme", TenantDelivery::default()).expect("reset");
        assert!(book.all().expect("all").is_empty());
    }
}
