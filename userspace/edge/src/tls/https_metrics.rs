//! HTTPS metrics of one server: the encryption mode in use (userspace; kernel TLS offload
//! present or not), response bytes by mode, handshakes by protocol version and failed
//! handshakes by reason. Hot-path counts are atomics; the server registers
//! [`HttpsCollector`] when it has an HTTPS listener.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use super::ktls_probe::KtlsSupport;

/// Why a TLS connection ended before its first request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HandshakeFailure {
    /// The client sent a plain HTTP request to the TLS port (answered 400 in plain text).
    PlainHttp,
    /// Not a TLS client hello, or the handshake failed (bad hello, no common version/cipher).
    Handshake,
    /// No complete handshake within the head timeout.
    Timeout,
}

impl HandshakeFailure {
    const ALL: [HandshakeFailure; 3] = [
        HandshakeFailure::PlainHttp,
        HandshakeFailure::Handshake,
        HandshakeFailure::Timeout,
    ];

    fn as_str(self) -> &'static str {
        match self {
            HandshakeFailure::PlainHttp => "plain_http",
            HandshakeFailure::Handshake => "handshake",
            HandshakeFailure::Timeout => "timeout",
        }
    }
}

/// Counters of every HTTPS listener of one server.
#[derive(Debug)]
pub struct HttpsMetrics {
    ktls: KtlsSupport,
    userspace_bytes: AtomicU64,
    tls12: AtomicU64,
    tls13: AtomicU64,
    failures: [AtomicU64; 3],
}

impl HttpsMetrics {
    pub fn new(ktls: KtlsSupport) -> Arc<HttpsMetrics> {
        Arc::new(HttpsMetrics {
            ktls,
            userspace_bytes: AtomicU64::new(0),
            tls12: AtomicU64::new(0),
            tls13: AtomicU64::new(0),
            failures: Default::default(),
        })
    }

    /// `n` response bytes (heads and bodies) were encrypted in userspace.
    pub fn encrypted_in_userspace(&self, n: u64) {
        self.userspace_bytes.fetch_add(n, Ordering::Relaxed);
    }

    /// Response bytes encrypted in userspace so far.
    pub fn userspace_bytes(&self) -> u64 {
        self.userspace_bytes.load(Ordering::Relaxed)
    }

    /// A handshake completed with `version`.
    pub fn handshake(&self, version: Option<rustls::ProtocolVersion>) {
        match version {
            Some(rustls::ProtocolVersion::TLSv1_2) => self.tls12.fetch_add(1, Ordering::Relaxed),
            _ => self.tls13.fetch_add(1, Ordering::Relaxed),
        };
    }

    pub fn failure(&self, why: HandshakeFailure) {
        let i = HandshakeFailure::ALL
            .iter()
            .position(|f| *f == why)
            .unwrap_or_default();
        self.failures[i].fetch_add(1, Ordering::Relaxed);
    }
}

/// Encodes [`HttpsMetrics`] at scrape time.
#[derive(Debug)]
pub struct HttpsCollector(pub Arc<HttpsMetrics>);

impl Collector for HttpsCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let m = &self.0;
        let available = ConstGauge::new(i64::from(m.ktls == KtlsSupport::Available));
        available.encode(encoder.encode_descriptor(
            "https_ktls_available",
            "1 if the kernel has the TLS ULP (CONFIG_TLS); bodies are encrypted in userspace either way",
            None,
            available.metric_type(),
        )?)?;
        let mode = ConstGauge::new(1i64);
        let mut family = encoder.encode_descriptor(
            "https_encryption_mode",
            "Where HTTPS responses are encrypted (userspace: rustls)",
            None,
            mode.metric_type(),
        )?;
        mode.encode(family.encode_family(&[("mode", "userspace")])?)?;
        let bytes = ConstCounter::new(m.userspace_bytes());
        let mut family = encoder.encode_descriptor(
            "https_bytes",
            "HTTPS response bytes (heads and bodies, before encryption), by where they were encrypted",
            None,
            bytes.metric_type(),
        )?;
        bytes.encode(family.encode_family(&[("mode", "userspace")])?)?;
        let mut family = encoder.encode_descriptor(
            "https_handshakes",
            "TLS handshakes completed, by protocol version",
            None,
            prometheus_client::metrics::MetricType::Counter,
        )?;
        for (version, n) in [("tls1.2", &m.tls12), ("tls1.3", &m.tls13)] {
            ConstCounter::new(n.load(Ordering::Relaxed))
                .encode(family.encode_family(&[("version", version)])?)?;
        }
        let mut family = encoder.encode_descriptor(
            "https_handshake_failures",
            "TLS connections closed before a request: plain HTTP sent to the TLS port, a bad client hello or failed handshake, or the head timeout",
            None,
            prometheus_client::metrics::MetricType::Counter,
        )?;
        for (why, n) in HandshakeFailure::ALL.iter().zip(&m.failures) {
            ConstCounter::new(n.load(Ordering::Relaxed))
                .encode(family.encode_family(&[("reason", why.as_str())])?)?;
        }
        Ok(())
    }
}
