//! `miss`: what an edge does when an asset is not in its cache (the seed's SRV_PROXY flag).

use serde::{Deserialize, Serialize};

/// What an edge does on a miss.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum MissPolicy {
    /// Fetch it from the storage tier and relay it.
    Proxy,
    /// Answer 302 to a storage server that holds it.
    Redirect,
    /// Answer 404.
    #[default]
    Error,
}
