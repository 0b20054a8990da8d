//! What one control-plane instance learned since its last roll, as it publishes it in the
//! registry (`map/inputs/{instance}`) so that the leader's solve sees every instance's
//! heartbeats, client reports and nameserver counts. Each instance saw a different share of
//! them, so the leader sums the instances' measurements (an edge's open connections come from
//! the freshest snapshot naming the edge); snapshots older than a few intervals are the
//! leftovers of an instance that stopped, and are left out.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::inputs::{ClientStats, MapInputs, Measured};

/// Registry prefix of the instances' snapshots.
pub const INPUTS_PREFIX: &str = "map/inputs/";

/// One instance's rolled inputs.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct InputsSnapshot {
    pub at_unix: u64,
    pub measured: Vec<(String, String, Measured)>,
    pub client: Vec<(String, String, ClientStats)>,
    pub load_bps: Vec<(String, f64)>,
    pub edge_load: Vec<(String, u64)>,
}

impl InputsSnapshot {
    pub fn of(inputs: &MapInputs, at_unix: u64) -> InputsSnapshot {
        InputsSnapshot {
            at_unix,
            measured: inputs
                .measured
                .iter()
                .map(|((b, r), m)| (b.clone(), r.clone(), m.clone()))
                .collect(),
            client: inputs
                .client
                .iter()
                .map(|((b, r), c)| (b.clone(), r.clone(), c.clone()))
                .collect(),
            load_bps: inputs.load_bps.iter().map(|(b, l)| (b.clone(), *l)).collect(),
            edge_load: inputs.edge_load.iter().map(|(e, n)| (e.clone(), *n)).collect(),
        }
    }
}

/// Every instance's inputs summed, as the solve uses them.
#[derive(Debug, Default, PartialEq)]
pub struct MergedInputs {
    pub measured: HashMap<(String, String), Measured>,
    pub client: HashMap<(String, String), ClientStats>,
    pub load_bps: HashMap<String, f64>,
    pub edge_load: HashMap<String, u64>,
}

/// Sums the snapshots taken at or after `fresh_since`.
pub fn merge(snapshots: &[InputsSnapshot], fresh_since: u64) -> MergedInputs {
    let mut merged = MergedInputs::default();
    let mut fresh: Vec<&InputsSnapshot> = snapshots.iter().filter(|s| s.at_unix >= fresh_since).collect();
    // Oldest first, so the freshest snapshot's view of an edge's connections wins.
    fresh.sort_by_key(|s| s.at_unix);
    for s in fresh {
        for (b, r, m) in &s.measured {
            let sum = merged.measured.entry((b.clone(), r.clone())).or_default();
            sum.connections += m.connections;
            sum.srtt_us_sum += m.srtt_us_sum;
            sum.retransmits += m.retransmits;
            sum.bytes += m.bytes;
        }
        for (b, r, c) in &s.client {
            let sum = merged.client.entry((b.clone(), r.clone())).or_default();
            sum.fetches += c.fetches;
            sum.bytes += c.bytes;
            sum.ms += c.ms;
            sum.errors += c.errors;
        }
        for (b, l) in &s.load_bps {
            *merged.load_bps.entry(b.clone()).or_default() += l;
        }
        for (e, n) in &s.edge_load {
            merged.edge_load.insert(e.clone(), *n);
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(at_unix: u64, rtt_sum: f64, load: f64, edge_conns: u64) -> InputsSnapshot {
        InputsSnapshot {
            at_unix,
            measured: vec![(
                "10.0.0.0/24".into(),
                "east".into(),
                Measured {
                    connections: 1.0,
                    srtt_us_sum: rtt_sum,
                    retransmits: 0.0,
                    bytes: 1000.0,
                },
            )],
            client: vec![],
            load_bps: vec![("10.0.0.0/24".into(), load)],
            edge_load: vec![("edge-1".into(), edge_conns)],
        }
    }

    #[test]
    fn instances_measurements_add_up_and_the_freshest_edge_load_wins() {
        let merged = merge(
            &[snapshot(20, 30_000.0, 5.0, 7), snapshot(10, 10_000.0, 3.0, 2)],
            0,
        );
        let m = &merged.measured[&("10.0.0.0/24".to_string(), "east".to_string())];
        assert_eq!(m.connections, 2.0);
        assert_eq!(m.rtt_ms(), 20.0);
        assert_eq!(merged.load_bps["10.0.0.0/24"], 8.0);
        assert_eq!(merged.edge_load["edge-1"], 7);
    }

    #[test]
    fn a_stale_snapshot_is_left_out() {
        let merged = merge(
            &[snapshot(5, 10_000.0, 3.0, 2), snapshot(50, 30_000.0, 5.0, 7)],
            40,
        );
        assert_eq!(merged.load_bps["10.0.0.0/24"], 5.0);
        assert_eq!(
            merged.measured[&("10.0.0.0/24".to_string(), "east".to_string())].connections,
            1.0
        );
    }

    #[test]
    fn a_snapshot_round_trips_through_json() {
        let s = snapshot(9, 1.0, 2.0, 3);
        let text = serde_json::to_vec(&s).expect("serializing");
        assert_eq!(
            serde_json::from_slice::<InputsSnapshot>(&text).expect("parsing"),
            s
        );
    }
}
