//! `[director]`: the director's mode, its load bound and how a cache's contents are summarized.

use serde::{Deserialize, Serialize};
use strata_wire::state_table::Load;

/// What the director does with a miss some peer of the region holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum DirectorMode {
    /// Fetch it from the peer (which serves it as a local hit) and relay it.
    #[default]
    Proxy,
    /// Answer 302 to the peer.
    Redirect,
    /// No director: misses go to the storage tier.
    Off,
}

/// `[director]` (edge under a control plane, with a region).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DirectorSettings {
    pub mode: DirectorMode,
    /// Bounded load: holders above (1 + epsilon) × the region's mean load are passed over.
    pub epsilon: Load,
    /// No holder at or below this load is passed over, whatever the mean: on an idle region
    /// the relative bound would only follow noise (an edge that just sent one file is "twice
    /// the mean"). The analogue of bounded-load hashing's rounding up to whole connections.
    pub load_floor: Load,
    /// Whether the process's CPU share counts in the load factor. `strata pop` turns it off:
    /// its edges share one process, so one edge's CPU cannot be told from another's.
    pub cpu_in_load: bool,
    /// Caches holding at most this many files publish the exact list; larger ones a Bloom filter.
    pub exact_limit: usize,
    /// The false-positive rate the Bloom filter is sized for.
    pub bloom_fp_rate: Load,
}

impl Default for DirectorSettings {
    fn default() -> Self {
        DirectorSettings {
            mode: DirectorMode::Proxy,
            epsilon: Load(0.25),
            load_floor: Load(0.1),
            cpu_in_load: true,
            exact_limit: 4096,
            bloom_fp_rate: Load(0.01),
        }
    }
}
