//! Soft progress of transfers: each target's latest offset, total and rate as its edge
//! reported them, kept in memory only. Writing every report to the registry would cost a
//! commit per edge per second for nothing durable: an edge that restarts starts its transfer
//! again, and a control plane that restarts hears the next report within a poll. State changes
//! (and the offset at each) are what the registry keeps.

use std::collections::HashMap;
use std::sync::Mutex;

use serde::Serialize;

/// One target's latest report.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Progress {
    pub offset: u64,
    pub total: u64,
    pub rate_bps: u64,
    /// When the control plane last heard from the target about this job (ms since the epoch).
    pub heard_ms: u64,
    pub source: Option<String>,
}

/// Progress of every job's targets.
#[derive(Debug, Default)]
pub struct ProgressBoard {
    by_job: Mutex<HashMap<String, HashMap<String, Progress>>>,
}

impl ProgressBoard {
    pub fn record(&self, job: &str, server: &str, p: Progress) {
        let mut map = self.by_job.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(job.to_string())
            .or_default()
            .insert(server.to_string(), p);
    }

    /// This job's targets' progress, by server.
    pub fn of(&self, job: &str) -> HashMap<String, Progress> {
        let map = self.by_job.lock().unwrap_or_else(|e| e.into_inner());
        map.get(job).cloned().unwrap_or_default()
    }

    /// Forgets an ended job.
    pub fn forget(&self, job: &str) {
        let mut map = self.by_job.lock().unwrap_or_else(|e| e.into_inner());
        map.remove(job);
    }
}
