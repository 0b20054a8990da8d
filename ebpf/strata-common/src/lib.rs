//! Plain-old-data types shared between strata's eBPF programs and userspace.
//!
//! Every type here is `#[repr(C)]`, has no padding and derives `bytemuck::Pod`, so the kernel
//! side writes it into a map and userspace reads the same bytes back without parsing.
#![no_std]

use bytemuck::{Pod, Zeroable};

/// Name of the per-CPU array that holds one [`ConnCounters`] per CPU.
pub const CONN_COUNTERS_MAP: &str = "CONN_COUNTERS";
/// Name of the array whose slot 0 holds the [`ConnFilter`] the telemetry program applies.
pub const CONN_FILTER_MAP: &str = "CONN_FILTER";
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
        for (mine, theirs) in self.srtt_buckets.iter_mut().zip(other.srtt_buckets.iter()) {
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
