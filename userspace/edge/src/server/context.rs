//! What every connection task of one server shares: the store, the body path, limits,
//! metrics, the idle parker, the miss policy and lookup, the upstream pool, the cache, and the
//! channels to the control agent.

use std::net::SocketAddr;
use std::sync::Arc;

use strata_kernel::body_path::BodyPath;

use super::demand_counter::DemandCounter;
use super::idle_parker::IdleParker;
use super::limits::Limits;
use super::miss_policy::MissPolicy;
use super::steering::{PlayerReport, Steering};
use crate::cache::EdgeCache;
use crate::file_store::FileStore;
use crate::metrics::ServerMetrics;
use crate::name_lookup::NameLookup;
use crate::upstream::pool::UpstreamPool;

/// What every connection task of one server shares.
pub struct ServerContext {
    pub store: FileStore,
    pub body_path: BodyPath,
    pub limits: Limits,
    pub metrics: Arc<ServerMetrics>,
    /// Holds keep-alive connections idle past `limits.park_after` (None: they keep their task).
    pub parker: Option<Arc<IdleParker>>,
    /// What to do when an asset is not in the store (edge), and where to look for it.
    pub miss: MissPolicy,
    pub lookup: Option<Arc<dyn NameLookup>>,
    pub upstream: Arc<UpstreamPool>,
    /// The edge cache (admission, fills, LRU), when misses are proxied and capacity > 0.
    pub cache: Option<Arc<EdgeCache>>,
    /// Edges under a control plane: per-asset demand for syncd.
    pub demand: Option<Arc<DemandCounter>>,
    /// Edges under a control plane: (asset, storage server) pairs where the server answered
    /// 404 and a replica served the asset, for the control plane to restore.
    pub failed_reads: Option<tokio::sync::mpsc::UnboundedSender<(String, SocketAddr)>>,
    /// Edges under a control plane: the map players are steered by (HLS Content Steering).
    pub steering: Option<Arc<Steering>>,
    /// Edges under a control plane: throughput players reported with their steering requests
    /// (bounded: reports beyond it are dropped, never queued without end).
    pub player_reports: Option<tokio::sync::mpsc::Sender<PlayerReport>>,
    /// Live streams' playlists held in memory (never in the disk cache).
    pub live_playlists: Arc<super::live_playlist::LivePlaylists>,
    /// Edges under a control plane with a region: the director's state table and decision.
    pub director: Option<Arc<crate::director::edge_director::Director>>,
    /// Set once a successor took the listeners over: connections close after their response.
    pub drain: Arc<super::drain::Drain>,
    /// The access log (None: off).
    pub access_log: Option<Arc<crate::access_log::AccessLog>>,
}

/// A context over an empty temporary directory, for unit tests.
#[cfg(test)]
pub(crate) fn test_context() -> ServerContext {
    let dir = std::env::temp_dir().join(format!("strata-ctx-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    ServerContext {
        store: FileStore::open(&dir).expect("temp dir"),
        body_path: BodyPath::Sendfile,
        limits: Limits::default(),
        metrics: ServerMetrics::new(
            "test",
            strata_kernel::body_meter::BodyPathLabel::Sendfile,
            Vec::new(),
        ),
        parker: None,
        miss: MissPolicy::Error,
        lookup: None,
        upstream: Arc::new(UpstreamPool::new(Default::default())),
        cache: None,
        demand: None,
        failed_reads: None,
        steering: None,
        player_reports: None,
        live_playlists: Arc::new(super::live_playlist::LivePlaylists::new(
            std::time::Duration::from_secs(1),
        )),
        director: None,
        drain: Default::default(),
        access_log: None,
    }
}
