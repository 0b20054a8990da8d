//! The control plane (`strata control serve`): the registry of tiers, clusters, servers, tenants
//! and content behind an etcd-shaped seam ([`registry::RegistryStore`], embedded ACID backend in
//! [`embedded_store`]), its `/v1/` API ([`api`]), server liveness by heartbeat leases
//! ([`servers`]), ingest sessions and the durable work queue ([`staging`], [`work_queue`]) worked
//! by the [`ingestor`] through [`placement`], restores from the archive ([`repair`]), and syncd
//! ([`syncd`]), which keeps each edge's hot working set on it. Several instances may share one
//! etcd registry: [`leader`] elects the one that runs the ingestor.

pub mod api;
pub mod api_common;
pub mod api_error;
pub mod contents;
pub mod control_metrics;
pub mod dashboard;
pub mod delivery;
pub mod delivery_api;
pub mod embedded_store;
mod etcd_compaction;
mod etcd_shared;
pub mod etcd_store;
#[cfg(test)]
mod etcd_store_tests;
mod etcd_watch;
pub mod ingestor;
pub mod jobs;
pub mod leader;
pub mod live_board;
pub mod map;
pub mod map_api;
pub mod names;
pub mod placement;
pub mod plane;
pub mod regions;
pub mod registry;
pub mod registry_url;
pub mod repair;
pub mod servers;
pub mod signing;
pub mod signing_api;
pub mod staging;
pub mod state_table;
pub mod status_report;
pub mod syncd;
pub mod tenant_record;
pub mod tenants;
pub mod tokens;
pub mod work_queue;
