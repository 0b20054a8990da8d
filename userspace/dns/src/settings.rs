//! `strata dns` settings (`--config` TOML, flags override): where it listens, its zone, the
//! answers' TTL and sizes, and the control plane it reads the map from.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DnsSettings {
    /// UDP and TCP listener.
    pub listen: SocketAddr,
    /// Admin listener: /metrics and /healthz.
    pub admin_listen: SocketAddr,
    /// The zone this server is authoritative for, e.g. `cdn.example.net`.
    pub domain: String,
    /// TTL of every answer, seconds.
    pub ttl: u32,
    /// A/AAAA answers leave out servers loaded above (1 + epsilon) × their region's mean.
    pub epsilon: f64,
    /// Largest UDP answer offered to EDNS clients, bytes (512 without EDNS; larger answers
    /// are truncated and the client retries over TCP).
    pub max_udp: u16,
    /// The control plane's API.
    pub control_url: String,
    /// File holding this nameserver's service token.
    pub control_token_file: PathBuf,
    /// This nameserver's name (its service token is issued for it).
    pub name: String,
    /// Time between two fetches of the map.
    #[serde(with = "humantime_serde")]
    pub map_refresh: Duration,
    /// Time between two reports of query counts per block.
    #[serde(with = "humantime_serde")]
    pub report_every: Duration,
}

impl Default for DnsSettings {
    fn default() -> Self {
        DnsSettings {
            listen: SocketAddr::from(([127, 0, 0, 1], 5353)),
            admin_listen: SocketAddr::from(([127, 0, 0, 1], 9053)),
            domain: "cdn.test".into(),
            ttl: 20,
            epsilon: 0.25,
            max_udp: 1232,
            control_url: "http://127.0.0.1:9090".into(),
            control_token_file: PathBuf::from("/etc/strata/dns.token"),
            name: "dns".into(),
            map_refresh: Duration::from_secs(2),
            report_every: Duration::from_secs(10),
        }
    }
}
