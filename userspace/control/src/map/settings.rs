//! `strata control serve` settings of the map maker: how often it solves, how many candidate
//! regions a block gets, what a DNS query weighs as load, and the weights that turn
//! measurements into one cost per (block, region).

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The weights of the cost of serving a block from a region (see the `costs` module).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CostWeights {
    /// Per millisecond of smoothed RTT the region's edges measured to the block.
    pub rtt_ms: f64,
    /// Per percent of bytes retransmitted on those connections.
    pub loss_percent: f64,
    /// Per millisecond a client of the block reported for one MiB from the region.
    pub client_ms_per_mib: f64,
    /// Per percent of a client's fetches from the region that failed.
    pub client_error_percent: f64,
    /// The RTT assumed where the region has measured nothing for the block.
    pub unmeasured_rtt_ms: f64,
}

impl Default for CostWeights {
    fn default() -> Self {
        CostWeights {
            rtt_ms: 1.0,
            loss_percent: 20.0,
            client_ms_per_mib: 0.1,
            client_error_percent: 5.0,
            unmeasured_rtt_ms: 100.0,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MapSettings {
    /// Time between two solves.
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    /// Candidate regions per block (the cheapest usable ones).
    pub candidates: usize,
    /// Load one DNS query per interval stands for (a viewer about to stream), bits/s.
    pub load_per_query_bps: u64,
    /// Share of a measurement kept from one solve to the next (0..1).
    pub keep: f64,
    pub weights: CostWeights,
}

impl Default for MapSettings {
    fn default() -> Self {
        MapSettings {
            interval: Duration::from_secs(10),
            candidates: 5,
            load_per_query_bps: 2_000_000,
            keep: 0.5,
            weights: CostWeights::default(),
        }
    }
}
