//! Prometheus metrics of one server (storage or edge): responses by status, body bytes by
//! kernel path, connections, open descriptors.
//!
//! Hot-path counters are plain atomics from prometheus-client; values that only matter at
//! scrape time (open fds) are read by a collector when /metrics is asked for. The other layers
//! bring their own scrape-time collectors (the kernel's eBPF programs, the cache, the upstream
//! pool), which the server hands to [`ServerMetrics::new`]: this module reads none of them.

use std::fmt::Write as _;
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::registry::Registry;

use strata_kernel::body_meter::{BodyMeter, BodyPathLabel};
use strata_kernel::kernel_metrics::gauge;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServerLabels {
    server: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PathLabels {
    path: &'static str,
}

/// All metrics of one server.
#[derive(Debug)]
pub struct ServerMetrics {
    registry: Registry,
    responses: Family<StatusLabels, Counter>,
    body_bytes: Family<PathLabels, Counter>,
    bodies: Family<PathLabels, Counter>,
    connections_open: Gauge,
    connections_total: Counter,
    connections_rejected: Counter,
    timeouts: Counter,
    send_waits: Counter,
    parked: Gauge,
    misses: Counter,
    upstream_errors: Family<ServerLabels, Counter>,
}

impl ServerMetrics {
    /// Creates the registry for a server whose bodies use `body_path`, with the scrape-time
    /// `collectors` of the layers it runs on.
    pub fn new(
        role: &str,
        body_path: BodyPathLabel,
        collectors: Vec<Box<dyn Collector>>,
    ) -> Arc<ServerMetrics> {
        let mut registry = Registry::with_prefix("strata");
        let responses = Family::<StatusLabels, Counter>::default();
        let body_bytes = Family::<PathLabels, Counter>::default();
        let bodies = Family::<PathLabels, Counter>::default();
        let connections_open = Gauge::default();
        let connections_total = Counter::default();
        let connections_rejected = Counter::default();
        let timeouts = Counter::default();
        let send_waits = Counter::default();
        let parked = Gauge::default();
        let misses = Counter::default();
        let upstream_errors = Family::<ServerLabels, Counter>::default();
        registry.register(
            "http_responses",
            "HTTP responses sent, by status code",
            responses.clone(),
        );
        registry.register(
            "body_bytes",
            "Response body bytes sent, by kernel path",
            body_bytes.clone(),
        );
        registry.register("bodies", "Response bodies sent, by kernel path", bodies.clone());
        registry.register(
            "connections_open",
            "Client connections open now",
            connections_open.clone(),
        );
        registry.register(
            "connections",
            "Client connections accepted",
            connections_total.clone(),
        );
        registry.register(
            "connections_rejected",
            "Client connections refused with 503 because max_connections was reached",
            connections_rejected.clone(),
        );
        registry.register(
            "timeouts",
            "Connections closed by a header, idle or send-stall timeout",
            timeouts.clone(),
        );
        registry.register(
            "misses",
            "Requests for assets not in the local store",
            misses.clone(),
        );
        registry.register(
            "upstream_errors",
            "Failed attempts against a storage server (connect, timeout, 5xx, bad head), by server",
            upstream_errors.clone(),
        );
        registry.register(
            "connections_parked",
            "Idle keep-alive connections held by the idle parker (no task of their own)",
            parked.clone(),
        );
        registry.register(
            "send_waits",
            "Times a body send found the client socket full and waited for room (slow clients)",
            send_waits.clone(),
        );
        // Make both paths visible from the first scrape, so a dashboard can tell 0 from absent.
        for path in BodyPathLabel::ALL {
            let _ = body_bytes.get_or_create(&PathLabels { path: path.as_str() });
            let _ = bodies.get_or_create(&PathLabels { path: path.as_str() });
        }
        registry.register_collector(Box::new(ScrapeCollector {
            role: role.to_string(),
            body_path,
        }));
        for collector in collectors {
            registry.register_collector(collector);
        }
        Arc::new(ServerMetrics {
            registry,
            responses,
            body_bytes,
            bodies,
            connections_open,
            connections_total,
            connections_rejected,
            timeouts,
            send_waits,
            parked,
            misses,
            upstream_errors,
        })
    }

    pub fn response(&self, status: u16) {
        crate::request_scope::note_status(status);
        self.responses.get_or_create(&StatusLabels { status }).inc();
    }

    pub fn connection_opened(&self) {
        self.connections_total.inc();
        self.connections_open.inc();
    }

    pub fn connection_closed(&self) {
        self.connections_open.dec();
    }

    pub fn connection_rejected(&self) {
        self.connections_rejected.inc();
    }

    /// Body bytes sent on every path so far (the director's egress figure).
    pub fn body_bytes_total(&self) -> u64 {
        BodyPathLabel::ALL
            .iter()
            .map(|p| {
                self.body_bytes
                    .get_or_create(&PathLabels { path: p.as_str() })
                    .get()
            })
            .sum()
    }

    /// Misses since start.
    pub fn misses_total(&self) -> u64 {
        self.misses.get()
    }

    /// Client connections open now.
    pub fn open_connections(&self) -> u64 {
        self.connections_open.get().max(0) as u64
    }

    pub fn miss(&self) {
        self.misses.inc();
    }

    pub fn upstream_error(&self, server: std::net::SocketAddr) {
        self.upstream_errors
            .get_or_create(&ServerLabels {
                server: server.to_string(),
            })
            .inc();
    }

    /// One more (+1) or one fewer (-1) parked connection.
    pub fn parked(&self, delta: i64) {
        self.parked.inc_by(delta);
    }

    pub fn timeout(&self) {
        self.timeouts.inc();
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            let _ = writeln!(out, "# encoding metrics failed");
        }
        out
    }
}

impl BodyMeter for ServerMetrics {
    fn body_started(&self, path: BodyPathLabel) {
        crate::request_scope::note_body_started(path);
        self.bodies
            .get_or_create(&PathLabels { path: path.as_str() })
            .inc();
    }

    fn body_bytes(&self, path: BodyPathLabel, n: u64) {
        crate::request_scope::note_body_bytes(n);
        self.body_bytes
            .get_or_create(&PathLabels { path: path.as_str() })
            .inc_by(n);
    }

    fn send_wait(&self) {
        self.send_waits.inc();
    }
}

/// Values read at scrape time.
#[derive(Debug)]
struct ScrapeCollector {
    role: String,
    body_path: BodyPathLabel,
}

impl Collector for ScrapeCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let fds = std::fs::read_dir("/proc/self/fd")
            .map(|d| d.count() as i64)
            .unwrap_or(-1);
        gauge(
            &mut encoder,
            "process_open_fds",
            "Open file descriptors of this process",
            fds,
        )?;
        {
            let info = ConstGauge::new(1i64);
            let labels = [
                ("role", self.role.as_str()),
                ("body_path", self.body_path.as_str()),
            ];
            let mut family = encoder.encode_descriptor(
                "server_info",
                "The server's role and the kernel path its bodies take",
                None,
                info.metric_type(),
            )?;
            info.encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }
}
