//! The control plane (`strata control`): the registry of tiers, clusters, servers, tenants and
//! content, and what runs on it. Built so far: the registry seam ([`registry::RegistryStore`],
//! etcd-shaped: revisions, guarded commits, leases, watches) and its embedded ACID backend
//! ([`embedded_store::EmbeddedStore`], a redb file in the data directory); tenants with a fixed
//! home cluster and their rules, and storage/archive clusters ([`tenants::TenantBook`]); hashed
//! bearer tokens with operator, tenant and service roles ([`tokens::TokenBook`]).

pub mod api;
pub mod api_error;
pub mod contents;
pub mod control_metrics;
pub mod embedded_store;
pub mod http_client;
pub mod ingestor;
pub mod names;
pub mod placement;
pub mod plane;
pub mod registry;
pub mod repair;
pub mod servers;
pub mod staging;
pub mod status_report;
pub mod syncd;
pub mod tenants;
pub mod tokens;
pub mod work_queue;
