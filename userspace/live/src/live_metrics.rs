//! The ingest server's Prometheus metrics: publishes by kind, publishes refused by status,
//! bytes in, viewers' requests by kind (the edges' collapsed playlist fetches show up here),
//! streams by phase (read at scrape time).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabels {
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PhaseLabels {
    pub phase: &'static str,
}

/// Counters shared by every request task.
pub struct LiveMetrics {
    registry: Registry,
    /// kind = playlist | segment | delete.
    pub publishes: Family<KindLabels, Counter>,
    pub refused: Family<StatusLabels, Counter>,
    pub bytes_in: Counter,
    /// kind = playlist | segment.
    pub viewer_requests: Family<KindLabels, Counter>,
    pub streams: Family<PhaseLabels, Gauge>,
    pub archived: Counter,
}

impl Default for LiveMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl LiveMetrics {
    pub fn new() -> LiveMetrics {
        let mut registry = Registry::with_prefix("strata_live");
        let m = LiveMetrics {
            registry: Registry::default(),
            publishes: Family::default(),
            refused: Family::default(),
            bytes_in: Counter::default(),
            viewer_requests: Family::default(),
            streams: Family::default(),
            archived: Counter::default(),
        };
        registry.register(
            "publishes",
            "Files published (complete) by kind",
            m.publishes.clone(),
        );
        registry.register(
            "publish_refused",
            "Publish requests refused, by status",
            m.refused.clone(),
        );
        registry.register(
            "publish_bytes",
            "Body bytes received from encoders",
            m.bytes_in.clone(),
        );
        registry.register(
            "viewer_requests",
            "GET/HEAD requests for stream files (edges' playlist fetches, segments) by kind",
            m.viewer_requests.clone(),
        );
        registry.register("streams", "Streams held, by phase", m.streams.clone());
        registry.register(
            "recordings_archived",
            "Recordings placed on on-demand storage",
            m.archived.clone(),
        );
        LiveMetrics { registry, ..m }
    }

    /// The Prometheus text.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
