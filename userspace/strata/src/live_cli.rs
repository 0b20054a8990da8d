//! `strata live`'s flags: the ingest server's settings, flags over the `--config` file over the
//! defaults.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use strata_live::settings::LiveSettings;

use crate::config::ConfigError;

/// `strata live`.
#[derive(Debug, Args)]
pub struct LiveArgs {
    /// TOML configuration file (every key optional).
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// Print the resulting configuration as TOML and exit.
    #[arg(long)]
    pub print_config: bool,
    /// The recording root, shared by the cluster's servers: {root}/{tenant}/{stream}/.
    #[arg(long)]
    pub root: Option<PathBuf>,
    /// Where encoders publish (PUT/POST/DELETE) and edges fetch (GET), e.g. 0.0.0.0:8090.
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Admin listener (/metrics, /healthz, /v1/streams).
    #[arg(long)]
    pub admin_listen: Option<SocketAddr>,
    /// The ingest cluster this server belongs to.
    #[arg(long)]
    pub cluster: Option<String>,
    /// The control plane's API URL (publish tokens are checked and recordings archived there).
    #[arg(long = "control")]
    pub control_url: Option<String>,
    /// File holding this server's service token.
    #[arg(long)]
    pub control_token_file: Option<PathBuf>,
    /// This server's name in the registry.
    #[arg(long)]
    pub name: Option<String>,
    /// Time between heartbeats (e.g. 1s).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub heartbeat: Option<Duration>,
    /// Largest segment body in bytes (larger → 413).
    #[arg(long)]
    pub max_segment_bytes: Option<u64>,
    /// Streams one tenant may publish at once (one more → 429).
    #[arg(long)]
    pub max_streams_per_tenant: Option<usize>,
}

impl LiveArgs {
    /// The settings: defaults, then the file, then these flags.
    pub fn resolve(&self) -> Result<LiveSettings, ConfigError> {
        let mut s = match &self.config {
            Some(path) => crate::config::load(path, LiveSettings::default())?,
            None => LiveSettings::default(),
        };
        if let Some(v) = &self.root {
            s.root = v.clone();
        }
        if let Some(v) = self.listen {
            s.listen = v;
        }
        if let Some(v) = self.admin_listen {
            s.admin_listen = v;
        }
        if let Some(v) = &self.cluster {
            s.cluster = v.clone();
        }
        if let Some(v) = &self.control_url {
            s.control.url = v.clone();
        }
        if let Some(v) = &self.control_token_file {
            s.control.token_file = v.clone();
        }
        if let Some(v) = &self.name {
            s.control.name = v.clone();
        }
        if let Some(v) = self.heartbeat {
            s.control.heartbeat = v;
        }
        if let Some(v) = self.max_segment_bytes {
            s.limits.max_segment_bytes = v;
        }
        if let Some(v) = self.max_streams_per_tenant {
            s.limits.max_streams_per_tenant = v;
        }
        Ok(s)
    }
}
