//! The cache's metrics, read at scrape time: hits, fills by result, evictions, usage and
//! capacity. The server registers [`CacheCollector`] when it runs a cache.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use strata_kernel::kernel_metrics::{counter, gauge};

use super::EdgeCache;

/// The edge cache's metrics.
#[derive(Debug)]
pub struct CacheCollector(pub Arc<EdgeCache>);

impl Collector for CacheCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let encoder = &mut encoder;
        let cache = &self.0;
        let c = &cache.counters;
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        counter(
            encoder,
            "cache_hits",
            "Requests served from the edge's own files",
            load(&c.hits),
        )?;
        {
            let mut family = encoder.encode_descriptor(
                "cache_fills",
                "Background fills of admitted assets, by result",
                None,
                prometheus_client::metrics::MetricType::Counter,
            )?;
            for (result, value) in [
                ("started", load(&c.fills_started)),
                ("completed", load(&c.fills_completed)),
                ("failed", load(&c.fills_failed)),
            ] {
                ConstCounter::new(value).encode(family.encode_family(&[("result", result)])?)?;
            }
        }
        {
            let mut family = encoder.encode_descriptor(
                "cache_admissions",
                "Misses decided by admission: admitted (a fill started) or rejected (shortest pair interval not below the threshold, or no pair yet)",
                None,
                prometheus_client::metrics::MetricType::Counter,
            )?;
            for (result, value) in [("admitted", load(&c.admitted)), ("rejected", load(&c.rejected))] {
                ConstCounter::new(value).encode(family.encode_family(&[("result", result)])?)?;
            }
        }
        {
            let mut family = encoder.encode_descriptor(
                "cache_miss_served",
                "Misses by how they were served: own_fill (the viewer's fetch fills the cache), joined_fill (read-while-writer on a fill already running), proxied (not admitted)",
                None,
                prometheus_client::metrics::MetricType::Counter,
            )?;
            for (via, value) in [
                ("own_fill", load(&c.served_own_fill)),
                ("joined_fill", load(&c.served_joined_fill)),
                ("proxied", load(&c.served_proxied)),
            ] {
                ConstCounter::new(value).encode(family.encode_family(&[("via", via)])?)?;
            }
        }
        gauge(
            encoder,
            "cache_admit_threshold_milliseconds",
            "Admission threshold last used: a pair of requests starting closer than this admits the asset",
            load(&c.threshold_ms) as i64,
        )?;
        let (running, written) = cache.fills.totals();
        gauge(
            encoder,
            "cache_fills_running",
            "Fills in progress",
            running as i64,
        )?;
        gauge(
            encoder,
            "cache_fill_written_bytes",
            "Body bytes the fills in progress have written so far",
            written as i64,
        )?;
        counter(
            encoder,
            "cache_evictions",
            "Files evicted (least recently used) to make room",
            load(&c.evictions),
        )?;
        counter(
            encoder,
            "job_peer_bytes_sent",
            "Bytes sent to peer edges by the distribution jobs' transfer endpoint",
            load(&c.peer_bytes_sent),
        )?;
        gauge(
            encoder,
            "cache_pinned_files",
            "Files a distribution job pinned (exempt from eviction)",
            cache.pins.len() as i64,
        )?;
        let (files, bytes) = cache.usage();
        gauge(encoder, "cache_bytes", "Bytes the edge cache holds", bytes as i64)?;
        gauge(encoder, "cache_files", "Files the edge cache holds", files as i64)?;
        gauge(
            encoder,
            "cache_capacity_bytes",
            "Bytes the edge cache may hold",
            cache.settings.capacity as i64,
        )
    }
}
