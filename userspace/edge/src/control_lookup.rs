//! The name lookup an edge gets from the control plane: the table (tenant → home and replica
//! clusters → storage servers that are up) fetched from `GET /v1/lookup`, held in memory and
//! answered without a network round trip. The control agent fetches it again when a heartbeat
//! reply carries a different etag (invalidation) or when it is older than the TTL.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use crate::delivery_policy::DeliveryPolicy;

use crate::name_lookup::{ClusterServers, NameLookup};
use strata_http::content_path::ContentPath;
use strata_wire::lookup::LookupTable;

/// The cached lookup table.
#[derive(Debug)]
pub struct ControlLookup {
    table: RwLock<(LookupTable, Option<Instant>)>,
    /// Tenants with delivery settings or signed content → their policy, built at install.
    policies: RwLock<BTreeMap<String, Arc<DeliveryPolicy>>>,
}

impl Default for ControlLookup {
    fn default() -> Self {
        ControlLookup {
            table: RwLock::new((LookupTable::default(), None)),
            policies: RwLock::new(BTreeMap::new()),
        }
    }
}

impl ControlLookup {
    /// Installs a freshly fetched table.
    pub fn replace(&self, table: LookupTable) {
        let mut policies = BTreeMap::new();
        for tenant in table.delivery.keys().chain(table.signed.keys()) {
            let policy = DeliveryPolicy {
                settings: table.delivery.get(tenant).cloned().unwrap_or_default(),
                signed: table.signed.contains_key(tenant),
            };
            policies.insert(tenant.clone(), Arc::new(policy));
        }
        *self.policies.write().unwrap_or_else(|p| p.into_inner()) = policies;
        let mut t = self.table.write().unwrap_or_else(|p| p.into_inner());
        *t = (table, Some(Instant::now()));
    }

    /// The etag of the table held, and when it was fetched (None: never).
    pub fn etag(&self) -> (String, Option<Instant>) {
        let t = self.table.read().unwrap_or_else(|p| p.into_inner());
        (t.0.etag.clone(), t.1)
    }
}

impl NameLookup for ControlLookup {
    fn locate(&self, path: &ContentPath) -> Vec<ClusterServers> {
        let t = self.table.read().unwrap_or_else(|p| p.into_inner());
        let Some(clusters) = t.0.tenants.get(&path.tenant) else {
            return Vec::new();
        };
        clusters
            .iter()
            .map(|c| ClusterServers {
                cluster: c.clone(),
                servers: t.0.clusters.get(c).cloned().unwrap_or_default(),
            })
            .collect()
    }

    fn signing_keys(&self, tenant: &str) -> Option<Vec<Vec<u8>>> {
        let t = self.table.read().unwrap_or_else(|p| p.into_inner());
        t.0.signed
            .get(tenant)
            .map(|keys| keys.iter().map(|k| k.as_bytes().to_vec()).collect())
    }

    fn delivery(&self, tenant: &str) -> Option<Arc<DeliveryPolicy>> {
        let p = self.policies.read().unwrap_or_else(|p| p.into_inner());
        p.get(tenant).cloned()
    }

    fn live(&self, path: &ContentPath) -> Option<ClusterServers> {
        let t = self.table.read().unwrap_or_else(|p| p.into_inner());
        if t.0.live.is_empty() {
            return None;
        }
        let cluster = t.0.live.get(&format!("{}/{}", path.tenant, path.content_id))?;
        Some(ClusterServers {
            cluster: cluster.clone(),
            servers: t.0.clusters.get(cluster).cloned().unwrap_or_default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_from_the_installed_table_home_first() {
        let l = ControlLookup::default();
        let p = ContentPath::parse("/acme/c/a.mp4").unwrap();
        assert!(l.locate(&p).is_empty(), "nothing fetched yet");
        let mut t = LookupTable::default();
        t.tenants
            .insert("acme".into(), vec!["east".into(), "west".into()]);
        t.clusters
            .insert("east".into(), vec!["127.0.0.1:1".parse().unwrap()]);
        t.clusters.insert("west".into(), vec![]);
        t.etag = "e1".into();
        l.replace(t);
        let found = l.locate(&p);
        assert_eq!(found[0].cluster, "east");
        assert_eq!(found[1].servers.len(), 0, "a cluster with every server down");
        assert_eq!(l.etag().0, "e1");
    }

    #[test]
    fn a_live_stream_goes_to_its_ingest_cluster_and_other_contents_do_not() {
        let l = ControlLookup::default();
        let mut t = LookupTable::default();
        t.tenants.insert("acme".into(), vec!["east".into()]);
        t.clusters
            .insert("ingest".into(), vec!["127.0.0.1:9".parse().unwrap()]);
        t.live.insert("acme/show".into(), "ingest".into());
        l.replace(t);
        let live = l.live(&ContentPath::parse("/acme/show/index.m3u8").unwrap());
        assert_eq!(
            live.map(|c| (c.cluster, c.servers.len())),
            Some(("ingest".into(), 1))
        );
        assert!(l
            .live(&ContentPath::parse("/acme/vod/index.m3u8").unwrap())
            .is_none());
    }
}
