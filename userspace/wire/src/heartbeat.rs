//! What a storage server or edge tells the control plane every heartbeat (`POST /v1/heartbeat`)
//! and what it hears back: its record, an edge's cache table and per-asset demand, the lookup
//! table's etag, the placement key, the assets to hold and to drop.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// What a server does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServerRole {
    Storage,
    Edge,
    /// A live ingest server (`strata live`): `cluster` is its ingest cluster.
    Live,
}

/// A registered server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerRecord {
    pub name: String,
    pub role: ServerRole,
    /// Storage servers: the cluster they belong to.
    #[serde(default)]
    pub cluster: Option<String>,
    /// Where viewers (edges) or edges (storage) connect.
    pub addr: SocketAddr,
    /// The admin listener (metrics; on storage servers also placement).
    pub admin_addr: SocketAddr,
    /// Edges: the region they serve viewers in (the network map's unit).
    #[serde(default)]
    pub region: Option<String>,
    /// Edges: the bits per second this server can send to viewers (the map's per-server
    /// capacity); 0 when unknown.
    #[serde(default)]
    pub capacity_bps: u64,
}

/// One asset an edge reports: requests and bytes since its last report.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssetDemand {
    /// `tenant/content/asset`.
    pub path: String,
    pub requests: u64,
    pub bytes: u64,
}

/// An edge's cache table and load.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EdgeReport {
    pub capacity_bytes: u64,
    pub used_bytes: u64,
    /// Every file the cache holds: `tenant/content/asset` and its size.
    pub held: Vec<(String, u64)>,
    pub demand: Vec<AssetDemand>,
    pub open_connections: u64,
    pub hits: u64,
    pub misses: u64,
    /// Per client block, what the edge's connection telemetry measured (running totals since
    /// the edge started; the control plane takes differences between heartbeats).
    #[serde(default)]
    pub blocks: Vec<BlockTelemetry>,
    /// The director's state row (cache contents summary, load); the version of the region
    /// table this edge has (the reply carries the table when it differs).
    #[serde(default)]
    pub state: Option<crate::state_table::StateRow>,
    #[serde(default)]
    pub state_version: u64,
}

/// One client /24 (/48) as an edge's sock_ops telemetry saw it: totals over closed connections.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockTelemetry {
    /// `a.b.c.0/24` or `x:y:z::/48`.
    pub prefix: String,
    pub connections: u64,
    pub bytes_acked: u64,
    pub retransmits: u64,
    /// Sum of the smoothed RTT at close over `connections`, microseconds.
    pub srtt_us_sum: u64,
}

/// A heartbeat (`POST /v1/heartbeat`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    pub server: ServerRecord,
    #[serde(default)]
    pub edge: Option<EdgeReport>,
    /// Live ingest servers: the streams they hold.
    #[serde(default)]
    pub live: Option<crate::live::LiveReport>,
}

/// What the control plane answers a heartbeat with.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeartbeatReply {
    /// Changes when the name lookup changes: fetch `/v1/lookup` again.
    pub lookup_etag: String,
    /// Storage servers: the key placement requests carry (Bearer).
    #[serde(default)]
    pub placement_key: Option<String>,
    /// Edges: assets to hold (`tenant/content/asset`, size), most wanted first.
    #[serde(default)]
    pub desired: Vec<(String, u64)>,
    /// Edges: assets to drop now.
    #[serde(default)]
    pub evict: Vec<String>,
    /// The network map's version: an edge steering players fetches `/v1/map` when it changes.
    #[serde(default)]
    pub map_version: u64,
    /// Edges: the region's state table, when it differs from the version the edge reported.
    #[serde(default)]
    pub region_table: Option<crate::state_table::RegionTable>,
}
