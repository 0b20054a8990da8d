//! Per-asset demand on an edge (requests and bytes since the last heartbeat), which the control
//! agent reports to syncd. Counted on hits and misses alike.

use std::collections::HashMap;
use std::sync::Mutex;

use strata_wire::heartbeat::AssetDemand;

#[derive(Debug, Default)]
pub struct DemandCounter {
    counts: Mutex<HashMap<String, (u64, u64)>>,
}

impl DemandCounter {
    /// One request for `rel` (`tenant/content/asset`) answered with `bytes` of body.
    pub fn record(&self, rel: String, bytes: u64) {
        let mut c = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let e = c.entry(rel).or_default();
        e.0 += 1;
        e.1 += bytes;
    }

    /// Everything counted since the last call.
    pub fn drain(&self) -> Vec<AssetDemand> {
        let mut c = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        c.drain()
            .map(|(path, (requests, bytes))| AssetDemand {
                path,
                requests,
                bytes,
            })
            .collect()
    }
}
