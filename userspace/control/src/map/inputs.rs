//! What the map maker learns between two solves: per (block, region) what the region's edges'
//! connection telemetry measured (differences of the running totals each heartbeat carries),
//! bytes served per block, DNS queries per block, client-reported timings per (block, region),
//! and each edge's open connections. Measurements fade by `keep` at each solve, so the map
//! follows the network as it changes; what has faded to nothing is forgotten.

use std::collections::HashMap;

use strata_wire::heartbeat::{BlockTelemetry, EdgeReport};

/// Connection telemetry of one (block, region).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Measured {
    pub connections: f64,
    pub srtt_us_sum: f64,
    pub retransmits: f64,
    pub bytes: f64,
}

impl Measured {
    pub fn rtt_ms(&self) -> f64 {
        if self.connections <= 0.0 {
            return 0.0;
        }
        self.srtt_us_sum / self.connections / 1000.0
    }

    /// Retransmitted bytes as a percentage of bytes delivered.
    pub fn loss_percent(&self, segment_bytes: f64) -> f64 {
        if self.bytes <= 0.0 {
            return 0.0;
        }
        (self.retransmits * segment_bytes / self.bytes * 100.0).min(100.0)
    }

    fn fade(&mut self, keep: f64) {
        self.connections *= keep;
        self.srtt_us_sum *= keep;
        self.retransmits *= keep;
        self.bytes *= keep;
    }
}

/// Client-reported timings of one (block, region).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ClientStats {
    pub fetches: f64,
    pub bytes: f64,
    pub ms: f64,
    pub errors: f64,
}

impl ClientStats {
    pub fn ms_per_mib(&self) -> f64 {
        if self.bytes <= 0.0 {
            return 0.0;
        }
        self.ms / (self.bytes / (1024.0 * 1024.0))
    }

    pub fn error_percent(&self) -> f64 {
        let all = self.fetches + self.errors;
        if all <= 0.0 {
            return 0.0;
        }
        self.errors / all * 100.0
    }

    fn fade(&mut self, keep: f64) {
        self.fetches *= keep;
        self.bytes *= keep;
        self.ms *= keep;
        self.errors *= keep;
    }
}

/// Below this many (faded) connections or fetches a measurement is forgotten.
const FORGET_BELOW: f64 = 0.01;

/// Everything observed since the map maker started, faded per solve.
#[derive(Debug, Default)]
pub struct MapInputs {
    /// Edge → block → the running totals of its last heartbeat.
    last_totals: HashMap<String, HashMap<String, BlockTelemetry>>,
    /// (block, region) → telemetry.
    pub measured: HashMap<(String, String), Measured>,
    /// (block, region) → client timings.
    pub client: HashMap<(String, String), ClientStats>,
    /// Block → bytes delivered since the last solve.
    pub bytes_since: HashMap<String, u64>,
    /// Block → DNS queries since the last solve.
    pub queries_since: HashMap<String, u64>,
    /// Edge → open client connections at its last heartbeat.
    pub edge_load: HashMap<String, u64>,
    /// Block → smoothed load, bits/s.
    pub load_bps: HashMap<String, f64>,
}

impl MapInputs {
    /// One edge heartbeat: telemetry differences since its previous one.
    pub fn observe_edge(&mut self, edge: &str, region: Option<&str>, report: &EdgeReport) {
        self.edge_load.insert(edge.to_string(), report.open_connections);
        let last = self.last_totals.entry(edge.to_string()).or_default();
        for now in &report.blocks {
            let before = last.get(&now.prefix);
            // A total below the last one means the edge restarted: count from zero.
            let restarted = before.is_some_and(|b| now.connections < b.connections);
            let base = match before {
                Some(b) if !restarted => b.clone(),
                _ => BlockTelemetry::default(),
            };
            let connections = now.connections.saturating_sub(base.connections);
            if connections > 0 {
                let bytes = now.bytes_acked.saturating_sub(base.bytes_acked);
                *self.bytes_since.entry(now.prefix.clone()).or_default() += bytes;
                if let Some(region) = region {
                    let m = self
                        .measured
                        .entry((now.prefix.clone(), region.to_string()))
                        .or_default();
                    m.connections += connections as f64;
                    m.bytes += bytes as f64;
                    m.retransmits += now.retransmits.saturating_sub(base.retransmits) as f64;
                    m.srtt_us_sum += now.srtt_us_sum.saturating_sub(base.srtt_us_sum) as f64;
                }
            }
            last.insert(now.prefix.clone(), now.clone());
        }
    }

    /// A client's timings for one server of `region`.
    pub fn observe_client(&mut self, block: &str, region: &str, bytes: u64, ms: u64, errors: u64) {
        let s = self
            .client
            .entry((block.to_string(), region.to_string()))
            .or_default();
        if bytes > 0 {
            s.fetches += 1.0;
            s.bytes += bytes as f64;
            s.ms += ms as f64;
        }
        s.errors += errors as f64;
    }

    /// DNS queries a nameserver answered for `block`.
    pub fn observe_queries(&mut self, block: &str, queries: u64) {
        *self.queries_since.entry(block.to_string()).or_default() += queries;
    }

    /// Turns what arrived since the last solve into loads (bits/s over `interval_s`), fades
    /// every measurement by `keep`, and forgets what faded away.
    pub fn roll(&mut self, interval_s: f64, load_per_query_bps: u64, keep: f64) {
        let interval_s = interval_s.max(0.001);
        let mut fresh: HashMap<String, f64> = HashMap::new();
        for (block, bytes) in self.bytes_since.drain() {
            *fresh.entry(block).or_default() += bytes as f64 * 8.0 / interval_s;
        }
        for (block, queries) in self.queries_since.drain() {
            *fresh.entry(block).or_default() += queries as f64 * load_per_query_bps as f64;
        }
        for load in self.load_bps.values_mut() {
            *load *= keep;
        }
        for (block, new) in fresh {
            match self.load_bps.get_mut(&block) {
                Some(load) => *load += new * (1.0 - keep),
                // A block's first measurement counts in full.
                None => {
                    self.load_bps.insert(block, new);
                }
            }
        }
        self.load_bps.retain(|_, l| *l >= 1.0);
        self.measured.retain(|_, m| {
            m.fade(keep);
            m.connections >= FORGET_BELOW
        });
        self.client.retain(|_, s| {
            s.fade(keep);
            s.fetches + s.errors >= FORGET_BELOW
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(prefix: &str, connections: u64, bytes: u64, srtt_ms: u64) -> BlockTelemetry {
        BlockTelemetry {
            prefix: prefix.into(),
            connections,
            bytes_acked: bytes,
            retransmits: 0,
            srtt_us_sum: srtt_ms * 1000 * connections,
        }
    }

    #[test]
    fn heartbeats_count_only_what_changed_and_a_restarted_edge_counts_from_zero() {
        let mut inputs = MapInputs::default();
        let mut report = EdgeReport {
            blocks: vec![block("10.1.0.0/24", 2, 1000, 10)],
            ..Default::default()
        };
        inputs.observe_edge("e1", Some("west"), &report);
        report.blocks = vec![block("10.1.0.0/24", 5, 4000, 10)];
        inputs.observe_edge("e1", Some("west"), &report);
        let m = &inputs.measured[&("10.1.0.0/24".to_string(), "west".to_string())];
        assert_eq!(m.connections, 5.0);
        assert_eq!(m.bytes, 4000.0);
        assert!((m.rtt_ms() - 10.0).abs() < 1e-9);
        report.blocks = vec![block("10.1.0.0/24", 1, 100, 10)];
        inputs.observe_edge("e1", Some("west"), &report);
        let m = &inputs.measured[&("10.1.0.0/24".to_string(), "west".to_string())];
        assert_eq!(m.connections, 6.0);
        assert_eq!(inputs.bytes_since["10.1.0.0/24"], 4100);
    }

    #[test]
    fn loads_come_from_bytes_and_queries_and_fade_when_nothing_more_arrives() {
        let mut inputs = MapInputs::default();
        inputs.bytes_since.insert("10.1.0.0/24".into(), 1_250_000); // 10 Mbit over 1 s
        inputs.observe_queries("10.2.0.0/24", 3);
        inputs.roll(1.0, 2_000_000, 0.5);
        assert_eq!(inputs.load_bps["10.1.0.0/24"].round(), 10_000_000.0);
        assert_eq!(inputs.load_bps["10.2.0.0/24"].round(), 6_000_000.0);
        inputs.bytes_since.insert("10.1.0.0/24".into(), 0);
        inputs.roll(1.0, 2_000_000, 0.5);
        assert_eq!(inputs.load_bps["10.1.0.0/24"].round(), 5_000_000.0);
        for _ in 0..40 {
            inputs.roll(1.0, 2_000_000, 0.5);
        }
        assert!(inputs.load_bps.is_empty(), "{:?}", inputs.load_bps);
    }
}
