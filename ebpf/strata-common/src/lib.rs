//! Plain-old-data types shared between strata's eBPF programs and userspace.
//!
//! Every type here is `#[repr(C)]`, has no padding and derives `bytemuck::Pod`, so the kernel
//! side writes it into a map and userspace reads the same bytes back without parsing.
#![no_std]

use bytemuck::{Pod, Zeroable};

mod body_splice;
pub use body_splice::*;

/// Name of the per-CPU array that holds one [`ConnCounters`] per CPU.
pub const CONN_COUNTERS_MAP: &str = "CONN_COUNTERS";
/// Name of the array whose slot 0 holds the [`ConnFilter`] the telemetry program applies.
pub const CONN_FILTER_MAP: &str = "CONN_FILTER";
/// Name of the LRU hash of per-prefix connection statistics ([`PrefixKey`] → [`PrefixStats`]).
pub const CONN_PREFIXES_MAP: &str = "CONN_PREFIXES";
/// Name of the LRU hash of connection start times, by socket cookie.
pub const CONN_START_MAP: &str = "CONN_START";
/// Client prefixes (and later upstream servers) tracked at once.
pub const CONN_PREFIXES_MAX: u32 = 65_536;

/// Number of buckets in the delivery-rate histograms.
pub const RATE_BUCKETS: usize = 8;
/// Upper bounds of the delivery-rate buckets, in bytes per second (1, 8, 40, 100 Mbit/s,
/// 1, 10, 40 Gbit/s, unbounded).
pub const RATE_BUCKET_BOUNDS_BPS: [u64; RATE_BUCKETS] = [
    125_000,
    1_000_000,
    5_000_000,
    12_500_000,
    125_000_000,
    1_250_000_000,
    5_000_000_000,
    u64::MAX,
];

/// Index of the delivery-rate bucket for `bytes_per_sec`.
pub fn rate_bucket(bytes_per_sec: u64) -> usize {
    let mut i = 0;
    while i < RATE_BUCKETS - 1 {
        if bytes_per_sec < RATE_BUCKET_BOUNDS_BPS[i] {
            return i;
        }
        i += 1;
    }
    RATE_BUCKETS - 1
}

/// What a [`PrefixKey`] aggregates.
pub mod prefix_kind {
    /// Client connections, by /24 (IPv4) or /48 (IPv6) of the client's address.
    pub const CLIENT: u32 = 0;
    /// Storage-tier connections the edge opened, by server address and port.
    pub const UPSTREAM: u32 = 1;
}

/// Name of the hash of storage servers ([`PrefixKey`] of kind UPSTREAM → 1) whose connections
/// the telemetry program measures.
pub const UPSTREAM_SERVERS_MAP: &str = "UPSTREAM_SERVERS";

/// Key of the per-prefix statistics: the masked address (IPv4 mapped into ::ffff:0:0/96).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable, PartialEq, Eq, Hash)]
pub struct PrefixKey {
    pub addr: [u8; 16],
    pub kind: u32,
    /// The server's port (host order) for UPSTREAM keys; 0 for CLIENT keys.
    pub port: u32,
}

/// Statistics of the connections of one prefix (or upstream server). Client connections are
/// added at close; upstream connections count themselves and their handshake RTT when
/// established (pooled connections live long) and add bytes, retransmits and lifetime at close.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable, PartialEq, Eq)]
pub struct PrefixStats {
    pub connections: u64,
    pub bytes_acked: u64,
    pub bytes_received: u64,
    pub srtt_us_sum: u64,
    pub retrans: u64,
    /// Sum of connection lifetimes, microseconds (delivery rate = bytes_acked / this).
    pub duration_us_sum: u64,
    pub srtt_buckets: [u64; SRTT_BUCKETS],
    pub rate_buckets: [u64; RATE_BUCKETS],
}

/// Name of the sock_ops program that counts the edge's client connections.
pub const CONN_TELEMETRY_PROG: &str = "conn_telemetry";

/// Number of buckets in [`ConnCounters::srtt_buckets`]; bucket `i` counts connections whose
/// smoothed RTT at close was below `SRTT_BUCKET_BOUNDS_US[i]` (the last is unbounded).
pub const SRTT_BUCKETS: usize = 8;
/// Upper bounds, in microseconds, of the smoothed-RTT buckets.
pub const SRTT_BUCKET_BOUNDS_US: [u32; SRTT_BUCKETS] =
    [100, 500, 1_000, 5_000, 20_000, 100_000, 500_000, u32::MAX];

/// Which sockets the telemetry program looks at: those whose local port equals `local_port`
/// (host byte order). A zero port disables counting.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable, PartialEq, Eq)]
pub struct ConnFilter {
    pub local_port: u32,
    pub _reserved: u32,
}

/// Per-CPU counters of finished client connections, summed by userspace.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable, PartialEq, Eq)]
pub struct ConnCounters {
    /// Connections that completed the handshake on the filtered port.
    pub established: u64,
    /// Connections that reached TCP_CLOSE.
    pub closed: u64,
    /// Bytes the clients acknowledged (sum over closed connections).
    pub bytes_acked: u64,
    /// Bytes received from the clients (sum over closed connections).
    pub bytes_received: u64,
    /// Sum of smoothed RTTs at close, in microseconds.
    pub srtt_us_sum: u64,
    /// Total retransmitted segments over closed connections.
    pub retrans: u64,
    /// Histogram of smoothed RTT at close; see [`SRTT_BUCKET_BOUNDS_US`].
    pub srtt_buckets: [u64; SRTT_BUCKETS],
    /// Histogram of per-connection delivery rate (bytes acked / lifetime); see
    /// [`RATE_BUCKET_BOUNDS_BPS`].
    pub rate_buckets: [u64; RATE_BUCKETS],
    /// Sum of per-connection delivery rates, bytes per second.
    pub rate_sum: u64,
}

impl ConnCounters {
    /// Adds another CPU's counters into this one.
    pub fn add(&mut self, other: &ConnCounters) {
        self.established += other.established;
        self.closed += other.closed;
        self.bytes_acked += other.bytes_acked;
        self.bytes_received += other.bytes_received;
        self.srtt_us_sum += other.srtt_us_sum;
        self.retrans += other.retrans;
        self.rate_sum += other.rate_sum;
        for (mine, theirs) in self.srtt_buckets.iter_mut().zip(other.srtt_buckets.iter()) {
            *mine += *theirs;
        }
        for (mine, theirs) in self.rate_buckets.iter_mut().zip(other.rate_buckets.iter()) {
            *mine += *theirs;
        }
    }
}

/// Index of the smoothed-RTT bucket for `srtt_us`.
pub fn srtt_bucket(srtt_us: u32) -> usize {
    let mut i = 0;
    while i < SRTT_BUCKETS - 1 {
        if srtt_us < SRTT_BUCKET_BOUNDS_US[i] {
            return i;
        }
        i += 1;
    }
    SRTT_BUCKETS - 1
}

#[cfg(feature = "user")]
mod user {
    // SAFETY: both types are #[repr(C)], contain only integers and have no padding (checked by
    // bytemuck's Pod derive above).
    unsafe impl aya::Pod for super::ConnFilter {}
    unsafe impl aya::Pod for super::ConnCounters {}
    unsafe impl aya::Pod for super::PrefixKey {}
    unsafe impl aya::Pod for super::PrefixStats {}
    unsafe impl aya::Pod for super::SpliceFlow {}
    unsafe impl aya::Pod for super::SpliceEvent {}
    unsafe impl aya::Pod for super::SpliceCounters {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn srtt_bucket_picks_first_bound_above_value() {
        assert_eq!(srtt_bucket(0), 0);
        assert_eq!(srtt_bucket(99), 0);
        assert_eq!(srtt_bucket(100), 1);
        assert_eq!(srtt_bucket(4_999), 3);
        assert_eq!(srtt_bucket(u32::MAX), SRTT_BUCKETS - 1);
    }

    #[test]
    fn conn_counters_add_sums_every_field() {
        let mut a = ConnCounters {
            established: 1,
            closed: 2,
            ..Default::default()
        };
        a.srtt_buckets[3] = 4;
        let mut b = a;
        b.bytes_acked = 10;
        a.add(&b);
        assert_eq!(a.established, 2);
        assert_eq!(a.closed, 4);
        assert_eq!(a.bytes_acked, 10);
        assert_eq!(a.srtt_buckets[3], 8);
    }
}

/// Name of the XDP guard program and its maps.
pub const XDP_GUARD_PROG: &str = "xdp_guard";
pub const GUARD_ALLOW_V4_MAP: &str = "GUARD_ALLOW_V4";
pub const GUARD_BLOCK_V4_MAP: &str = "GUARD_BLOCK_V4";
pub const GUARD_ALLOW_V6_MAP: &str = "GUARD_ALLOW_V6";
pub const GUARD_BLOCK_V6_MAP: &str = "GUARD_BLOCK_V6";
pub const GUARD_CONFIG_MAP: &str = "GUARD_CONFIG";
pub const GUARD_RATE_MAP: &str = "GUARD_RATE";
pub const GUARD_COUNTERS_MAP: &str = "GUARD_COUNTERS";

/// Capacity of each prefix list (LPM trie).
pub const GUARD_PREFIXES_MAX: u32 = 65_536;
/// Sources tracked for rate limiting at once; least recently seen are forgotten first.
pub const GUARD_RATE_SOURCES_MAX: u32 = 131_072;

/// What the guard did with a packet; the index of its per-CPU counter.
pub mod guard_reason {
    /// Passed: no rule matched and the source was within its rates.
    pub const PASSED: u32 = 0;
    /// Passed because the source is on the allowlist (skips every other check).
    pub const PASSED_ALLOWLIST: u32 = 1;
    /// Passed without inspection: not IPv4 or IPv6 (ARP, LLDP, ...).
    pub const PASSED_NOT_IP: u32 = 2;
    /// Dropped: source on the blocklist.
    pub const DROPPED_BLOCKLIST: u32 = 3;
    /// Dropped: source over its SYN (new connection) rate.
    pub const DROPPED_SYN_RATE: u32 = 4;
    /// Dropped: source over its packet rate.
    pub const DROPPED_PACKET_RATE: u32 = 5;
    /// Dropped: truncated or malformed Ethernet/IP/TCP header.
    pub const DROPPED_MALFORMED: u32 = 6;
    /// Number of reasons.
    pub const COUNT: u32 = 7;
    /// Metric label of each reason, by index.
    pub const NAMES: [&str; COUNT as usize] = [
        "passed",
        "passed_allowlist",
        "passed_not_ip",
        "blocklist",
        "syn_rate",
        "packet_rate",
        "malformed",
    ];
}

/// Rate limits of the guard, per source address. A rate of 0 disables that limit.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable, PartialEq, Eq)]
pub struct GuardConfig {
    /// New TCP connections (SYN without ACK) per second, per source.
    pub syn_rate: u32,
    /// SYNs a source may send in a burst.
    pub syn_burst: u32,
    /// Packets per second, per source.
    pub packet_rate: u32,
    /// Packets a source may send in a burst.
    pub packet_burst: u32,
}

/// Token buckets of one source, in thousandths of a token.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable, PartialEq, Eq)]
pub struct RateState {
    pub syn_milli: u64,
    pub packet_milli: u64,
    pub last_ns: u64,
}

/// A source address as a rate-map key: IPv6, or IPv4 mapped into ::ffff:0:0/96.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable, PartialEq, Eq, Hash)]
pub struct SourceKey {
    pub addr: [u8; 16],
}

/// Refills a token bucket (thousandths of a token) for `elapsed_ns` at `rate` per second, up to
/// `burst` tokens. Shared by the eBPF program and its unit tests.
#[inline(always)]
pub fn refill(tokens_milli: u64, elapsed_ns: u64, rate: u32, burst: u32) -> u64 {
    // Past ten seconds every bucket worth having is full; clamping and counting microseconds
    // keep the product below 2^64 (1e7 us * 2^32 < 2^64).
    let elapsed_us = if elapsed_ns > 10_000_000_000 {
        10_000_000
    } else {
        elapsed_ns / 1000
    };
    let add = elapsed_us * rate as u64 / 1000;
    let cap = burst as u64 * 1000;
    let t = tokens_milli + add;
    if t > cap {
        cap
    } else {
        t
    }
}

#[cfg(feature = "user")]
mod user_guard {
    // SAFETY: #[repr(C)], integers only, no padding (checked by bytemuck's Pod derive).
    unsafe impl aya::Pod for super::GuardConfig {}
    unsafe impl aya::Pod for super::RateState {}
    unsafe impl aya::Pod for super::SourceKey {}
}

#[cfg(test)]
mod guard_tests {
    use super::*;

    #[test]
    fn refill_adds_rate_times_time_up_to_burst() {
        assert_eq!(refill(0, 1_000_000_000, 10, 100), 10_000);
        assert_eq!(refill(0, 500_000_000, 10, 100), 5_000);
        assert_eq!(refill(99_000, 1_000_000_000, 10, 100), 100_000);
        assert_eq!(refill(0, u64::MAX, u32::MAX, 5), 5_000);
    }
}
