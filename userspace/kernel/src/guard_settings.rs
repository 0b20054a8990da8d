//! Settings of the XDP guard (`[guard]`): the interface it guards, how it attaches, the
//! prefixes it always lets through or drops, and its per-source rate limits.

use serde::{Deserialize, Serialize};

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
