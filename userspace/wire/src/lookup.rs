//! The name lookup edges fetch from the control plane (`GET /v1/lookup`): which clusters hold
//! each tenant's content, and which storage servers of each cluster are up.

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
}
