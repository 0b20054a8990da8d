//! Live streams as an ingest server reports them in its heartbeats, and as the control plane
//! lists them (`GET /v1/live`).

use serde::{Deserialize, Serialize};

/// Where a stream is in its life: published (live), ended and being finalized (ending), being
/// placed on on-demand storage (archiving), or placed (archived).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LivePhase {
    Live,
    Ending,
    Archiving,
    Archived,
}

/// One stream an ingest server holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveStream {
    pub tenant: String,
    pub stream: String,
    pub phase: LivePhase,
    /// Segments recorded so far.
    pub segments: u64,
    /// Bytes recorded so far.
    pub bytes: u64,
    /// Bits per second over the recording (bytes × 8 / recorded duration).
    pub bitrate_bps: u64,
    /// Milliseconds of media recorded.
    pub duration_ms: u64,
    /// When the encoder last published anything (Unix seconds).
    pub last_publish_unix: u64,
    /// The content the recording is archived as (set once archiving starts).
    #[serde(default)]
    pub archive_content: Option<String>,
}

/// What an ingest server adds to its heartbeat.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveReport {
    pub streams: Vec<LiveStream>,
}
