//! The command line: one subcommand per role. Flags override the role's TOML file, which
//! overrides the built-in defaults; `--print-config` shows the result.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use strata_edge::server::kernel_setup::{BodyPathMode, EbpfMode};
use strata_edge::server::miss_policy::MissPolicy;
use strata_edge::settings::ServeConfig;
use strata_kernel::guard_settings::{GuardSettings, XdpModeSetting};
use strata_kernel::xdp_guard::GuardList;

use crate::config::ConfigError;

#[derive(Debug, Parser)]
#[command(
    name = "strata",
    version,
    about = "Kernel-assisted media edge: storage tier, streaming edge, and a one-command POP"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// One server of a storage cluster: serves {root}/{tenant}/{content_id}/{asset}.
    Storage(StorageArgs),
    /// A streaming edge: serves its cache directory zero-copy (io_uring splice).
    Edge(Box<EdgeArgs>),
    /// A whole point of presence on loopback: control plane, two storage clusters, an edge in
    /// each of two regions and a nameserver, with demo content ingested through the real
    /// ingest path.
    Pop(PopArgs),
    /// The control plane: `serve` runs it; the other commands administer a running one.
    Control(crate::control_cli::ControlArgs),
    /// The authoritative nameserver: DNS SRV answers that rank regions for each client from the
    /// control plane's network map.
    Dns(DnsArgs),
    /// The intelligent client: finds servers by DNS SRV, probes them, downloads by adaptive
    /// byte ranges (hedged, switching servers for a clear gain), or simulates a player (--play).
    Fetch(Box<FetchArgs>),
    /// Upload a content's files (a directory) to the control plane, which places them on the
    /// tenant's home cluster, replicas and the archive.
    Ingest(crate::control_cli::IngestArgs),
    /// A live ingest server: encoders publish HLS/CMAF over HTTP (ffmpeg -method PUT); every
    /// segment is recorded on the cluster's shared root while edges fetch it; ended streams are
    /// archived to on-demand storage.
    Live(crate::live_cli::LiveArgs),
    /// Distribution jobs: put a content on many edges, tracked per target (create, status,
    /// watch, cancel, repair, command).
    Job(Box<crate::job_cli::JobArgs>),
}

/// How a storage server or edge joins a control plane; each overrides the `[control]` key.
#[derive(Debug, Args)]
pub struct ControlLinkArgs {
    /// The control plane's API URL, e.g. http://127.0.0.1:9090, or several instances'
    /// (http://a:9090,http://b:9090): heartbeats and lookups fail over between them.
    #[arg(long = "control")]
    pub control_url: Option<String>,
    /// File holding this server's service token (strata control token issue --role service).
    #[arg(long)]
    pub control_token_file: Option<PathBuf>,
    /// This server's name in the registry.
    #[arg(long)]
    pub name: Option<String>,
    /// Time between heartbeats (e.g. 1s).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub heartbeat: Option<Duration>,
    /// Edges: the region this edge serves viewers in (DNS SRV answers route clients to regions).
    #[arg(long)]
    pub region: Option<String>,
    /// Edges: bits per second this edge can send to viewers (the network map's capacity).
    #[arg(long)]
    pub capacity_bps: Option<u64>,
}

impl ControlLinkArgs {
    pub fn apply(&self, link: &mut strata_edge::server::control_agent::ControlLink) {
        if let Some(v) = &self.control_url {
            link.url = v.clone();
        }
        if let Some(v) = &self.control_token_file {
            link.token_file = v.clone();
        }
        if let Some(v) = &self.name {
            link.name = v.clone();
        }
        if let Some(v) = self.heartbeat {
            link.heartbeat = v;
        }
        if let Some(v) = &self.region {
            link.region = v.clone();
        }
        if let Some(v) = self.capacity_bps {
            link.capacity_bps = v;
        }
    }
}

#[derive(Debug, Args)]
pub struct StorageArgs {
    /// Directory to serve [default: /var/lib/strata/storage].
    #[arg(long)]
    pub root: Option<PathBuf>,
    /// The storage cluster this server belongs to (with --control).
    #[arg(long)]
    pub cluster: Option<String>,
    #[command(flatten)]
    pub common: ServeArgs,
    #[command(flatten)]
    pub control: ControlLinkArgs,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct EdgeArgs {
    #[command(subcommand)]
    pub command: Option<EdgeCommand>,
    /// Cache directory to serve [default: /var/lib/strata/edge-cache].
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
    #[command(flatten)]
    pub common: ServeArgs,
    #[command(flatten)]
    pub guard: GuardArgs,
    #[command(flatten)]
    pub lookup: LookupArgs,
    #[command(flatten)]
    pub control: ControlLinkArgs,
    #[command(flatten)]
    pub director: crate::director_cli::DirectorArgs,
    /// An HTTPS listener and one certificate: ADDR=CERT.pem:KEY.pem[:NAME,NAME...]
    /// (repeatable; the same ADDR again adds a certificate chosen by SNI for its NAMEs).
    #[arg(long = "https", value_name = "ADDR=CERT:KEY[:NAMES]")]
    pub https: Vec<String>,
}

/// Where misses go: the static name lookup and the miss policy.
#[derive(Debug, Args)]
pub struct LookupArgs {
    /// A storage cluster: NAME=ADDR[,ADDR...] (repeatable).
    #[arg(long = "cluster")]
    pub clusters: Vec<String>,
    /// A tenant's clusters: TENANT=HOME_CLUSTER[,REPLICA_CLUSTER...] (repeatable).
    #[arg(long = "tenant")]
    pub tenants: Vec<String>,
    /// On a miss: proxy (fetch from the storage tier), redirect (302), or error (404).
    #[arg(long, value_enum)]
    pub miss: Option<MissPolicy>,
    /// How proxied bodies move: auto (sockmap if the start-up probe passes, else splice),
    /// sockmap, splice (socket → pipe → socket) or copy.
    #[arg(long, value_enum)]
    pub proxy_path: Option<strata_edge::upstream::body_relay::ProxyPath>,
    /// Bytes the edge cache may hold (0: misses are proxied, never cached).
    #[arg(long)]
    pub cache_capacity: Option<u64>,
    /// Admission threshold's ceiling: an asset is admitted when two of its requests start
    /// closer than the threshold, this while the cache has room (e.g. 60s).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub admit_interval: Option<std::time::Duration>,
    /// Admission threshold's floor once the cache is full and it follows the LRU tail's age
    /// (e.g. 10ms).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub admit_floor: Option<std::time::Duration>,
}

impl LookupArgs {
    /// Applies these flags over the configuration (flags add to the file's clusters/tenants).
    pub fn apply(&self, cfg: &mut ServeConfig) -> Result<(), strata_edge::name_lookup::LookupError> {
        for c in &self.clusters {
            cfg.lookup.add_cluster_flag(c)?;
        }
        for t in &self.tenants {
            cfg.lookup.add_tenant_flag(t)?;
        }
        if let Some(m) = self.miss {
            cfg.miss = m;
        }
        if let Some(p) = self.proxy_path {
            cfg.upstream.proxy_path = p;
        }
        if let Some(c) = self.cache_capacity {
            cfg.cache.capacity = c;
        }
        if let Some(i) = self.admit_interval {
            cfg.cache.admit_interval = i;
        }
        if let Some(f) = self.admit_floor {
            cfg.cache.admit_floor = f;
        }
        Ok(())
    }
}

#[derive(Debug, Subcommand)]
pub enum EdgeCommand {
    /// Show or change a running edge's XDP guard (through its admin listener).
    Guard(GuardCommand),
    /// Re-read a running edge's configuration (and certificates): validated, then a new process
    /// of the same binary takes the listeners over and the old one drains (as SIGHUP does).
    Reload(ProcessArgs),
    /// Start the binary the running edge was started from (replaced on disk by a new version):
    /// it takes the listeners over and the old process drains (as SIGUSR2 does).
    Upgrade(ProcessArgs),
}

/// Which running server `strata edge reload|upgrade` talks to.
#[derive(Debug, Args)]
pub struct ProcessArgs {
    /// The server's admin listener (`admin_listen`; a storage server's is 127.0.0.1:9081).
    #[arg(long, default_value = "127.0.0.1:9080")]
    pub admin: SocketAddr,
}

#[derive(Debug, Args)]
pub struct GuardCommand {
    /// The edge's admin listener.
    #[arg(long, default_value = "127.0.0.1:9080")]
    pub admin: SocketAddr,
    #[command(subcommand)]
    pub action: GuardAction,
}

#[derive(Debug, Subcommand)]
pub enum GuardAction {
    /// Print the guard's interface, mode, limits, lists and counters.
    List,
    /// Add a prefix (ADDR or ADDR/LEN) to the allow or block list.
    Add { list: GuardList, prefix: String },
    /// Remove a prefix from the allow or block list.
    Del { list: GuardList, prefix: String },
}

/// The edge's XDP guard settings; each overrides the `[guard]` key of the same name.
#[derive(Debug, Args)]
pub struct GuardArgs {
    /// Attach the XDP guard to this interface (the client-facing one).
    #[arg(long)]
    pub guard_interface: Option<String>,
    /// auto (native where the driver has it, else generic), native, generic.
    #[arg(long, value_enum)]
    pub guard_mode: Option<XdpModeSetting>,
    /// Prefix always let through (repeatable; replaces the file's list).
    #[arg(long)]
    pub guard_allow: Vec<String>,
    /// Prefix dropped (repeatable; replaces the file's list).
    #[arg(long)]
    pub guard_block: Vec<String>,
    /// New TCP connections per second per source (0: no limit).
    #[arg(long)]
    pub guard_syn_rate: Option<u32>,
    /// SYN burst per source.
    #[arg(long)]
    pub guard_syn_burst: Option<u32>,
    /// Packets per second per source (0: no limit).
    #[arg(long)]
    pub guard_packet_rate: Option<u32>,
    /// Packet burst per source.
    #[arg(long)]
    pub guard_packet_burst: Option<u32>,
}

impl GuardArgs {
    /// Applies these flags over the configuration's `[guard]` section.
    pub fn apply(&self, g: &mut GuardSettings) {
        if let Some(v) = &self.guard_interface {
            g.interface = v.clone();
        }
        if let Some(v) = self.guard_mode {
            g.mode = v;
        }
        if !self.guard_allow.is_empty() {
            g.allow = self.guard_allow.clone();
        }
        if !self.guard_block.is_empty() {
            g.block = self.guard_block.clone();
        }
        if let Some(v) = self.guard_syn_rate {
            g.syn_rate = v;
        }
        if let Some(v) = self.guard_syn_burst {
            g.syn_burst = v;
        }
        if let Some(v) = self.guard_packet_rate {
            g.packet_rate = v;
        }
        if let Some(v) = self.guard_packet_burst {
            g.packet_burst = v;
        }
    }
}

/// Flags shared by the serving roles; each overrides the key of the same name in the TOML file.
#[derive(Clone, Debug, Args)]
pub struct ServeArgs {
    /// TOML configuration file (every key optional).
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// Client listener address.
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Admin listener address (/metrics, /healthz).
    #[arg(long)]
    pub admin_listen: Option<SocketAddr>,
    /// How bodies are sent: auto (io_uring splice, else sendfile), io_uring (required), sendfile.
    #[arg(long, value_enum)]
    pub body_path: Option<BodyPathMode>,
    /// io_uring worker rings (0 = one per core).
    #[arg(long)]
    pub splice_workers: Option<usize>,
    /// Bytes of small files (≤ 64 KiB each) held in memory and sent with their head in one
    /// write (default 64 MiB; 0 = off).
    #[arg(long)]
    pub small_body_memory: Option<u64>,
    /// Threads running connection tasks (0 = one per core).
    #[arg(long)]
    pub worker_threads: Option<usize>,
    /// eBPF connection telemetry: auto, required, off.
    #[arg(long, value_enum)]
    pub telemetry: Option<EbpfMode>,
    /// Time allowed from a request's first byte to the end of its head (e.g. 10s).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub header_read_timeout: Option<Duration>,
    /// Time a keep-alive connection may sit idle (e.g. 60s).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub idle_timeout: Option<Duration>,
    /// Quiet time after which a keep-alive connection is parked (e.g. 2s; 0 = never).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub park_after: Option<Duration>,
    /// Time a client may accept no bytes mid-response (e.g. 30s).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub send_stall_timeout: Option<Duration>,
    /// Most client connections at once; more get 503.
    #[arg(long)]
    pub max_connections: Option<usize>,
    /// Largest request head in bytes; larger gets 431.
    #[arg(long)]
    pub max_header_bytes: Option<usize>,
    /// Access log: a file (reopened on SIGUSR1), `-` for stdout, or `off` [default: off].
    #[arg(long, value_name = "PATH")]
    pub access_log: Option<String>,
    /// Print the effective configuration as TOML and exit.
    #[arg(long)]
    pub print_config: bool,
}

#[derive(Debug, Args)]
pub struct PopArgs {
    /// Where the POP keeps its control plane, storage roots and edge cache; demo content is
    /// ingested on first start.
    #[arg(long, default_value = "strata-pop-data")]
    pub data_dir: PathBuf,
    /// The control plane's API listener.
    #[arg(long, default_value = "127.0.0.1:9090")]
    pub control_listen: SocketAddr,
    /// Edge client listener.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub edge_listen: SocketAddr,
    /// Edge admin listener.
    #[arg(long, default_value = "127.0.0.1:9080")]
    pub edge_admin_listen: SocketAddr,
    /// Client listener of the second edge (region "west"; the first edge is region "east").
    #[arg(long, default_value = "127.0.0.1:8083")]
    pub edge_west_listen: SocketAddr,
    /// Admin listener of the second edge.
    #[arg(long, default_value = "127.0.0.1:9083")]
    pub edge_west_admin_listen: SocketAddr,
    /// Client listener of the third edge, a second one in region "east" (its director fetches
    /// what the first east edge holds from it).
    #[arg(long, default_value = "127.0.0.1:8084")]
    pub edge_east_2_listen: SocketAddr,
    /// Admin listener of the third edge.
    #[arg(long, default_value = "127.0.0.1:9084")]
    pub edge_east_2_admin_listen: SocketAddr,
    /// The first edge's HTTPS listener, used when --tls-cert and --tls-key are given
    /// (`cargo xtask run` generates a self-signed pair).
    #[arg(long, default_value = "127.0.0.1:8443")]
    pub edge_https_listen: SocketAddr,
    /// PEM certificate for the first edge's HTTPS listener.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// The nameserver's UDP and TCP listener.
    #[arg(long, default_value = "127.0.0.1:5353")]
    pub dns_listen: SocketAddr,
    /// The nameserver's admin listener.
    #[arg(long, default_value = "127.0.0.1:9053")]
    pub dns_admin_listen: SocketAddr,
    /// The zone the nameserver answers.
    #[arg(long, default_value = "cdn.test")]
    pub dns_domain: String,
    /// Client listener of the storage server of cluster "east" (home of tenant acme).
    #[arg(long, alias = "storage-listen", default_value = "127.0.0.1:8081")]
    pub storage_east_listen: SocketAddr,
    /// Admin listener of the "east" storage server.
    #[arg(long, alias = "storage-admin-listen", default_value = "127.0.0.1:9081")]
    pub storage_east_admin_listen: SocketAddr,
    /// Client listener of the storage server of cluster "west" (home of tenant globex).
    #[arg(long, default_value = "127.0.0.1:8082")]
    pub storage_west_listen: SocketAddr,
    /// Admin listener of the "west" storage server.
    #[arg(long, default_value = "127.0.0.1:9082")]
    pub storage_west_admin_listen: SocketAddr,
    /// Stream listeners of the two live ingest servers (encoders publish here).
    #[arg(long, num_args = 2, default_values = ["127.0.0.1:8090", "127.0.0.1:8091"])]
    pub live_listen: Vec<SocketAddr>,
    /// Admin listeners of the two live ingest servers.
    #[arg(long, num_args = 2, default_values = ["127.0.0.1:9190", "127.0.0.1:9191"])]
    pub live_admin_listen: Vec<SocketAddr>,
}

impl ServeArgs {
    /// Builds the effective configuration: defaults, then the file, then these flags.
    pub fn resolve(&self, defaults: ServeConfig, root: Option<PathBuf>) -> Result<ServeConfig, ConfigError> {
        let mut cfg = match &self.config {
            Some(path) => crate::config::load(path, defaults)?,
            None => defaults,
        };
        if let Some(v) = root {
            cfg.root = v;
        }
        if let Some(v) = self.listen {
            cfg.listen = v;
        }
        if let Some(v) = self.admin_listen {
            cfg.admin_listen = v;
        }
        if let Some(v) = self.body_path {
            cfg.data_path.body_path = v;
        }
        if let Some(v) = self.splice_workers {
            cfg.data_path.splice_workers = v;
        }
        if let Some(v) = self.small_body_memory {
            cfg.data_path.small_body_memory = v;
        }
        if let Some(v) = self.worker_threads {
            cfg.data_path.worker_threads = v;
        }
        if let Some(v) = self.telemetry {
            cfg.telemetry = v;
        }
        if let Some(v) = self.header_read_timeout {
            cfg.limits.header_read_timeout = v;
        }
        if let Some(v) = self.idle_timeout {
            cfg.limits.idle_timeout = v;
        }
        if let Some(v) = self.park_after {
            cfg.limits.park_after = v;
        }
        if let Some(v) = self.send_stall_timeout {
            cfg.limits.send_stall_timeout = v;
        }
        if let Some(v) = self.max_connections {
            cfg.limits.max_connections = v;
        }
        if let Some(v) = self.max_header_bytes {
            cfg.limits.max_header_bytes = v;
        }
        if let Some(v) = &self.access_log {
            cfg.access_log.path = v.clone();
        }
        cfg.validate()?;
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_defaults() {
        let cli = Cli::parse_from([
            "strata",
            "edge",
            "--cache-dir",
            "/c",
            "--listen",
            "127.0.0.1:1",
            "--idle-timeout",
            "3s",
            "--body-path",
            "sendfile",
            "--telemetry",
            "required",
        ]);
        let Command::Edge(args) = cli.command else {
            panic!("not edge")
        };
        let cfg = args
            .common
            .resolve(ServeConfig::edge_defaults(), args.cache_dir.clone())
            .unwrap();
        assert_eq!(cfg.root, PathBuf::from("/c"));
        assert_eq!(cfg.listen.port(), 1);
        assert_eq!(cfg.limits.idle_timeout, Duration::from_secs(3));
        assert_eq!(cfg.data_path.body_path, BodyPathMode::Sendfile);
        assert_eq!(cfg.telemetry, EbpfMode::Required);
    }
}

/// `strata dns`: flags over the `--config` file over the defaults.
#[derive(Debug, Args)]
pub struct DnsArgs {
    /// TOML configuration file (every key optional).
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// Print the resulting configuration as TOML and exit.
    #[arg(long)]
    pub print_config: bool,
    /// UDP and TCP listener, e.g. 127.0.0.1:5353.
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Admin listener (/metrics, /healthz).
    #[arg(long)]
    pub admin_listen: Option<SocketAddr>,
    /// The zone answered, e.g. cdn.example.net.
    #[arg(long)]
    pub domain: Option<String>,
    /// TTL of every answer, seconds.
    #[arg(long)]
    pub ttl: Option<u32>,
    /// The control plane's API URL, or several instances' separated by commas (failover).
    #[arg(long = "control")]
    pub control_url: Option<String>,
    /// File holding this nameserver's service token.
    #[arg(long)]
    pub control_token_file: Option<PathBuf>,
    /// This nameserver's name (its service token names it).
    #[arg(long)]
    pub name: Option<String>,
    /// Time between two fetches of the network map (e.g. 2s).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub map_refresh: Option<Duration>,
    /// Time between two reports of query counts per client block (e.g. 10s).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub report_every: Option<Duration>,
}

impl DnsArgs {
    /// The settings: defaults, then the file, then these flags.
    pub fn resolve(&self) -> Result<strata_dns::settings::DnsSettings, ConfigError> {
        let mut s = match &self.config {
            Some(path) => crate::config::load(path, strata_dns::settings::DnsSettings::default())?,
            None => strata_dns::settings::DnsSettings::default(),
        };
        if let Some(v) = self.listen {
            s.listen = v;
        }
        if let Some(v) = self.admin_listen {
            s.admin_listen = v;
        }
        if let Some(v) = &self.domain {
            s.domain = v.clone();
        }
        if let Some(v) = self.ttl {
            s.ttl = v;
        }
        if let Some(v) = &self.control_url {
            s.control_url = v.clone();
        }
        if let Some(v) = &self.control_token_file {
            s.control_token_file = v.clone();
        }
        if let Some(v) = &self.name {
            s.name = v.clone();
        }
        if let Some(v) = self.map_refresh {
            s.map_refresh = v;
        }
        if let Some(v) = self.report_every {
            s.report_every = v;
        }
        Ok(s)
    }
}

/// `strata fetch`.
#[derive(Debug, Args)]
pub struct FetchArgs {
    /// TENANT/CONTENT (a rendition is chosen from its asset list) or TENANT/CONTENT/ASSET.
    pub target: String,
    /// The nameserver to ask for `_a{bucket}-{ip}._tcp.srv.DOMAIN`, e.g. 127.0.0.1:5353.
    #[arg(long)]
    pub dns: Option<SocketAddr>,
    /// The CDN's domain.
    #[arg(long, default_value = "cdn.test")]
    pub domain: String,
    /// Servers to use instead of DNS, e.g. http://127.0.0.1:8080 (repeatable).
    #[arg(long = "server")]
    pub servers: Vec<String>,
    /// The content bucket in the SRV name.
    #[arg(long, default_value_t = 1)]
    pub bucket: u32,
    /// The IPv4 address to put in the SRV name [default: this host's address toward the
    /// nameserver].
    #[arg(long)]
    pub client_ip: Option<std::net::Ipv4Addr>,
    /// `auto` (by device and throughput) or an asset name.
    #[arg(long, default_value = "auto")]
    pub rendition: String,
    /// Highest video height the device shows.
    #[arg(long)]
    pub max_height: Option<u32>,
    /// Codecs the device plays, by prefix (e.g. avc1; repeatable; default: any).
    #[arg(long = "codec")]
    pub codecs: Vec<String>,
    /// Asset name prefixes in order of preference (repeatable).
    #[arg(long = "prefer")]
    pub prefer: Vec<String>,
    /// Simulate a player (buffer, ABR) and print its QoE instead of writing a file.
    #[arg(long)]
    pub play: bool,
    /// Write the asset here (byte-exact, checked against the asset list's SHA-256).
    #[arg(short = 'o', long = "output")]
    pub output: Option<PathBuf>,
    /// Write one JSON line per piece and decision here.
    #[arg(long)]
    pub trace: Option<PathBuf>,
    /// Write the playback's QoE as JSON here (with --play).
    #[arg(long)]
    pub qoe: Option<PathBuf>,
    /// The control plane to report timings to (POST /v1/reports; no token needed).
    #[arg(long = "control", env = "STRATA_CONTROL")]
    pub control: Option<String>,
    /// Never ask a second server for a late piece.
    #[arg(long)]
    pub no_hedge: bool,
    /// Re-probe the other servers after this many pieces.
    #[arg(long, default_value_t = 4)]
    pub reprobe_every: u32,
}
