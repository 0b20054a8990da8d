//! The nameserver's metrics: queries by type and response code, answer latency, and the map
//! version it answers from.

use std::fmt::Write as _;
use std::sync::atomic::AtomicI64;
use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueryLabels {
    qtype: String,
    rcode: String,
    transport: &'static str,
}

#[derive(Debug)]
pub struct DnsMetrics {
    registry: Registry,
    queries: Family<QueryLabels, Counter>,
    latency: Histogram,
    pub map_version: Gauge<i64, AtomicI64>,
    pub truncated: Counter,
}

impl DnsMetrics {
    pub fn new() -> Arc<DnsMetrics> {
        let mut registry = Registry::with_prefix("strata_dns");
        let queries = Family::<QueryLabels, Counter>::default();
        let latency = Histogram::new([1e-5, 2e-5, 5e-5, 1e-4, 2e-4, 5e-4, 1e-3, 5e-3].into_iter());
        let map_version = Gauge::<i64, AtomicI64>::default();
        let truncated = Counter::default();
        registry.register(
            "queries",
            "Queries answered, by type, response code and transport",
            queries.clone(),
        );
        registry.register(
            "answer_seconds",
            "Time to build and send one answer",
            latency.clone(),
        );
        registry.register(
            "map_version",
            "Version of the network map answers come from",
            map_version.clone(),
        );
        registry.register(
            "truncated",
            "UDP answers sent truncated (the client retries over TCP)",
            truncated.clone(),
        );
        Arc::new(DnsMetrics {
            registry,
            queries,
            latency,
            map_version,
            truncated,
        })
    }

    pub fn answered(&self, qtype: &str, rcode: &str, transport: &'static str, seconds: f64) {
        self.queries
            .get_or_create(&QueryLabels {
                qtype: qtype.to_string(),
                rcode: rcode.to_string(),
                transport,
            })
            .inc();
        self.latency.observe(seconds);
    }

    pub fn set_map_version(&self, version: u64) {
        self.map_version.set(version as i64);
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            let _ = writeln!(out, "# encoding metrics failed");
        }
        out
    }
}
