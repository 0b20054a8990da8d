//! The command line of the control plane: `strata control serve` and the operator's commands
//! (status, clusters, tenants, tokens, contents: where, hot, evict, repair), and
//! `strata ingest`. Every client command takes `--control URL` and a token (`--token`,
//! `--token-file`, or STRATA_TOKEN / STRATA_TOKEN_FILE).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};
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
    Serve(Box<ServeControlArgs>),
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
    /// A signed URL path for a tenant whose access is `signed` (see `tenant access`).
    Sign {
        /// The path to sign, /TENANT/CONTENT/ASSET.
        path: String,
        /// How long the URL stays valid.
        #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
        ttl: Duration,
        /// Sign this prefix instead (HLS: the playlist's directory, e.g. /acme/show/), so
        /// the same query admits every segment below it.
        #[arg(long)]
        prefix: Option<String>,
        /// Only this client address may use it.
        #[arg(long)]
        ip: Option<std::net::IpAddr>,
        /// Print the whole URL on this edge base, e.g. http://127.0.0.1:8080.
        #[arg(long)]
        base: Option<String>,
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
    /// Who may fetch the tenant's content: public, or signed URLs only (shows it without one).
    Access {
        name: String,
        #[arg(value_parser = ["public", "signed"])]
        access: Option<String>,
    },
    /// Make a new signing key (printed once, for the tenant's own URL signer); the previous
    /// key stays valid, so URLs signed before keep working.
    Keys {
        name: String,
    },
    /// Delivery settings: Cache-Control per kind of response and the origins whose pages may
    /// read the content (CORS). Shows them when no flag is given; `default` resets a value.
    Delivery {
        name: String,
        /// Cache-Control of on-demand assets and live segments
        /// [default: public, max-age=31536000, immutable].
        #[arg(long)]
        cache_control_vod: Option<String>,
        /// Cache-Control of live playlists [default: public, max-age=<edge playlist TTL>].
        #[arg(long)]
        cache_control_live_playlist: Option<String>,
        /// Cache-Control of 404 and 410 answers [default: public, max-age=10].
        #[arg(long)]
        cache_control_error: Option<String>,
        /// An origin whose pages may read the content, e.g. https://player.example.com
        /// (repeatable; replaces the list).
        #[arg(long = "cors-origin")]
        cors_origins: Vec<String>,
        /// Let pages of any origin read the content again (the default).
        #[arg(long, conflicts_with = "cors_origins")]
        cors_any: bool,
    },
}

/// `strata control serve`: flags over the `--config` file over the defaults.
#[derive(Debug, Args, Clone)]
pub struct ServeControlArgs {
    /// TOML configuration file (every key optional; `[registry] url`, `[map]`, `[map.weights]`).
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// Print the resulting configuration as TOML and exit.
    #[arg(long)]
    pub print_config: bool,
    /// Registry, staging and (by default) archive directory [default: /var/lib/strata/control].
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// The registry on an etcd v3 cluster: etcd://HOST:PORT[,HOST:PORT...][/PREFIX] (keys
    /// under PREFIX, so deployments can share a cluster) [default: a redb file in DATA_DIR].
    #[arg(long, value_parser = EtcdTarget::parse)]
    pub registry: Option<EtcdTarget>,
    /// This instance's name in the leader election among control planes on one registry
    /// [default: host name and process id].
    #[arg(long)]
    pub instance: Option<String>,
    /// The leader's lease: when the leader dies another instance takes over within this long
    /// [default: 5s].
    #[arg(long, value_parser = humantime::parse_duration)]
    pub leader_ttl: Option<Duration>,
    /// The archive tier's directory [default: DATA_DIR/archive].
    #[arg(long)]
    pub archive_dir: Option<PathBuf>,
    /// API listener [default: 127.0.0.1:9090].
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// A server is down after this long without a heartbeat [default: 5s].
    #[arg(long, value_parser = humantime::parse_duration)]
    pub server_ttl: Option<Duration>,
    /// syncd: half-life of an asset's demand score [default: 60s].
    #[arg(long, value_parser = humantime::parse_duration)]
    pub demand_half_life: Option<Duration>,
    /// syncd: recent requests before an asset is pushed to an edge [default: 2].
    #[arg(long)]
    pub push_min_requests: Option<f64>,
    /// Network map: time between two solves [default: 10s].
    #[arg(long, value_parser = humantime::parse_duration)]
    pub map_interval: Option<Duration>,
    /// Network map: candidate regions per client block (the cheapest usable ones) [default: 5].
    #[arg(long)]
    pub map_candidates: Option<usize>,
    /// Network map: load one DNS query per interval stands for, bits/s [default: 2000000].
    #[arg(long)]
    pub map_load_per_query_bps: Option<u64>,
    /// Network map: share of a measurement kept from one solve to the next (0..1) [default: 0.5].
    #[arg(long)]
    pub map_keep: Option<f64>,
    /// Cost weight per millisecond of RTT a region's edges measured to a block [default: 1].
    #[arg(long)]
    pub cost_rtt_ms: Option<f64>,
    /// Cost weight per percent of bytes retransmitted to a block [default: 20].
    #[arg(long)]
    pub cost_loss_percent: Option<f64>,
    /// Cost weight per millisecond a client reported for one MiB from a region [default: 0.1].
    #[arg(long)]
    pub cost_client_ms_per_mib: Option<f64>,
    /// Cost weight per percent of a client's fetches from a region that failed [default: 5].
    #[arg(long)]
    pub cost_client_error_percent: Option<f64>,
    /// RTT assumed for a region that measured nothing to a block, milliseconds [default: 100].
    #[arg(long)]
    pub cost_unmeasured_rtt_ms: Option<f64>,
    /// Status page: time between two samples of the edges' metrics [default: 10s].
    #[arg(long, value_parser = humantime::parse_duration)]
    pub dashboard_every: Option<Duration>,
}

/// Sets `target` to the flag's value when the flag was given.
fn set<T: Clone>(target: &mut T, flag: &Option<T>) {
    if let Some(v) = flag {
        *target = v.clone();
    }
}

impl ServeControlArgs {
    /// The control plane's settings: defaults, then the `--config` file, then these flags.
    pub fn settings(&self) -> Result<ControlSettings, crate::config::ConfigError> {
        let mut s = match &self.config {
            Some(path) => crate::config::load(path, ControlSettings::default())?,
            None => ControlSettings::default(),
        };
        set(&mut s.data_dir, &self.data_dir);
        if self.registry.is_some() {
            s.registry.url = self.registry.clone();
        }
        if self.instance.is_some() {
            s.instance = self.instance.clone();
        }
        set(&mut s.leader_ttl, &self.leader_ttl);
        if self.archive_dir.is_some() {
            s.archive_dir = self.archive_dir.clone();
        }
        set(&mut s.listen, &self.listen);
        set(&mut s.server_ttl, &self.server_ttl);
        set(&mut s.demand_half_life, &self.demand_half_life);
        set(&mut s.push_min_requests, &self.push_min_requests);
        set(&mut s.dashboard_every, &self.dashboard_every);
        let map = &mut s.map;
        set(&mut map.interval, &self.map_interval);
        set(&mut map.candidates, &self.map_candidates);
        set(&mut map.load_per_query_bps, &self.map_load_per_query_bps);
        set(&mut map.keep, &self.map_keep);
        map.keep = map.keep.clamp(0.0, 1.0);
        let w = &mut map.weights;
        set(&mut w.rtt_ms, &self.cost_rtt_ms);
        set(&mut w.loss_percent, &self.cost_loss_percent);
        set(&mut w.client_ms_per_mib, &self.cost_client_ms_per_mib);
        set(&mut w.client_error_percent, &self.cost_client_error_percent);
        set(&mut w.unmeasured_rtt_ms, &self.cost_unmeasured_rtt_ms);
        Ok(s)
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Serve {
        #[command(flatten)]
        args: ServeControlArgs,
    }

    fn settings(file: &str, flags: &[&str]) -> Result<ControlSettings, crate::config::ConfigError> {
        let dir = std::env::temp_dir().join(format!("strata-control-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = dir.join(format!("{seq}.toml"));
        std::fs::write(&path, file).expect("write config");
        let mut argv = vec!["serve", "--config", path.to_str().expect("utf-8")];
        argv.extend_from_slice(flags);
        Serve::parse_from(argv).args.settings()
    }

    #[test]
    fn the_registry_and_map_come_from_the_file_and_flags_override_it() {
        let file = "listen = \"0.0.0.0:9191\"\n[registry]\nurl = \"etcd://10.0.0.1:2379/strata\"\n[map]\ninterval = \"4s\"\n";
        let s = settings(file, &[]).expect("valid config");
        assert_eq!(s.listen.to_string(), "0.0.0.0:9191");
        assert_eq!(
            s.registry.url.as_ref().map(ToString::to_string).as_deref(),
            Some("etcd://10.0.0.1:2379/strata/")
        );
        assert_eq!(s.map.interval, Duration::from_secs(4));
        assert_eq!(s.leader_ttl, Duration::from_secs(5), "defaults fill the rest");
        let s = settings(
            file,
            &["--registry", "etcd://10.0.0.2:2379", "--map-interval", "2s"],
        )
        .expect("valid");
        assert_eq!(s.registry.url.expect("etcd").endpoints, vec!["10.0.0.2:2379"]);
        assert_eq!(s.map.interval, Duration::from_secs(2));
    }

    #[test]
    fn a_registry_that_is_not_etcd_and_an_unknown_key_are_errors_naming_them() {
        let e = settings("[registry]\nurl = \"http://x\"\n", &[]).expect_err("not etcd");
        assert!(e.to_string().contains("http://x"), "{e}");
        let e = settings("lisen = 3\n", &[]).expect_err("unknown key");
        assert!(e.to_string().contains("lisen"), "{e}");
    }
}
