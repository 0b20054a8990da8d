//! `strata live` settings: where the shared recording root is, where to listen, which ingest
//! cluster this server belongs to, how it reaches the control plane, and the publishing limits.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Everything an ingest server needs.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LiveSettings {
    /// The recording root, shared by every server of the ingest cluster:
    /// `{root}/{tenant}/{stream}/…`.
    pub root: PathBuf,
    /// Where encoders publish and edges fetch.
    pub listen: SocketAddr,
    /// Metrics, health and the stream list.
    pub admin_listen: SocketAddr,
    /// The ingest cluster's name (edges are sent to the cluster while a stream is live).
    pub cluster: String,
    pub control: LiveControlLink,
    pub limits: PublishLimits,
    /// How often the archiver looks for ended streams.
    #[serde(with = "humantime_serde")]
    pub archive_check: Duration,
}

/// How the ingest server joins the control plane.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LiveControlLink {
    /// The control plane's API URL.
    pub url: String,
    /// This server's service token.
    pub token_file: PathBuf,
    /// This server's name in the registry.
    pub name: String,
    #[serde(with = "humantime_serde")]
    pub heartbeat: Duration,
}

/// What one publisher may send.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PublishLimits {
    /// Largest segment (or init segment) body: larger → 413.
    pub max_segment_bytes: u64,
    /// Largest playlist body: larger → 413.
    pub max_playlist_bytes: u64,
    /// Streams one tenant may have live at once: one more → 429.
    pub max_streams_per_tenant: usize,
    /// How long a publish token's check by the control plane is trusted.
    #[serde(with = "humantime_serde")]
    pub token_cache: Duration,
    /// A request body that sends nothing for this long is dropped (its `.part` removed).
    #[serde(with = "humantime_serde")]
    pub body_stall: Duration,
}

impl Default for PublishLimits {
    fn default() -> Self {
        PublishLimits {
            max_segment_bytes: 64 << 20,
            max_playlist_bytes: 1 << 20,
            max_streams_per_tenant: 16,
            token_cache: Duration::from_secs(10),
            body_stall: Duration::from_secs(30),
        }
    }
}

impl Default for LiveControlLink {
    fn default() -> Self {
        LiveControlLink {
            url: String::new(),
            token_file: PathBuf::new(),
            name: String::new(),
            heartbeat: Duration::from_secs(1),
        }
    }
}

impl Default for LiveSettings {
    fn default() -> Self {
        LiveSettings {
            root: PathBuf::from("/var/lib/strata/live"),
            listen: SocketAddr::from(([0, 0, 0, 0], 8090)),
            admin_listen: SocketAddr::from(([127, 0, 0, 1], 9190)),
            cluster: "live".into(),
            control: LiveControlLink::default(),
            limits: PublishLimits::default(),
            archive_check: Duration::from_secs(1),
        }
    }
}
