//! Configuration of the serving roles: one TOML file per role, a default for every key, and
//! command-line flags (see `cli.rs`) that override the file.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Why a configuration could not be used.
#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("reading config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("config file {path}: {source}")]
    Parse { path: PathBuf, source: toml::de::Error },
    #[error("invalid setting {key}: {reason}")]
    Invalid { key: &'static str, reason: String },
}

/// How response bodies leave the server.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum BodyPathMode {
    /// io_uring splice if the kernel has it, else sendfile (logged).
    #[default]
    Auto,
    /// io_uring splice or refuse to start.
    #[value(name = "io_uring")]
    IoUring,
    /// sendfile(2) only.
    Sendfile,
}

/// Whether the eBPF connection telemetry is loaded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum EbpfMode {
    /// Load it; if the kernel refuses, log why and serve without it.
    #[default]
    Auto,
    /// Load it or refuse to start.
    Required,
    /// Do not load it.
    Off,
}

/// What an edge does when an asset is not in its cache (the seed's SRV_PROXY flag).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum MissPolicy {
    /// Fetch it from the storage tier and relay it.
    Proxy,
    /// Answer 302 to a storage server that holds it.
    Redirect,
    /// Answer 404.
    #[default]
    Error,
}

/// How the XDP guard attaches.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum XdpModeSetting {
    /// Native (driver) mode where the driver supports it, else generic (logged).
    #[default]
    Auto,
    /// Native mode or refuse to start.
    Native,
    /// Generic (skb) mode.
    Generic,
}

/// The XDP guard on the client-facing interface (edge only).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GuardSettings {
    /// Interface to guard; empty leaves the guard off.
    pub interface: String,
    pub mode: XdpModeSetting,
    /// Prefixes always let through (they win over the blocklist and the rate limits).
    pub allow: Vec<String>,
    /// Prefixes dropped.
    pub block: Vec<String>,
    /// New TCP connections per second per source (0: no limit).
    pub syn_rate: u32,
    pub syn_burst: u32,
    /// Packets per second per source (0: no limit).
    pub packet_rate: u32,
    pub packet_burst: u32,
}

impl Default for GuardSettings {
    fn default() -> Self {
        GuardSettings {
            interface: String::new(),
            mode: XdpModeSetting::Auto,
            allow: Vec::new(),
            block: Vec::new(),
            syn_rate: 200,
            syn_burst: 400,
            packet_rate: 0,
            packet_burst: 0,
        }
    }
}

/// Connection limits and timeouts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Time from a request's first byte to the end of its head.
    #[serde(with = "humantime_serde")]
    pub header_read_timeout: Duration,
    /// Time a keep-alive connection may wait for its next request.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// Time after which a quiet keep-alive connection is parked (leaves its task for a shared
    /// epoll set, costing a few hundred bytes); 0 never parks.
    #[serde(with = "humantime_serde")]
    pub park_after: Duration,
    /// Time a client may take no bytes while a response is being sent.
    #[serde(with = "humantime_serde")]
    pub send_stall_timeout: Duration,
    /// Most client connections open at once; more are answered 503 and closed. 0: derived
    /// from the open-file limit (the limit less 1024 descriptors for files, pipes and maps).
    pub max_connections: usize,
    /// Largest request head accepted; larger answers 431.
    pub max_header_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            park_after: Duration::from_secs(2),
            send_stall_timeout: Duration::from_secs(30),
            max_connections: 0,
            max_header_bytes: 16 * 1024,
        }
    }
}

/// How the data path runs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DataPath {
    pub body_path: BodyPathMode,
    /// io_uring worker rings; 0 means one per CPU core.
    pub splice_workers: usize,
    /// Threads that run the connection tasks; 0 means one per CPU core.
    pub worker_threads: usize,
}

/// Everything one HTTP serving role needs (storage server or edge).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeConfig {
    /// Directory served: the store root (storage) or the cache directory (edge).
    pub root: PathBuf,
    pub listen: SocketAddr,
    pub admin_listen: SocketAddr,
    pub telemetry: EbpfMode,
    pub limits: Limits,
    pub data_path: DataPath,
    pub guard: GuardSettings,
    /// Edge only: what to do on a miss.
    pub miss: MissPolicy,
    /// Edge only: where content lives (tenants → clusters → storage servers).
    pub lookup: crate::name_lookup::StaticLookupConfig,
    /// Edge only: the storage-tier connection pool.
    pub upstream: crate::upstream::pool::UpstreamSettings,
    /// Edge only: cache capacity and admission.
    pub cache: crate::cache::CacheSettings,
    /// The control plane this server reports to (empty url: none).
    #[serde(default)]
    pub control: ControlLink,
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

impl ServeConfig {
    /// Defaults for the storage role.
    pub fn storage_defaults() -> ServeConfig {
        ServeConfig {
            root: PathBuf::from("/var/lib/strata/storage"),
            listen: SocketAddr::from(([127, 0, 0, 1], 8081)),
            admin_listen: SocketAddr::from(([127, 0, 0, 1], 9081)),
            telemetry: EbpfMode::Off,
            limits: Limits::default(),
            data_path: DataPath::default(),
            guard: GuardSettings::default(),
            miss: MissPolicy::Error,
            lookup: Default::default(),
            upstream: Default::default(),
            cache: Default::default(),
            control: Default::default(),
        }
    }

    /// Defaults for the edge role.
    pub fn edge_defaults() -> ServeConfig {
        ServeConfig {
            root: PathBuf::from("/var/lib/strata/edge-cache"),
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            admin_listen: SocketAddr::from(([127, 0, 0, 1], 9080)),
            telemetry: EbpfMode::Auto,
            miss: MissPolicy::Proxy,
            ..ServeConfig::storage_defaults()
        }
    }

    /// Reads a TOML file on top of `defaults`: keys the file leaves out keep their defaults.
    pub fn load(path: &Path, defaults: ServeConfig) -> Result<ServeConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, defaults).map_err(|source| ConfigError::Parse {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Parses TOML text on top of `defaults`.
    pub fn parse(text: &str, defaults: ServeConfig) -> Result<ServeConfig, toml::de::Error> {
        let mut merged = toml::Value::try_from(&defaults).expect("defaults serialize to TOML");
        let file: toml::Value = toml::from_str(text)?;
        merge(&mut merged, file);
        merged.try_into()
    }

    /// Checks values that parse but cannot work.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.control.enabled() {
            if self.control.token_file.as_os_str().is_empty() {
                return Err(ConfigError::Invalid {
                    key: "control.token_file",
                    reason: "a control plane needs a service token (--control-token-file)".into(),
                });
            }
            if self.control.name.is_empty() {
                return Err(ConfigError::Invalid {
                    key: "control.name",
                    reason: "a server reporting to a control plane needs a name (--name)".into(),
                });
            }
        }
        if let Err(e) = self.lookup.validate() {
            return Err(ConfigError::Invalid {
                key: "lookup",
                reason: e.to_string(),
            });
        }
        let invalid = |key, reason: &str| {
            Err(ConfigError::Invalid {
                key,
                reason: reason.to_string(),
            })
        };
        if self.limits.max_header_bytes < 256 {
            return invalid("limits.max_header_bytes", "must be at least 256");
        }
        for (key, d) in [
            ("limits.header_read_timeout", self.limits.header_read_timeout),
            ("limits.idle_timeout", self.limits.idle_timeout),
            ("limits.send_stall_timeout", self.limits.send_stall_timeout),
        ] {
            if d.is_zero() {
                return invalid(key, "must be longer than zero");
            }
        }
        Ok(())
    }

    /// The configuration as TOML, as `--print-config` shows it.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot render config: {e}\n"))
    }
}

/// Overlays `over` onto `base`, table by table.
fn merge(base: &mut toml::Value, over: toml::Value) {
    match (base, over) {
        (toml::Value::Table(b), toml::Value::Table(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(existing) => merge(existing, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (b, o) => *b = o,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_defaults() {
        let c = ServeConfig::parse("", ServeConfig::edge_defaults()).unwrap();
        assert_eq!(c, ServeConfig::edge_defaults());
    }

    #[test]
    fn file_overrides_only_what_it_names() {
        let text =
            "root = \"/srv\"\n[limits]\nidle_timeout = \"5s\"\n[data_path]\nbody_path = \"sendfile\"\n";
        let c = ServeConfig::parse(text, ServeConfig::storage_defaults()).unwrap();
        assert_eq!(c.root, PathBuf::from("/srv"));
        assert_eq!(c.limits.idle_timeout, Duration::from_secs(5));
        assert_eq!(c.limits.max_connections, Limits::default().max_connections);
        assert_eq!(c.data_path.body_path, BodyPathMode::Sendfile);
    }

    #[test]
    fn unknown_keys_are_errors() {
        assert!(ServeConfig::parse("rooot = \"/x\"", ServeConfig::storage_defaults()).is_err());
        assert!(ServeConfig::parse("[limits]\nidle = \"1s\"", ServeConfig::storage_defaults()).is_err());
    }

    #[test]
    fn printed_config_parses_back() {
        let c = ServeConfig::edge_defaults();
        assert_eq!(
            ServeConfig::parse(&c.to_toml(), ServeConfig::storage_defaults()).unwrap(),
            c
        );
    }

    #[test]
    fn zero_limits_are_rejected() {
        let mut c = ServeConfig::edge_defaults();
        c.limits.idle_timeout = Duration::ZERO;
        assert!(c.validate().is_err());
    }
}
