//! Prometheus metrics of one server (storage or edge): responses by status, body bytes by
//! kernel path, connections, open descriptors, and the eBPF connection counters.
//!
//! Hot-path counters are plain atomics from prometheus-client; values that only matter at
//! scrape time (open fds, eBPF maps) are read by a collector when /metrics is asked for.

use std::fmt::Write as _;
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::registry::Registry;

use crate::cache::EdgeCache;
use crate::kernel::KernelPrograms;
use crate::upstream::pool::UpstreamPool;
use strata_common::{guard_reason, ConnCounters, RATE_BUCKET_BOUNDS_BPS, SRTT_BUCKET_BOUNDS_US};

/// The kernel path a response body took.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BodyPathLabel {
    IoUringSplice,
    Sendfile,
    /// Proxied miss, body moved socket → socket by the sockmap programs.
    ProxySockmap,
    /// Proxied miss, body moved socket → pipe → socket with splice(2).
    ProxySplice,
    /// Proxied miss, body copied through userspace (the last fallback).
    ProxyCopy,
}

impl BodyPathLabel {
    pub fn as_str(self) -> &'static str {
        match self {
            BodyPathLabel::IoUringSplice => "io_uring_splice",
            BodyPathLabel::Sendfile => "sendfile",
            BodyPathLabel::ProxySockmap => "proxy_sockmap",
            BodyPathLabel::ProxySplice => "proxy_splice",
            BodyPathLabel::ProxyCopy => "proxy_copy",
        }
    }
}

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
    /// Creates the registry for a server whose bodies use `body_path`.
    pub fn new(
        role: &str,
        body_path: BodyPathLabel,
        programs: KernelPrograms,
        pool: Option<Arc<UpstreamPool>>,
        cache: Option<Arc<EdgeCache>>,
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
        for path in [
            BodyPathLabel::IoUringSplice,
            BodyPathLabel::Sendfile,
            BodyPathLabel::ProxySockmap,
            BodyPathLabel::ProxySplice,
            BodyPathLabel::ProxyCopy,
        ] {
            let _ = body_bytes.get_or_create(&PathLabels { path: path.as_str() });
            let _ = bodies.get_or_create(&PathLabels { path: path.as_str() });
        }
        registry.register_collector(Box::new(ScrapeCollector {
            role: role.to_string(),
            body_path,
            programs,
            pool,
            cache,
        }));
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
        self.responses.get_or_create(&StatusLabels { status }).inc();
    }

    pub fn body_started(&self, path: BodyPathLabel) {
        self.bodies
            .get_or_create(&PathLabels { path: path.as_str() })
            .inc();
    }

    pub fn body_bytes(&self, path: BodyPathLabel, n: u64) {
        self.body_bytes
            .get_or_create(&PathLabels { path: path.as_str() })
            .inc_by(n);
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

    pub fn send_wait(&self) {
        self.send_waits.inc();
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

/// Values read at scrape time.
#[derive(Debug)]
struct ScrapeCollector {
    role: String,
    body_path: BodyPathLabel,
    programs: KernelPrograms,
    pool: Option<Arc<UpstreamPool>>,
    cache: Option<Arc<EdgeCache>>,
}

fn gauge(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: i64) -> Result<(), std::fmt::Error> {
    let g = ConstGauge::new(value);
    g.encode(encoder.encode_descriptor(name, help, None, g.metric_type())?)
}

fn counter(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: u64,
) -> Result<(), std::fmt::Error> {
    let c = ConstCounter::new(value);
    c.encode(encoder.encode_descriptor(name, help, None, c.metric_type())?)
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
        self.encode_guard(&mut encoder)?;
        self.encode_proxy(&mut encoder)?;
        self.encode_cache(&mut encoder)?;
        let loaded = i64::from(self.programs.telemetry.is_some());
        gauge(
            &mut encoder,
            "ebpf_conn_telemetry_loaded",
            "1 if the sock_ops telemetry program is attached",
            loaded,
        )?;
        if let Some(t) = &self.programs.telemetry {
            match t.counters() {
                Ok(c) => {
                    encode_conn_histograms(&mut encoder, &c)?;
                    counter(
                        &mut encoder,
                        "tcp_established",
                        "Client connections established (eBPF sock_ops)",
                        c.established,
                    )?;
                    counter(
                        &mut encoder,
                        "tcp_closed",
                        "Client connections closed (eBPF sock_ops)",
                        c.closed,
                    )?;
                    counter(
                        &mut encoder,
                        "tcp_bytes_acked",
                        "Bytes acknowledged by clients on closed connections (eBPF)",
                        c.bytes_acked,
                    )?;
                    counter(
                        &mut encoder,
                        "tcp_bytes_received",
                        "Bytes received from clients on closed connections (eBPF)",
                        c.bytes_received,
                    )?;
                    counter(
                        &mut encoder,
                        "tcp_retransmits",
                        "Segments retransmitted on closed client connections (eBPF)",
                        c.retrans,
                    )?;
                    counter(
                        &mut encoder,
                        "tcp_srtt_us_sum",
                        "Sum of smoothed RTT at close, microseconds (eBPF)",
                        c.srtt_us_sum,
                    )?;
                }
                Err(e) => tracing::warn!(error = %e, "reading eBPF connection counters failed"),
            }
        }
        Ok(())
    }
}

impl ScrapeCollector {
    /// The edge cache: hits, fills, evictions, usage.
    fn encode_cache(&self, encoder: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(cache) = &self.cache else {
            return Ok(());
        };
        let c = &cache.counters;
        let load = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
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
        counter(
            encoder,
            "cache_evictions",
            "Files evicted (least recently used) to make room",
            load(&c.evictions),
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

    /// The upstream pool's size and the sockmap programs' totals.
    fn encode_proxy(&self, encoder: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        if let Some(pool) = &self.pool {
            gauge(
                encoder,
                "upstream_idle_connections",
                "Idle keep-alive connections to storage servers in the pool",
                pool.idle_total() as i64,
            )?;
        }
        gauge(
            encoder,
            "sockmap_loaded",
            "1 if proxied bodies move through the sockmap programs",
            i64::from(self.programs.splice.is_some()),
        )?;
        let Some(splice) = &self.programs.splice else {
            return Ok(());
        };
        let c = splice.counters();
        counter(
            encoder,
            "sockmap_redirected_bytes",
            "Body bytes the sk_skb verdict redirected from storage sockets to client sockets",
            c.redirected_bytes,
        )?;
        counter(
            encoder,
            "sockmap_messages",
            "Messages (of at most 64 KiB) the stream parser cut and the verdict redirected",
            c.messages,
        )?;
        counter(
            encoder,
            "sockmap_excess_bytes",
            "Bytes storage servers sent past the announced body, dropped in the kernel",
            c.excess_bytes,
        )?;
        counter(
            encoder,
            "sockmap_redirect_failures",
            "Redirects the kernel refused (client socket gone)",
            c.redirect_failures,
        )?;
        gauge(
            encoder,
            "sockmap_in_flight_bytes",
            "Bytes granted to sockmap flows and not yet in the client sockets",
            splice.in_flight() as i64,
        )
    }

    /// The XDP guard's state and its per-reason packet counters.
    fn encode_guard(&self, encoder: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(guard) = &self.programs.guard else {
            return gauge(encoder, "xdp_guard_attached", "1 if the XDP guard is attached", 0);
        };
        let attached = ConstGauge::new(i64::from(guard.attached().is_some()));
        let (interface, mode) = guard.attached().unwrap_or(("", ""));
        let mut family = encoder.encode_descriptor(
            "xdp_guard_attached",
            "1 if the XDP guard is attached, with its interface and mode (native or generic)",
            None,
            attached.metric_type(),
        )?;
        attached.encode(family.encode_family(&[("interface", interface), ("mode", mode)])?)?;
        match guard.counters() {
            Ok(counts) => {
                let mut family = encoder.encode_descriptor(
                    "xdp_packets",
                    "Packets seen by the XDP guard, by verdict and reason",
                    None,
                    prometheus_client::metrics::MetricType::Counter,
                )?;
                for (i, n) in counts.iter().enumerate() {
                    let name = guard_reason::NAMES[i];
                    let verdict = if name.starts_with("passed") {
                        "pass"
                    } else {
                        "drop"
                    };
                    let c = ConstCounter::new(*n);
                    c.encode(family.encode_family(&[("verdict", verdict), ("reason", name)])?)?;
                }
            }
            Err(e) => tracing::warn!(error = %e, "reading XDP guard counters failed"),
        }
        Ok(())
    }
}

/// Histogram buckets as prometheus-client encodes them: per-bucket counts (it accumulates) and
/// upper bounds, the last being f64::MAX (written as +Inf).
fn buckets(counts: &[u64], bounds: impl Iterator<Item = f64>) -> Vec<(f64, u64)> {
    counts
        .iter()
        .zip(bounds)
        .enumerate()
        .map(|(i, (c, b))| (if i + 1 == counts.len() { f64::MAX } else { b }, *c))
        .collect()
}

/// The RTT and delivery-rate histograms of closed client connections.
fn encode_conn_histograms(encoder: &mut DescriptorEncoder, c: &ConnCounters) -> Result<(), std::fmt::Error> {
    let srtt = buckets(
        &c.srtt_buckets,
        SRTT_BUCKET_BOUNDS_US.iter().map(|us| f64::from(*us) / 1e6),
    );
    let mut m = encoder.encode_descriptor(
        "tcp_srtt_seconds",
        "Smoothed RTT of client connections at close (eBPF sock_ops)",
        None,
        prometheus_client::metrics::MetricType::Histogram,
    )?;
    m.encode_histogram::<()>(c.srtt_us_sum as f64 / 1e6, c.closed, &srtt, None)?;
    let rate = buckets(&c.rate_buckets, RATE_BUCKET_BOUNDS_BPS.iter().map(|b| *b as f64));
    let mut m = encoder.encode_descriptor(
        "tcp_delivery_rate_bytes_per_second",
        "Bytes acknowledged per second of lifetime, per client connection (eBPF sock_ops)",
        None,
        prometheus_client::metrics::MetricType::Histogram,
    )?;
    m.encode_histogram::<()>(c.rate_sum as f64, c.closed, &rate, None)
}
