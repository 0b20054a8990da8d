//! Live playlists at the edge: a playlist of a stream the lookup says is live is fetched from
//! the ingest cluster into memory, never into the disk cache, and held for a short time
//! (`live_playlist_ttl`). Concurrent requests for the same playlist wait on one lock, so while
//! one fetch is in flight every other viewer gets its result: one upstream fetch per playlist
//! per TTL, however many viewers poll. Viewers get a short `Cache-Control` and an `Age` that
//! counts the ingest's age plus the time the edge has held the copy.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use strata_http::request::RequestHead;
use strata_kernel::kernel_metrics::counter;
use tokio::io::AsyncReadExt as _;

use crate::upstream::exchange::first_exchange;
use crate::upstream::pool::UpstreamPool;
use crate::upstream::upstream_head::UpstreamAsk;

/// Largest live playlist held.
const MAX_LIVE_PLAYLIST: u64 = 1 << 20;

/// One fetched copy of a playlist.
#[derive(Debug)]
pub struct HeldPlaylist {
    pub body: Vec<u8>,
    pub content_type: String,
    pub etag: Option<String>,
    fetched: Instant,
    upstream_age: u64,
}

impl HeldPlaylist {
    /// The `Age` to send: the ingest's plus the seconds this edge has held the copy.
    pub fn age(&self) -> u64 {
        self.upstream_age + self.fetched.elapsed().as_secs()
    }
}

type Slot = Arc<tokio::sync::Mutex<Option<Arc<HeldPlaylist>>>>;

/// The held live playlists and their counters.
#[derive(Debug)]
pub struct LivePlaylists {
    ttl: Duration,
    slots: Mutex<HashMap<String, Slot>>,
    pub requests: AtomicU64,
    pub fetches: AtomicU64,
}

impl LivePlaylists {
    pub fn new(ttl: Duration) -> LivePlaylists {
        LivePlaylists {
            ttl,
            slots: Mutex::new(HashMap::new()),
            requests: AtomicU64::new(0),
            fetches: AtomicU64::new(0),
        }
    }

    /// The `max-age` viewers get, in seconds.
    pub fn max_age(&self) -> u64 {
        self.ttl.as_secs().max(1)
    }

    /// The playlist at `path`: the held copy if fresh, else one fetch from `servers` shared by
    /// every request waiting meanwhile. Errors carry the status to answer.
    pub async fn get(
        &self,
        pool: &UpstreamPool,
        path: &str,
        servers: &[SocketAddr],
    ) -> Result<Arc<HeldPlaylist>, (u16, String)> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let slot = {
            let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            if slots.len() > 10_000 {
                slots.retain(|_, s| Arc::strong_count(s) > 1);
            }
            slots.entry(path.to_string()).or_default().clone()
        };
        let mut held = slot.lock().await;
        if let Some(h) = held.as_ref().filter(|h| h.fetched.elapsed() < self.ttl) {
            return Ok(h.clone());
        }
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let fetched = Arc::new(fetch(pool, path, servers).await?);
        *held = Some(fetched.clone());
        Ok(fetched)
    }
}

/// GETs `path` from the first server that answers 200 with a whole body.
async fn fetch(
    pool: &UpstreamPool,
    path: &str,
    servers: &[SocketAddr],
) -> Result<HeldPlaylist, (u16, String)> {
    let head = RequestHead {
        path: path.to_string(),
        minor_version: 1,
        keep_alive: true,
        ..Default::default()
    };
    let ask = UpstreamAsk {
        head: &head,
        range: None,
        if_range: None,
    };
    let mut last = (
        502,
        format!("no ingest server to fetch live playlist {path} from"),
    );
    for &server in servers {
        let (mut up, h) = match first_exchange(pool, server, &ask).await {
            Ok(x) => x,
            Err(e) => {
                pool.failure(server);
                last = (502, format!("live playlist {path} from {server}: {}", e.reason));
                continue;
            }
        };
        if h.status == 404 {
            return Err((
                404,
                format!("no such live playlist {path} (the ingest has none yet)"),
            ));
        }
        let len = h.content_length.unwrap_or(u64::MAX);
        if h.status != 200 || len > MAX_LIVE_PLAYLIST {
            last = (
                502,
                format!(
                    "live playlist {path} from {server}: status {} length {len}",
                    h.status
                ),
            );
            continue;
        }
        let mut body = vec![0u8; len as usize];
        let read = tokio::time::timeout(pool.settings().response_timeout, up.read_exact(&mut body)).await;
        if !matches!(read, Ok(Ok(_))) {
            last = (502, format!("live playlist {path} from {server}: body cut short"));
            continue;
        }
        pool.success(server);
        if !h.close {
            pool.checkin(server, up);
        }
        return Ok(HeldPlaylist {
            body,
            content_type: h
                .header("content-type")
                .unwrap_or("application/vnd.apple.mpegurl")
                .to_string(),
            etag: h.header("etag").map(str::to_string),
            fetched: Instant::now(),
            upstream_age: h.age,
        });
    }
    Err(last)
}

/// The live playlists' counters for /metrics.
#[derive(Debug)]
pub struct LivePlaylistCollector(pub Arc<LivePlaylists>);

impl Collector for LivePlaylistCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let encoder = &mut encoder;
        counter(
            encoder,
            "live_playlist_requests",
            "Viewers' requests for live playlists",
            self.0.requests.load(Ordering::Relaxed),
        )?;
        counter(
            encoder,
            "live_playlist_fetches",
            "Live playlist fetches from the ingest cluster (requests / fetches = collapse ratio)",
            self.0.fetches.load(Ordering::Relaxed),
        )
    }
}
