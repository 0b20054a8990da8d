//! This edge's own state row, built every heartbeat: the cache's contents (exact or a Bloom
//! filter) with a version that moves when they change, and the load factor from the edge's
//! open connections, egress bytes per second (its body-byte counters) and CPU (/proc/self/stat),
//! each as a share of its limit (see `LoadFactor::compute`).

use std::hash::{Hash, Hasher};
use std::time::Instant;

use strata_wire::state_table::{CacheSummary, LoadFactor, StateRow};

use super::settings::DirectorSettings;

/// What the previous row was built from.
#[derive(Debug, Default)]
pub struct RowBuilder {
    fingerprint: u64,
    version: u64,
    last: Option<Sample>,
}

#[derive(Clone, Copy, Debug)]
struct Sample {
    at: Instant,
    body_bytes: u64,
    cpu_ticks: u64,
}

/// The edge's inputs for one row.
pub struct RowInputs<'a> {
    /// Every file the cache holds (`tenant/content/asset`, size).
    pub held: &'a [(String, u64)],
    pub connections: u64,
    pub max_connections: u64,
    /// Body bytes sent so far (every path).
    pub body_bytes: u64,
    pub capacity_bps: u64,
}

/// User + system CPU time of this process, in clock ticks.
fn cpu_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after ')'.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

fn ticks_per_second() -> f64 {
    // SAFETY: sysconf has no memory effects.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

impl RowBuilder {
    /// The row for now (name, region and address are set by the control plane from the
    /// edge's record).
    pub fn build(&mut self, settings: &DirectorSettings, inputs: &RowInputs<'_>) -> StateRow {
        let mut assets: Vec<String> = inputs.held.iter().map(|(a, _)| a.clone()).collect();
        assets.sort();
        let mut h = std::collections::hash_map::DefaultHasher::new();
        assets.hash(&mut h);
        let fingerprint = h.finish();
        if fingerprint != self.fingerprint || self.version == 0 {
            self.fingerprint = fingerprint;
            self.version += 1;
        }
        let now = Sample {
            at: Instant::now(),
            body_bytes: inputs.body_bytes,
            cpu_ticks: cpu_ticks().unwrap_or(0),
        };
        let (egress_bps, cpu) = match self.last {
            Some(prev) => {
                let secs = now.at.duration_since(prev.at).as_secs_f64().max(0.001);
                let bytes = now.body_bytes.saturating_sub(prev.body_bytes) as f64;
                let ticks = now.cpu_ticks.saturating_sub(prev.cpu_ticks) as f64;
                let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
                (
                    (bytes * 8.0 / secs) as u64,
                    ticks / ticks_per_second() / secs / cores,
                )
            }
            None => (0, 0.0),
        };
        self.last = Some(now);
        StateRow {
            contents_version: self.version,
            contents: CacheSummary::summarize(&assets, settings.exact_limit, settings.bloom_fp_rate.0),
            load: LoadFactor::compute(
                inputs.connections,
                inputs.max_connections,
                egress_bps,
                inputs.capacity_bps,
                if settings.cpu_in_load { cpu } else { 0.0 },
            ),
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_contents_version_moves_only_when_the_contents_do() {
        let mut b = RowBuilder::default();
        let s = DirectorSettings::default();
        let held = vec![("a/b/c".to_string(), 10)];
        let input = |held| RowInputs {
            held,
            connections: 5,
            max_connections: 10,
            body_bytes: 0,
            capacity_bps: 0,
        };
        let r1 = b.build(&s, &input(&held));
        let r2 = b.build(&s, &input(&held));
        assert_eq!(r1.contents_version, r2.contents_version);
        assert!(r2.load.value.0 >= 0.5, "5 of 10 connections");
        let more = vec![("a/b/c".to_string(), 10), ("a/b/d".to_string(), 1)];
        let r3 = b.build(&s, &input(&more));
        assert_eq!(r3.contents_version, r2.contents_version + 1);
        assert!(r3.contents.contains("a/b/d"));
    }
}
