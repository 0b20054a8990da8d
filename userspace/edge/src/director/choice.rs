//! The director's decision on a local miss: the region's edges whose row says they hold the
//! asset (this edge excluded, entries found stale excluded), minus those loaded above
//! max((1 + ε) × the region's mean load, a floor); the rest ordered by load, lowest first (ties broken by a
//! hash of asset and edge, so equal peers share the work and an asset keeps its peer).

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;

use strata_wire::state_table::RegionTable;

/// Assets a peer turned out not to hold (404) or could not serve (down), until its row's
/// contents version changes.
#[derive(Debug, Default)]
pub struct StaleMarks {
    marks: HashMap<(String, String), u64>,
}

/// Most marks kept; beyond it they are all dropped (they are only an optimisation).
const MAX_MARKS: usize = 65_536;

impl StaleMarks {
    fn is_stale(&self, peer: &str, asset: &str, version: u64) -> bool {
        self.marks
            .get(&(peer.to_string(), asset.to_string()))
            .is_some_and(|v| *v == version)
    }

    /// Marks `asset` stale on `peer` while the peer's row has contents `version`.
    pub fn mark(&mut self, peer: &str, asset: &str, version: u64) {
        if self.marks.len() >= MAX_MARKS {
            self.marks.clear();
        }
        self.marks.insert((peer.to_string(), asset.to_string()), version);
    }

    /// Keeps the marks whose peer's row still has the version the mark was made at.
    pub fn retain_current(&mut self, table: &RegionTable) {
        self.marks.retain(|(peer, _), version| {
            table
                .rows
                .iter()
                .any(|r| r.name == *peer && r.contents_version == *version)
        });
    }
}

/// Holders above max((1 + epsilon) × mean, floor) are passed over.
#[derive(Clone, Copy, Debug)]
pub struct LoadBound {
    pub epsilon: f64,
    pub floor: f64,
}

/// One peer to try.
#[derive(Clone, Debug, PartialEq)]
pub struct Peer {
    pub name: String,
    pub addr: SocketAddr,
    pub load: f64,
}

/// What the table says about one asset.
#[derive(Debug, Default)]
pub struct Choice {
    /// Peers to try, in order.
    pub peers: Vec<Peer>,
    /// Holders in the table (stale ones excluded).
    pub holders: usize,
    /// Holders passed over for load.
    pub over_bound: usize,
    pub mean_load: f64,
}

fn tie_break(asset: &str, peer: &str) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    asset.hash(&mut h);
    peer.hash(&mut h);
    h.finish()
}

/// The decision over `table` for `asset`, as `me` sees it.
pub fn choose(table: &RegionTable, me: &str, asset: &str, bound: LoadBound, stale: &StaleMarks) -> Choice {
    let mean = table.mean_load();
    let bound = ((1.0 + bound.epsilon) * mean).max(bound.floor);
    let mut choice = Choice {
        mean_load: mean,
        ..Default::default()
    };
    let mut peers = Vec::new();
    for row in &table.rows {
        let Some(addr) = row.addr else { continue };
        if row.name == me
            || !row.contents.contains(asset)
            || stale.is_stale(&row.name, asset, row.contents_version)
        {
            continue;
        }
        choice.holders += 1;
        let load = row.load.value.0;
        if load > bound {
            choice.over_bound += 1;
            continue;
        }
        peers.push(Peer {
            name: row.name.clone(),
            addr,
            load,
        });
    }
    peers.sort_by(|a, b| {
        a.load
            .total_cmp(&b.load)
            .then_with(|| tie_break(asset, &a.name).cmp(&tie_break(asset, &b.name)))
    });
    choice.peers = peers;
    choice
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_wire::state_table::{CacheSummary, LoadFactor, StateRow};

    fn row(name: &str, port: u16, load: f64, assets: &[&str]) -> StateRow {
        StateRow {
            name: name.into(),
            addr: Some(SocketAddr::from(([127, 0, 0, 1], port))),
            region: "east".into(),
            contents_version: 1,
            contents: CacheSummary::Exact {
                assets: assets.iter().map(|a| a.to_string()).collect(),
            },
            load: LoadFactor::compute((load * 100.0) as u64, 100, 0, 0, 0.0),
        }
    }

    const B: LoadBound = LoadBound {
        epsilon: 0.25,
        floor: 0.1,
    };

    fn table(rows: Vec<StateRow>) -> RegionTable {
        RegionTable {
            region: "east".into(),
            version: 7,
            rows,
        }
    }

    #[test]
    fn the_least_loaded_holder_within_the_bound_wins_and_the_overloaded_one_is_passed_over() {
        let t = table(vec![
            row("e1", 1, 0.0, &[]),
            row("e2", 2, 0.1, &["a/b/c"]),
            row("e3", 3, 0.6, &["a/b/c"]),
        ]);
        let c = choose(&t, "e1", "a/b/c", B, &StaleMarks::default());
        // mean 0.233, bound 0.29: e3 is over it.
        assert_eq!(c.holders, 2);
        assert_eq!(c.over_bound, 1);
        assert_eq!(
            c.peers.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
            ["e2"]
        );
        assert!(choose(&t, "e1", "x/y/z", B, &StaleMarks::default())
            .peers
            .is_empty());
    }

    #[test]
    fn within_the_bound_lower_load_goes_first_and_the_asker_is_never_its_own_peer() {
        let t = table(vec![
            row("e1", 1, 0.2, &["a/b/c"]),
            row("e2", 2, 0.25, &["a/b/c"]),
            row("e3", 3, 0.2, &["a/b/c"]),
        ]);
        let c = choose(&t, "e1", "a/b/c", B, &StaleMarks::default());
        assert_eq!(
            c.peers.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
            ["e3", "e2"]
        );
    }

    #[test]
    fn on_an_idle_region_the_floor_keeps_a_holder_that_is_only_relatively_busier() {
        // e2 just sent a file: 0.05 is twice the mean, yet far from overloaded.
        let t = table(vec![row("e1", 1, 0.0, &[]), row("e2", 2, 0.05, &["a/b/c"])]);
        let c = choose(&t, "e1", "a/b/c", B, &StaleMarks::default());
        assert_eq!(c.peers.len(), 1);
        let strict = LoadBound {
            epsilon: 0.25,
            floor: 0.0,
        };
        assert_eq!(
            choose(&t, "e1", "a/b/c", strict, &StaleMarks::default()).over_bound,
            1
        );
    }

    #[test]
    fn a_stale_mark_skips_the_peer_until_its_row_changes() {
        let mut t = table(vec![row("e1", 1, 0.0, &[]), row("e2", 2, 0.0, &["a/b/c"])]);
        let mut marks = StaleMarks::default();
        marks.mark("e2", "a/b/c", 1);
        assert!(choose(&t, "e1", "a/b/c", B, &marks).peers.is_empty());
        t.rows[1].contents_version = 2;
        marks.retain_current(&t);
        assert_eq!(choose(&t, "e1", "a/b/c", B, &marks).peers.len(), 1);
    }
}
