//! strata's intelligent client (`strata fetch`), as the seeds describe it: it finds servers
//! through the CDN's DNS SRV answers, reads the content's asset list, picks a rendition for the
//! device and the measured throughput, probes the best servers and starts with the fastest,
//! downloads by byte ranges whose size follows the throughput (hedging a late piece on a second
//! server), re-asks DNS when the answer's TTL runs out, moves between servers only for a clear
//! gain, and reports what it measured back to the control plane. `--play` simulates a player
//! with ABR and reports QoE.

pub mod asset_list;
pub mod discover;
pub mod download;
pub mod http_range;
pub mod player;
pub mod report;
pub mod session;
pub mod trace;

use std::net::SocketAddr;

/// What a progress display shows after each piece.
#[derive(Clone, Debug)]
pub struct Progress {
    /// Bytes (download) or media milliseconds (playback) done of `total`.
    pub done: u64,
    pub total: u64,
    pub server: SocketAddr,
    pub region: String,
    pub rendition: String,
    pub rate_bps: f64,
}

/// Asks DNS again (None when it cannot: the fetch keeps its servers).
pub type Rediscover<'a> = dyn FnMut() -> Option<discover::Discovery> + 'a;
