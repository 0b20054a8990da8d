//! The network map the control plane's map maker publishes (`GET /v1/map`) and nameservers
//! answer from: each region with its servers that are up, its capacity and spare capacity; each
//! client block with its load and the regions to try, cheapest first; the load nothing could
//! carry.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// One solved map.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NetworkMap {
    /// Changes whenever the map does.
    pub version: u64,
    pub generated_unix: u64,
    /// Milliseconds the min-cost flow took.
    pub solve_ms: f64,
    pub regions: Vec<MapRegion>,
    /// Blocks, sorted by prefix.
    pub blocks: Vec<MapBlock>,
    /// The order for a client in no known block: regions by base cost and spare capacity.
    pub default_order: Vec<String>,
    /// Load (bits/s) that fits in no region.
    pub unassigned_bps: u64,
}

/// A region of edges.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MapRegion {
    pub name: String,
    /// min(servers up × their capacity, the configured network capacity), bits/s.
    pub capacity_bps: u64,
    /// Capacity the map left unassigned, bits/s (SRV weights follow it).
    pub spare_bps: u64,
    /// Its edges that are up.
    pub servers: Vec<MapServer>,
}

/// An edge that is up.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MapServer {
    pub name: String,
    /// Where viewers connect.
    pub addr: SocketAddr,
    /// Its load now (open client connections), for the (1 + ε) × mean skip.
    pub load: u64,
}

/// A client block and where its load goes.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MapBlock {
    /// `a.b.c.0/24`, `x:y:z::/48`, or an operator-configured prefix of another length.
    pub prefix: String,
    /// Measured load, bits/s.
    pub load_bps: u64,
    /// Regions in the order clients should try them.
    pub regions: Vec<String>,
    /// The cost of each region in `regions`, same order.
    pub costs: Vec<u64>,
    /// The load (bits/s) each region carries for this block.
    pub assigned: Vec<(String, u64)>,
    /// Load (bits/s) of this block that fits nowhere.
    pub unassigned_bps: u64,
}

/// What a nameserver tells the control plane about the queries it answered
/// (`POST /v1/dns/queries`): counts per client block since its last report.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsQueryReport {
    /// The nameserver's name.
    pub server: String,
    pub blocks: Vec<(String, u64)>,
}

/// Timings a client measured and reports without a token (`POST /v1/reports`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientReport {
    pub timings: Vec<ServerTiming>,
    /// The client these timings are of, when a server reports for it (edges forwarding what
    /// players sent with their steering requests; needs a service token). Without it the
    /// report is of the address it came from.
    #[serde(default)]
    pub client: Option<std::net::IpAddr>,
}

/// One server as a client saw it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerTiming {
    /// The server's address (`ip:port`) the client fetched from.
    pub server: SocketAddr,
    pub bytes: u64,
    pub ms: u64,
    #[serde(default)]
    pub errors: u64,
}
