//! The director's step in the miss path. Before the storage tier: if peers of the region hold
//! the asset, either relay it from the best one (`proxy`: the request goes out with the hop
//! mark through the same upstream pool and body movers as a storage miss, so the peer serves it
//! as a local hit) or answer 302 to it (`redirect`, the URL carrying `strata-hop=1`). A peer
//! that answers 404 or cannot be reached is marked stale and the next one is tried; when none
//! serves, the miss continues to the storage tier and the viewer sees no error.
//!
//! On the other side, a hop-marked request for an asset this edge does not hold answers 404
//! (and drops the asset from the cache index if the file vanished under it, so the next row
//! corrects the table).

use std::sync::atomic::Ordering;
use std::time::Duration;

use strata_http::request::RequestHead;

use super::edge_director::Director;
use super::settings::DirectorMode;
use crate::cache::EdgeCache;
use crate::client_stream::ClientStream;
use crate::metrics::ServerMetrics;
use crate::upstream::pool::UpstreamPool;
use crate::upstream::proxy::{proxy, ProxyResult};

/// The query parameter a redirected viewer's URL carries (the hop mark of `redirect`).
pub const HOP_QUERY: &str = "strata-hop=1";

/// What the director did with a miss.
pub enum PeerStep {
    /// A peer's response went to the client; whether the connection stays open.
    Served { keep_alive: bool },
    /// Answer 302 with this location.
    Redirect(String),
    /// Go to the storage tier.
    Storage,
}

/// Whether `head` was sent here by a director (header from a peer, or a redirected viewer):
/// it is never directed again.
pub fn directed_here(head: &RequestHead) -> bool {
    head.hop
        || head
            .query
            .as_deref()
            .is_some_and(|q| q.split('&').any(|kv| kv == HOP_QUERY))
}

/// The director's step for a miss of `asset` (`tenant/content/asset`).
pub async fn direct(
    director: &Director,
    client: &mut ClientStream,
    head: &RequestHead,
    asset: &str,
    pool: &UpstreamPool,
    metrics: &ServerMetrics,
    stall: Duration,
) -> PeerStep {
    let c = &director.counters;
    if director.settings.mode == DirectorMode::Off || directed_here(head) {
        return PeerStep::Storage;
    }
    let choice = director.choose(asset);
    if choice.peers.is_empty() {
        let counter = if choice.over_bound > 0 {
            &c.over_bound
        } else {
            &c.no_holder
        };
        counter.fetch_add(1, Ordering::Relaxed);
        return PeerStep::Storage;
    }
    if director.settings.mode == DirectorMode::Redirect {
        let peer = &choice.peers[0];
        c.redirect.fetch_add(1, Ordering::Relaxed);
        let query = match head.query.as_deref() {
            Some(q) if !q.is_empty() => format!("?{q}&{HOP_QUERY}"),
            _ => format!("?{HOP_QUERY}"),
        };
        tracing::debug!(%asset, peer = %peer.name, load = peer.load, "director: redirecting to the peer holding the asset");
        return PeerStep::Redirect(format!("http://{}{}{query}", peer.addr, head.path));
    }
    let mut marked = head.clone();
    marked.hop = true;
    let addrs: Vec<_> = choice.peers.iter().map(|p| p.addr).collect();
    let name_of = |addr| {
        choice
            .peers
            .iter()
            .find(|p| p.addr == addr)
            .map_or_else(|| addr.to_string(), |p| p.name.clone())
    };
    match proxy(client, &marked, &addrs, pool, metrics, stall).await {
        ProxyResult::Sent {
            keep_alive,
            lost_on,
            body_bytes,
        } => {
            for addr in lost_on {
                let peer = name_of(addr);
                tracing::info!(%asset, %peer, "director: peer no longer holds the asset (404); tried the next");
                director.mark_stale(&peer, asset);
            }
            c.peer.fetch_add(1, Ordering::Relaxed);
            c.peer_bytes.fetch_add(body_bytes, Ordering::Relaxed);
            PeerStep::Served { keep_alive }
        }
        ProxyResult::Failed { status, message } => {
            for p in &choice.peers {
                director.mark_stale(&p.name, asset);
            }
            c.fallback.fetch_add(1, Ordering::Relaxed);
            tracing::info!(%asset, status, %message, "director: no peer served the asset; going to the storage tier");
            PeerStep::Storage
        }
    }
}

/// A hop-marked request for an asset this edge does not hold: the message of its 404. A file
/// that vanished from under the cache index leaves the index, so the next row says so.
pub fn hop_miss(director: Option<&Director>, cache: Option<&EdgeCache>, asset: &str) -> String {
    if let Some(d) = director {
        d.counters.hop_misses.fetch_add(1, Ordering::Relaxed);
    }
    if let Some(cache) = cache {
        let removed = cache
            .index
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(asset);
        if removed.is_some() {
            tracing::warn!(%asset, "cache file is gone though the index listed it; dropped from the index");
        }
    }
    format!("{asset} is not held here (a peer's director asked; not directed again)")
}
