//! The kernel layer's metrics, read at scrape time: the XDP guard's state and per-reason
//! packet counters, the sockmap programs' totals, and the sock_ops telemetry's connection
//! counters and histograms. A server registers [`KernelCollector`] with its registry.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use strata_common::{guard_reason, ConnCounters, RATE_BUCKET_BOUNDS_BPS, SRTT_BUCKET_BOUNDS_US};

use crate::KernelPrograms;

/// Encodes one gauge read at scrape time.
pub fn gauge(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: i64,
) -> Result<(), std::fmt::Error> {
    let g = ConstGauge::new(value);
    g.encode(encoder.encode_descriptor(name, help, None, g.metric_type())?)
}

/// Encodes one counter read at scrape time.
pub fn counter(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: u64,
) -> Result<(), std::fmt::Error> {
    let c = ConstCounter::new(value);
    c.encode(encoder.encode_descriptor(name, help, None, c.metric_type())?)
}

/// The eBPF programs' metrics.
#[derive(Debug)]
pub struct KernelCollector {
    programs: KernelPrograms,
}

impl KernelCollector {
    pub fn new(programs: KernelPrograms) -> KernelCollector {
        KernelCollector { programs }
    }
}

impl Collector for KernelCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        self.encode_guard(&mut encoder)?;
        self.encode_sockmap(&mut encoder)?;
        self.encode_telemetry(&mut encoder)
    }
}

impl KernelCollector {
    /// The sockmap body splice: loaded or not, and its totals.
    fn encode_sockmap(&self, encoder: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
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

    /// The sock_ops telemetry: loaded or not, and its connection counters.
    fn encode_telemetry(&self, encoder: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let loaded = i64::from(self.programs.telemetry.is_some());
        gauge(
            encoder,
            "ebpf_conn_telemetry_loaded",
            "1 if the sock_ops telemetry program is attached",
            loaded,
        )?;
        if let Some(t) = &self.programs.telemetry {
            match t.counters() {
                Ok(c) => {
                    encode_conn_histograms(encoder, &c)?;
                    counter(
                        encoder,
                        "tcp_established",
                        "Client connections established (eBPF sock_ops)",
                        c.established,
                    )?;
                    counter(
                        encoder,
                        "tcp_closed",
                        "Client connections closed (eBPF sock_ops)",
                        c.closed,
                    )?;
                    counter(
                        encoder,
                        "tcp_bytes_acked",
                        "Bytes acknowledged by clients on closed connections (eBPF)",
                        c.bytes_acked,
                    )?;
                    counter(
                        encoder,
                        "tcp_bytes_received",
                        "Bytes received from clients on closed connections (eBPF)",
                        c.bytes_received,
                    )?;
                    counter(
                        encoder,
                        "tcp_retransmits",
                        "Segments retransmitted on closed client connections (eBPF)",
                        c.retrans,
                    )?;
                    counter(
                        encoder,
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
