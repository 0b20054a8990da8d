//! The name lookup edges fetch from the control plane (`GET /v1/lookup`): which clusters hold
//! each tenant's content, which storage servers of each cluster are up, and which streams are
//! live on which ingest cluster.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The name lookup edges fetch (`GET /v1/lookup`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LookupTable {
    pub etag: String,
    /// Tenant → [home cluster, replica clusters…].
    pub tenants: BTreeMap<String, Vec<String>>,
    /// Cluster → the addresses of its storage servers that are up.
    pub clusters: BTreeMap<String, Vec<std::net::SocketAddr>>,
    /// Tenants whose content needs a signed URL → their valid signing keys (hex, newest first).
    #[serde(default)]
    pub signed: BTreeMap<String, Vec<String>>,
    /// Live streams (`tenant/stream`) → the ingest cluster serving them; while a stream is
    /// here edges fetch it from that cluster (its servers are in `clusters`), not from storage.
    #[serde(default)]
    pub live: BTreeMap<String, String>,
    /// Tenants with delivery settings (Cache-Control overrides, CORS origins) → them; tenants
    /// not listed get the edge's defaults.
    #[serde(default)]
    pub delivery: BTreeMap<String, crate::delivery::TenantDelivery>,
}
