//! Name lookup: which storage servers hold a content, home cluster first, then replicas.
//!
//! [`NameLookup`] is the seam the control plane will fill with a networked implementation;
//! [`StaticLookup`] answers from the edge's configuration (`[lookup]` or `--cluster` and
//! `--tenant` flags): tenants map to a home cluster and replica clusters, clusters to servers.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use strata_http::content_path::ContentPath;

/// One cluster's servers, in the order to try them (after round-robin rotation).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterServers {
    pub cluster: String,
    pub servers: Vec<SocketAddr>,
}

/// Maps a content URL to the clusters that hold it, home first.
pub trait NameLookup: Send + Sync {
    /// The clusters holding `path`, home first; empty if the tenant is unknown.
    fn locate(&self, path: &ContentPath) -> Vec<ClusterServers>;

    /// The tenant's valid signing keys when its content needs a signed URL; None: public.
    fn signing_keys(&self, _tenant: &str) -> Option<Vec<Vec<u8>>> {
        None
    }

    /// The tenant's delivery policy (Cache-Control overrides, CORS origins, signed); None: the
    /// defaults.
    fn delivery(&self, _tenant: &str) -> Option<std::sync::Arc<crate::delivery_policy::DeliveryPolicy>> {
        None
    }

    /// The ingest cluster serving `path`'s stream while it is live; None for on-demand content.
    fn live(&self, _path: &ContentPath) -> Option<ClusterServers> {
        None
    }
}

/// The static lookup's configuration.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StaticLookupConfig {
    /// Cluster name → its storage servers.
    pub clusters: BTreeMap<String, Vec<SocketAddr>>,
    /// Tenant → [home cluster, replica clusters...].
    pub tenants: BTreeMap<String, Vec<String>>,
}

/// Why a lookup configuration is unusable.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum LookupError {
    #[error("{flag} {value:?}: expected {expected}")]
    Syntax {
        flag: &'static str,
        value: String,
        expected: &'static str,
    },
    #[error("tenant {tenant} names cluster {cluster}, which is not defined (--cluster {cluster}=ADDR)")]
    UnknownCluster { tenant: String, cluster: String },
    #[error("cluster {0} has no servers")]
    EmptyCluster(String),
}

impl StaticLookupConfig {
    /// Adds `NAME=ADDR[,ADDR...]` (the `--cluster` flag).
    pub fn add_cluster_flag(&mut self, value: &str) -> Result<(), LookupError> {
        let bad = || LookupError::Syntax {
            flag: "--cluster",
            value: value.into(),
            expected: "NAME=ADDR[,ADDR...]",
        };
        let (name, addrs) = value.split_once('=').ok_or_else(bad)?;
        let servers: Result<Vec<SocketAddr>, _> = addrs.split(',').map(|a| a.trim().parse()).collect();
        let servers = servers.map_err(|_| bad())?;
        if name.trim().is_empty() || servers.is_empty() {
            return Err(bad());
        }
        self.clusters.insert(name.trim().to_string(), servers);
        Ok(())
    }

    /// Adds `TENANT=HOME[,REPLICA...]` (the `--tenant` flag).
    pub fn add_tenant_flag(&mut self, value: &str) -> Result<(), LookupError> {
        let bad = || LookupError::Syntax {
            flag: "--tenant",
            value: value.into(),
            expected: "TENANT=HOME[,REPLICA...]",
        };
        let (tenant, clusters) = value.split_once('=').ok_or_else(bad)?;
        let clusters: Vec<String> = clusters.split(',').map(|c| c.trim().to_string()).collect();
        if tenant.trim().is_empty() || clusters.iter().any(String::is_empty) {
            return Err(bad());
        }
        self.tenants.insert(tenant.trim().to_string(), clusters);
        Ok(())
    }

    /// Checks that every tenant's clusters exist and have servers.
    pub fn validate(&self) -> Result<(), LookupError> {
        for (name, servers) in &self.clusters {
            if servers.is_empty() {
                return Err(LookupError::EmptyCluster(name.clone()));
            }
        }
        for (tenant, clusters) in &self.tenants {
            for cluster in clusters {
                if !self.clusters.contains_key(cluster) {
                    return Err(LookupError::UnknownCluster {
                        tenant: tenant.clone(),
                        cluster: cluster.clone(),
                    });
                }
            }
        }
        Ok(())
    }

    /// Every configured server (for the upstream telemetry filter).
    pub fn all_servers(&self) -> Vec<SocketAddr> {
        self.clusters.values().flatten().copied().collect()
    }
}

/// The name lookup from configuration.
#[derive(Clone, Debug)]
pub struct StaticLookup {
    config: StaticLookupConfig,
}

impl StaticLookup {
    pub fn new(config: StaticLookupConfig) -> Result<StaticLookup, LookupError> {
        config.validate()?;
        Ok(StaticLookup { config })
    }
}

impl NameLookup for StaticLookup {
    fn locate(&self, path: &ContentPath) -> Vec<ClusterServers> {
        let Some(clusters) = self.config.tenants.get(&path.tenant) else {
            return Vec::new();
        };
        clusters
            .iter()
            .filter_map(|c| {
                let servers = self.config.clusters.get(c)?;
                Some(ClusterServers {
                    cluster: c.clone(),
                    servers: servers.clone(),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_build_a_lookup_home_first() {
        let mut c = StaticLookupConfig::default();
        c.add_cluster_flag("east=127.0.0.1:1,127.0.0.1:2").unwrap();
        c.add_cluster_flag("west=127.0.0.1:3").unwrap();
        c.add_tenant_flag("acme=east,west").unwrap();
        let l = StaticLookup::new(c).unwrap();
        let found = l.locate(&ContentPath::parse("/acme/c/a.mp4").unwrap());
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].cluster, "east");
        assert_eq!(found[0].servers.len(), 2);
        assert!(l
            .locate(&ContentPath::parse("/other/c/a.mp4").unwrap())
            .is_empty());
    }

    #[test]
    fn bad_flags_and_dangling_clusters_are_errors() {
        let mut c = StaticLookupConfig::default();
        assert!(c.add_cluster_flag("east").is_err());
        assert!(c.add_cluster_flag("east=notanaddr").is_err());
        assert!(c.add_tenant_flag("acme=").is_err());
        c.add_tenant_flag("acme=nowhere").unwrap();
        assert!(matches!(
            StaticLookup::new(c),
            Err(LookupError::UnknownCluster { .. })
        ));
    }
}
