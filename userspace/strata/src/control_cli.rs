//! The command line of the control plane: `strata control serve` and the operator's commands
//! (status, clusters, tenants, tokens, contents: where, hot, evict, repair), and
//! `strata ingest`. Every client command takes `--control URL` and a token (`--token`,
//! `--token-file`, or STRATA_TOKEN / STRATA_TOKEN_FILE).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};
use strata_control::map::settings::{CostWeights, MapSettings};
use strata_control::plane::ControlSettings;
use strata_control::registry_url::EtcdTarget;

use strata_wire::client::{read_token_file, ClientError, ServiceClient};

/// Where the control plane is and who is asking.
#[derive(Debug, Args, Clone)]
pub struct ClientArgs {
    /// The control plane's API, or several instances' separated by commas (failover).
    #[arg(
        long = "control",
        env = "STRATA_CONTROL",
        default_value = "http://127.0.0.1:9090",
        global = true
    )]
    pub url: String,
    /// Bearer token.
    #[arg(long, env = "STRATA_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
    /// File holding the bearer token (e.g. the control plane's operator.token).
    #[arg(long, env = "STRATA_TOKEN_FILE", global = true)]
    pub token_file: Option<PathBuf>,
}

impl ClientArgs {
    /// A client with the token from `--token` or `--token-file` (none: requests go without
    /// one and the control plane answers 401).
    pub fn client(&self, timeout: Duration) -> Result<ServiceClient, ClientError> {
        let token = match (&self.token, &self.token_file) {
            (Some(t), _) => t.clone(),
            (None, Some(f)) => read_token_file(f)?,
            (None, None) => String::new(),
        };
        Ok(ServiceClient::new(&self.url, &token, timeout))
    }
}

#[derive(Debug, Args)]
pub struct ControlArgs {
    #[command(subcommand)]
    pub command: ControlCommand,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Subcommand)]
pub enum ControlCommand {
    /// Run the control plane (registry, API, ingestor, syncd).
    Serve(ServeControlArgs),
    /// Tiers, servers up/down, tenants, hot content, edge cache tables, queued work.
    Status {
        /// Print the raw JSON.
        #[arg(long)]
        json: bool,
    },
    /// Register a storage or archive cluster.
    Cluster {
        name: String,
        #[arg(long, default_value = "storage")]
        tier: String,
    },
    /// Tenants: create, show, change rules.
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Issue a bearer token (shown once; only its hash is stored).
    Token {
        /// operator, tenant or service.
        #[arg(long)]
        role: String,
        /// With --role tenant.
        #[arg(long)]
        tenant: Option<String>,
        /// With --role service: the server's registered name.
        #[arg(long)]
        server: Option<String>,
    },
    /// A tenant's contents.
    Contents { tenant: String },
    /// Where a content lives: servers, archive, edges; its assets and queued work.
    Where { tenant: String, content: String },
    /// Push a content to the tenant's number of hot edges.
    Hot { tenant: String, content: String },
    /// Drop a content from every edge cache.
    Evict { tenant: String, content: String },
    /// Check every copy of a content and restore lost ones from the archive.
    Repair { tenant: String, content: String },
    /// syncd's ranking and each edge's wanted set.
    HotList,
    /// Regions of edges: network capacity and base cost.
    #[command(subcommand)]
    Region(RegionCommand),
    /// Client blocks the network map covers even before traffic from them is seen.
    #[command(subcommand)]
    Block(BlockCommand),
    /// The network map: each client block, its load and its regions in order.
    Map {
        /// Print the raw JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum RegionCommand {
    /// Create or change a region.
    Set {
        name: String,
        /// The region's network capacity toward viewers, bits/s (default: its servers' sum).
        #[arg(long)]
        capacity_bps: Option<u64>,
        /// Added to every cost of the region.
        #[arg(long, default_value_t = 0)]
        base_cost: u64,
    },
    List,
}

#[derive(Debug, Subcommand)]
pub enum BlockCommand {
    /// Add a block, e.g. 198.51.100.0/24.
    Add {
        prefix: String,
    },
    /// Remove a configured block.
    Del {
        prefix: String,
    },
    List,
}

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Create a tenant with its fixed home cluster and rules.
    Create {
        name: String,
        #[arg(long)]
        home: String,
        /// Replica cluster (repeatable).
        #[arg(long = "replica")]
        replicas: Vec<String>,
        /// Quota in bytes (0: none).
        #[arg(long, default_value_t = 0)]
        quota: u64,
        /// Edges hot content is pushed to at ingest.
        #[arg(long, default_value_t = 1)]
        hot_edges: u32,
        /// Idle time before a finished live stream is archived.
        #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
        idle_archive: Duration,
    },
    Show {
        name: String,
    },
    /// Change rules (the home cluster cannot change).
    Set {
        name: String,
        #[arg(long)]
        home: Option<String>,
        #[arg(long = "replica")]
        replicas: Option<Vec<String>>,
        #[arg(long)]
        quota: Option<u64>,
        #[arg(long)]
        hot_edges: Option<u32>,
    },
    List,
}

#[derive(Debug, Args, Clone)]
pub struct ServeControlArgs {
    /// Registry, staging and (by default) archive directory.
    #[arg(long, default_value = "/var/lib/strata/control")]
    pub data_dir: PathBuf,
    /// The registry on an etcd v3 cluster: etcd://HOST:PORT[,HOST:PORT...][/PREFIX] (keys
    /// under PREFIX, so deployments can share a cluster) [default: a redb file in DATA_DIR].
    #[arg(long, value_parser = EtcdTarget::parse)]
    pub registry: Option<EtcdTarget>,
    /// This instance's name in the leader election among control planes on one registry
    /// [default: host name and process id].
    #[arg(long)]
    pub instance: Option<String>,
    /// The leader's lease: when the leader dies another instance takes over within this long.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub leader_ttl: Duration,
    /// The archive tier's directory [default: DATA_DIR/archive].
    #[arg(long)]
    pub archive_dir: Option<PathBuf>,
    /// API listener.
    #[arg(long, default_value = "127.0.0.1:9090")]
    pub listen: SocketAddr,
    /// A server is down after this long without a heartbeat.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub server_ttl: Duration,
    /// syncd: half-life of an asset's demand score.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub demand_half_life: Duration,
    /// syncd: recent requests before an asset is pushed to an edge.
    #[arg(long, default_value_t = 2.0)]
    pub push_min_requests: f64,
    /// Network map: time between two solves.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub map_interval: Duration,
    /// Network map: candidate regions per client block (the cheapest usable ones).
    #[arg(long, default_value_t = 5)]
    pub map_candidates: usize,
    /// Network map: load one DNS query per interval stands for, bits/s.
    #[arg(long, default_value_t = 2_000_000)]
    pub map_load_per_query_bps: u64,
    /// Network map: share of a measurement kept from one solve to the next (0..1).
    #[arg(long, default_value_t = 0.5)]
    pub map_keep: f64,
    /// Cost weight per millisecond of RTT a region's edges measured to a block.
    #[arg(long, default_value_t = 1.0)]
    pub cost_rtt_ms: f64,
    /// Cost weight per percent of bytes retransmitted to a block.
    #[arg(long, default_value_t = 20.0)]
    pub cost_loss_percent: f64,
    /// Cost weight per millisecond a client reported for one MiB from a region.
    #[arg(long, default_value_t = 0.1)]
    pub cost_client_ms_per_mib: f64,
    /// Cost weight per percent of a client's fetches from a region that failed.
    #[arg(long, default_value_t = 5.0)]
    pub cost_client_error_percent: f64,
    /// RTT assumed for a region that measured nothing to a block, milliseconds.
    #[arg(long, default_value_t = 100.0)]
    pub cost_unmeasured_rtt_ms: f64,
}

impl ServeControlArgs {
    /// The control plane's settings from these flags.
    pub fn settings(&self) -> ControlSettings {
        ControlSettings {
            data_dir: self.data_dir.clone(),
            registry: self.registry.clone(),
            instance: self.instance.clone(),
            leader_ttl: self.leader_ttl,
            archive_dir: self.archive_dir.clone(),
            server_ttl: self.server_ttl,
            demand_half_life: self.demand_half_life,
            push_min_requests: self.push_min_requests,
            map: MapSettings {
                interval: self.map_interval,
                candidates: self.map_candidates,
                load_per_query_bps: self.map_load_per_query_bps,
                keep: self.map_keep.clamp(0.0, 1.0),
                weights: CostWeights {
                    rtt_ms: self.cost_rtt_ms,
                    loss_percent: self.cost_loss_percent,
                    client_ms_per_mib: self.cost_client_ms_per_mib,
                    client_error_percent: self.cost_client_error_percent,
                    unmeasured_rtt_ms: self.cost_unmeasured_rtt_ms,
                },
            },
        }
    }
}

#[derive(Debug, Args)]
pub struct IngestArgs {
    #[arg(long)]
    pub tenant: String,
    #[arg(long)]
    pub content: String,
    /// Push to the tenant's hot edges at ingest.
    #[arg(long)]
    pub hot: bool,
    /// Return once uploaded and queued, without waiting for placement.
    #[arg(long)]
    pub no_wait: bool,
    /// No progress bars or progress lines (for scripts); the outcome is logged.
    #[arg(long)]
    pub quiet: bool,
    /// The directory whose files are the content's assets.
    pub dir: PathBuf,
    #[command(flatten)]
    pub client: ClientArgs,
}
