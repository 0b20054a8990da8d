//! The control agent of a storage server or edge: registers with the control plane and sends a
//! heartbeat every `[control] heartbeat`. A storage server learns the placement key from the
//! reply (its admin listener then accepts placement). An edge reports its cache table and
//! per-asset demand, refreshes its name lookup when the reply's etag changes or the table is
//! older than the TTL, fills the assets syncd wants it to hold (least-recently-used files make
//! room), drops the ones an operator evicted, and reports storage servers that lost a file.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};

use crate::cache::fill::spawn_fill;
use crate::cache::EdgeCache;
use crate::control_lookup::ControlLookup;
use crate::metrics::ServerMetrics;
use crate::name_lookup::NameLookup;
use crate::upstream::pool::UpstreamPool;
use strata_http::content_path::ContentPath;
use strata_kernel::conn_telemetry::ConnTelemetry;
use strata_wire::client::{read_token_file, ServiceClient};
use strata_wire::heartbeat::{
    BlockTelemetry, EdgeReport, Heartbeat, HeartbeatReply, ServerRecord, ServerRole,
};
use strata_wire::lookup::LookupTable;
use strata_wire::map_view::MapView;
use strata_wire::network_map::{ClientReport, NetworkMap, ServerTiming};

use super::demand_counter::DemandCounter;
use super::steering::{PlayerReport, Steering};

/// Pushed fills started per heartbeat at most.
const PUSHES_PER_BEAT: usize = 4;

/// A storage server's placement key, once the control plane told it.
pub type PlacementKey = Arc<RwLock<Option<String>>>;

/// What the agent works with.
pub struct AgentParts {
    pub role: ServerRole,
    pub local_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub placement_key: PlacementKey,
    pub lookup: Option<Arc<ControlLookup>>,
    pub cache: Option<Arc<EdgeCache>>,
    pub pool: Arc<UpstreamPool>,
    pub demand: Option<Arc<DemandCounter>>,
    pub metrics: Arc<ServerMetrics>,
    /// Edges: the connection telemetry whose per-block figures feed the network map.
    pub telemetry: Option<Arc<ConnTelemetry>>,
    /// Edges: the map players are steered by, refreshed when the control plane's changes.
    pub steering: Option<Arc<Steering>>,
    /// Edges: throughput players reported, forwarded to `/v1/reports`.
    pub player_reports: Option<mpsc::Receiver<PlayerReport>>,
    /// Edges: storage servers that answered 404 for an asset a replica then served.
    pub failed_reads: Option<mpsc::UnboundedReceiver<(String, SocketAddr)>>,
    /// Edges with a region: the director, whose row goes out and whose table comes back.
    pub director: Option<Arc<crate::director::edge_director::Director>>,
    /// The connection limit (the load factor's connection share).
    pub max_connections: u64,
}

/// `[control]`: how a storage server or edge joins the control plane.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ControlLink {
    /// The control plane's API, e.g. `http://10.0.0.1:9090` (empty: run without one).
    pub url: String,
    /// File holding this server's service token.
    pub token_file: PathBuf,
    /// This server's registered name (unique; defaults to the host name).
    pub name: String,
    /// Storage servers: the cluster they belong to.
    pub cluster: String,
    /// Edges: the region they serve viewers in (the network map routes clients to regions).
    pub region: String,
    /// Edges: bits per second this server can send to viewers (the map's per-server capacity).
    pub capacity_bps: u64,
    /// Time between heartbeats.
    #[serde(with = "humantime_serde")]
    pub heartbeat: Duration,
    /// Edges: longest time a name-lookup answer is used before it is fetched again.
    #[serde(with = "humantime_serde")]
    pub lookup_ttl: Duration,
}

impl Default for ControlLink {
    fn default() -> Self {
        ControlLink {
            url: String::new(),
            token_file: PathBuf::new(),
            name: String::new(),
            cluster: String::new(),
            region: String::new(),
            capacity_bps: 10_000_000_000,
            heartbeat: Duration::from_secs(1),
            lookup_ttl: Duration::from_secs(10),
        }
    }
}

impl ControlLink {
    pub fn enabled(&self) -> bool {
        !self.url.is_empty()
    }
}

/// Reads the service token and makes the client (fails on a missing token file).
pub fn client(link: &ControlLink) -> anyhow::Result<ServiceClient> {
    let token = read_token_file(&link.token_file)?;
    Ok(ServiceClient::new(&link.url, &token, Duration::from_secs(10)))
}

/// Fetches the lookup table once (at start, so the edge's first miss already knows where to go).
pub async fn fetch_lookup(client: &ServiceClient, lookup: &ControlLookup) -> anyhow::Result<()> {
    let c = client.clone();
    let table: LookupTable = tokio::task::spawn_blocking(move || c.get("/v1/lookup")).await??;
    if lookup.etag().0 == table.etag {
        tracing::debug!(etag = %table.etag, "name lookup refetched from the control plane, unchanged");
    } else {
        tracing::info!(tenants = table.tenants.len(), clusters = table.clusters.len(), etag = %table.etag, "name lookup fetched from the control plane");
    }
    lookup.replace(table);
    Ok(())
}

/// Runs the agent until shutdown.
pub async fn run(
    link: ControlLink,
    client: ServiceClient,
    mut parts: AgentParts,
    mut shutdown: watch::Receiver<bool>,
) {
    let record = ServerRecord {
        name: link.name.clone(),
        role: parts.role,
        cluster: (!link.cluster.is_empty()).then(|| link.cluster.clone()),
        addr: parts.local_addr,
        admin_addr: parts.admin_addr,
        region: (!link.region.is_empty()).then(|| link.region.clone()),
        capacity_bps: link.capacity_bps,
    };
    let mut healthy = None;
    let mut tick = tokio::time::interval(link.heartbeat);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failed_reads = parts.failed_reads.take();
    let mut player_reports = parts.player_reports.take();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            Some((path, server)) = async { match failed_reads.as_mut() { Some(rx) => rx.recv().await, None => None } } => {
                report_failed_read(&client, path, server).await;
                continue;
            }
            Some(report) = async { match player_reports.as_mut() { Some(rx) => rx.recv().await, None => None } } => {
                forward_player_report(&client, report).await;
                continue;
            }
            _ = shutdown.changed() => return,
        }
        let heartbeat = Heartbeat {
            server: record.clone(),
            edge: edge_report(&parts, link.capacity_bps),
            live: None,
        };
        let c = client.clone();
        let sent =
            tokio::task::spawn_blocking(move || c.post::<_, HeartbeatReply>("/v1/heartbeat", &heartbeat))
                .await;
        let reply = match sent {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                if healthy != Some(false) {
                    tracing::warn!(control = %client.base(), error = %e, "heartbeat to the control plane failed; retrying every beat");
                }
                healthy = Some(false);
                continue;
            }
            Err(e) => {
                tracing::error!(error = %e, "heartbeat task failed");
                continue;
            }
        };
        if healthy != Some(true) {
            tracing::info!(control = %client.base(), server = %record.name, "registered with the control plane");
        }
        healthy = Some(true);
        if let Some(key) = reply.placement_key.clone() {
            *parts.placement_key.write().unwrap_or_else(|p| p.into_inner()) = Some(key);
        }
        if let Some(lookup) = &parts.lookup {
            let (etag, fetched) = lookup.etag();
            let stale = fetched.is_none_or(|t| t.elapsed() >= link.lookup_ttl);
            if etag != reply.lookup_etag || stale {
                if let Err(e) = fetch_lookup(&client, lookup).await {
                    tracing::warn!(error = %e, "refreshing the name lookup failed; keeping the old table");
                }
            }
        }
        if let (Some(director), Some(table)) = (&parts.director, reply.region_table.clone()) {
            director.replace(table);
        }
        if let Some(cache) = &parts.cache {
            apply_sync(cache, &parts, &reply);
        }
        if let Some(steering) = &parts.steering {
            if steering.view().map.version != reply.map_version {
                let c = client.clone();
                match tokio::task::spawn_blocking(move || c.get::<NetworkMap>("/v1/map")).await {
                    Ok(Ok(map)) => {
                        tracing::debug!(version = map.version, "network map fetched for content steering");
                        steering.replace(MapView::new(map));
                    }
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, "fetching the network map failed; steering by the old one")
                    }
                    Err(e) => tracing::error!(error = %e, "map fetch task failed"),
                }
            }
        }
    }
}

/// Sends a player's reported throughput to the control plane as the client's report.
async fn forward_player_report(client: &ServiceClient, r: PlayerReport) {
    let report = ClientReport {
        client: Some(r.client),
        timings: vec![ServerTiming {
            server: r.server,
            // A second's worth of the reported throughput.
            bytes: r.throughput_bps / 8,
            ms: 1000,
            errors: 0,
        }],
    };
    let c = client.clone();
    let sent =
        tokio::task::spawn_blocking(move || c.post::<_, serde_json::Value>("/v1/reports", &report)).await;
    if let Ok(Err(e)) = sent {
        tracing::debug!(error = %e, "forwarding a player's steering report failed");
    }
}

/// The edge's cache table, load and demand since the last beat.
fn edge_report(parts: &AgentParts, capacity_bps: u64) -> Option<EdgeReport> {
    if parts.role != ServerRole::Edge {
        return None;
    }
    let mut report = EdgeReport {
        open_connections: parts.metrics.open_connections(),
        misses: parts.metrics.misses_total(),
        demand: parts.demand.as_ref().map(|d| d.drain()).unwrap_or_default(),
        ..Default::default()
    };
    if let Some(cache) = &parts.cache {
        let index = cache.index.lock().unwrap_or_else(|p| p.into_inner());
        report.capacity_bytes = cache.settings.capacity;
        report.used_bytes = index.bytes();
        report.held = index.entries();
        report.hits = cache.counters.hits.load(std::sync::atomic::Ordering::Relaxed);
    }
    if let Some(director) = &parts.director {
        let inputs = crate::director::state_row::RowInputs {
            held: &report.held,
            connections: report.open_connections,
            max_connections: parts.max_connections,
            body_bytes: parts.metrics.body_bytes_total(),
            capacity_bps,
        };
        let row = director
            .rows
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .build(&director.settings, &inputs);
        report.state = Some(row);
        report.state_version = director.table().version;
    }
    if let Some(telemetry) = &parts.telemetry {
        match telemetry.prefix_reports() {
            Ok(prefixes) => {
                report.blocks = prefixes
                    .into_iter()
                    .filter(|p| p.kind == "client")
                    .map(|p| BlockTelemetry {
                        prefix: p.prefix,
                        connections: p.connections,
                        bytes_acked: p.bytes_acked,
                        retransmits: p.retransmits,
                        srtt_us_sum: p.srtt_us_sum,
                    })
                    .collect();
            }
            Err(e) => tracing::debug!(error = %e, "reading per-block telemetry failed"),
        }
    }
    Some(report)
}

/// Drops evicted assets and starts fills for wanted ones the cache lacks.
fn apply_sync(cache: &Arc<EdgeCache>, parts: &AgentParts, reply: &HeartbeatReply) {
    for rel in &reply.evict {
        if cache.evict(rel) {
            tracing::info!(asset = %rel, "evicted at the control plane's request");
        }
    }
    let Some(lookup) = &parts.lookup else { return };
    let mut started = 0;
    for (rel, _) in &reply.desired {
        if started == PUSHES_PER_BEAT {
            break;
        }
        if cache
            .index
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(rel)
        {
            continue;
        }
        let Ok(path) = ContentPath::parse(&format!("/{rel}")) else {
            tracing::warn!(asset = %rel, "syncd named an asset that is not a content path");
            continue;
        };
        if !cache
            .admission
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .start_push(rel)
        {
            continue; // a fill is already running
        }
        let servers = parts.pool.order(&lookup.locate(&path));
        tracing::info!(asset = %rel, "syncd wants this asset here: filling");
        let raw = format!(
            "/{}/{}/{}",
            enc(&path.tenant),
            enc(&path.content_id),
            enc(&path.asset)
        );
        spawn_fill(cache.clone(), parts.pool.clone(), path, raw, servers);
        started += 1;
    }
}

/// Characters a path segment keeps unencoded (RFC 3986 unreserved).
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, SEGMENT).to_string()
}

async fn report_failed_read(client: &ServiceClient, path: String, server: SocketAddr) {
    let c = client.clone();
    let body = serde_json::json!({ "path": path, "server": server });
    let sent =
        tokio::task::spawn_blocking(move || c.post::<_, serde_json::Value>("/v1/repairs", &body)).await;
    match sent {
        Ok(Ok(v)) => {
            tracing::warn!(asset = %path, %server, reply = %v, "reported a storage server that lost an asset")
        }
        Ok(Err(e)) => tracing::warn!(asset = %path, %server, error = %e, "reporting a lost asset failed"),
        Err(e) => tracing::error!(error = %e, "report task failed"),
    }
}
