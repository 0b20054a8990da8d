//! One cost per (block, region), as the seed combines its metrics:
//!
//! `cost = base_cost(region) + rtt_ms × w_rtt + loss% × w_loss + client ms/MiB × w_client
//!         + client errors% × w_errors`,
//!
//! where the RTT and loss come from the region's edges' sock_ops telemetry for the block (the
//! RTT is `unmeasured_rtt_ms` where they measured nothing) and the client figures from
//! `POST /v1/reports`. A region whose edges are all down is no candidate at all.

use super::inputs::{ClientStats, Measured};
use super::settings::CostWeights;

/// A segment's payload, to turn retransmitted segments into a share of bytes.
const SEGMENT_BYTES: f64 = 1448.0;

/// The cost of a region for a block, rounded to a whole number.
pub fn cost(
    base_cost: u64,
    measured: Option<&Measured>,
    client: Option<&ClientStats>,
    w: &CostWeights,
) -> u64 {
    let mut c = base_cost as f64;
    match measured.filter(|m| m.connections > 0.0) {
        Some(m) => {
            c += w.rtt_ms * m.rtt_ms();
            c += w.loss_percent * m.loss_percent(SEGMENT_BYTES);
        }
        None => c += w.rtt_ms * w.unmeasured_rtt_ms,
    }
    if let Some(s) = client.filter(|s| s.fetches > 0.0) {
        c += w.client_ms_per_mib * s.ms_per_mib();
        c += w.client_error_percent * s.error_percent();
    }
    c.round().max(0.0) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measured(rtt_ms: f64, retrans_share: f64) -> Measured {
        let bytes = 10.0 * 1024.0 * 1024.0;
        Measured {
            connections: 10.0,
            srtt_us_sum: rtt_ms * 1000.0 * 10.0,
            retransmits: bytes * retrans_share / SEGMENT_BYTES,
            bytes,
        }
    }

    #[test]
    fn rtt_loss_base_and_client_timings_add_up_and_unmeasured_regions_cost_the_default() {
        let w = CostWeights::default();
        assert_eq!(cost(0, Some(&measured(20.0, 0.0)), None, &w), 20);
        assert_eq!(cost(5, Some(&measured(20.0, 0.01)), None, &w), 5 + 20 + 20);
        assert_eq!(cost(0, None, None, &w), 100);
        let client = ClientStats {
            fetches: 2.0,
            bytes: 2.0 * 1024.0 * 1024.0,
            ms: 400.0,
            errors: 2.0,
        };
        // 200 ms/MiB × 0.1 + 2 errors in 4 attempts (50 %) × 5
        assert_eq!(
            cost(0, Some(&measured(10.0, 0.0)), Some(&client), &w),
            10 + 20 + 250
        );
    }
}
