//! Tenants' delivery settings (`strata_wire::delivery::TenantDelivery`: Cache-Control
//! overrides per kind, CORS origins), kept in the registry under `delivery/{tenant}` and
//! handed to edges in the name lookup. A record equal to the defaults is deleted.

use std::collections::BTreeMap;

use strata_wire::delivery::{DeliveryError, TenantDelivery};
use thiserror::Error;

use super::registry::{Op, RegistryError, RegistryStore};
use super::tenant_record::TenantRecords;
use super::tenants::{TenantBook, TenantError};

#[derive(Debug, Error)]
pub enum DeliveryBookError {
    #[error(transparent)]
    Tenant(#[from] TenantError),
    #[error(transparent)]
    Invalid(#[from] DeliveryError),
    #[error("tenant {0}'s delivery record changed meanwhile; try again")]
    Conflict(String),
    #[error(transparent)]
    Registry(#[from] RegistryError),
}

/// The delivery records over any registry backend.
pub struct DeliveryBook<'a> {
    pub store: &'a dyn RegistryStore,
}

impl DeliveryBook<'_> {
    fn records(&self) -> TenantRecords<'_> {
        TenantRecords {
            store: self.store,
            prefix: "delivery/",
        }
    }

    /// The tenant's settings (the defaults if none were set).
    pub fn get(&self, tenant: &str) -> Result<TenantDelivery, DeliveryBookError> {
        TenantBook { store: self.store }.get(tenant)?;
        Ok(self.records().read(tenant)?.0.unwrap_or_default())
    }

    /// Replaces the tenant's settings (checked first) if nobody changed them meanwhile.
    pub fn set(&self, tenant: &str, settings: TenantDelivery) -> Result<TenantDelivery, DeliveryBookError> {
        settings.validate()?;
        TenantBook { store: self.store }.get(tenant)?;
        let records = self.records();
        let (_, guard) = records.read::<TenantDelivery>(tenant)?;
        let key = records.key(tenant);
        let op = if settings.is_default() {
            Op::Delete { key }
        } else {
            Op::Put {
                key,
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
        Ok(self.records().all()?)
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
