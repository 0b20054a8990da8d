//! `strata edge` flags of the director (`[director]` in the edge's TOML).

use clap::Args;
use strata_edge::director::settings::{DirectorMode, DirectorSettings};
use strata_wire::state_table::Load;

/// The director: on a miss, peers of the region that hold the asset before the storage tier.
#[derive(Debug, Args)]
pub struct DirectorArgs {
    /// On a miss another edge of the region holds: proxy (fetch from that peer, the default),
    /// redirect (302 to it) or off (storage tier only). Needs a control plane and --region.
    #[arg(long = "director", value_enum)]
    pub mode: Option<DirectorMode>,
    /// Bounded load: peers above (1 + EPSILON) × the region's mean load are passed over.
    #[arg(long = "director-epsilon")]
    pub epsilon: Option<f64>,
}

impl DirectorArgs {
    pub fn apply(&self, settings: &mut DirectorSettings) {
        if let Some(m) = self.mode {
            settings.mode = m;
        }
        if let Some(e) = self.epsilon {
            settings.epsilon = Load::new(e);
        }
    }
}
