//! One edge's director: its copy of the region's state table, the marks of entries found
//! stale, the builder of its own row, and its counters.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use strata_wire::state_table::RegionTable;

use super::choice::{choose, Choice, LoadBound, StaleMarks};
use super::settings::DirectorSettings;
use super::state_row::RowBuilder;

/// Counters for /metrics and /state.
#[derive(Debug, Default)]
pub struct DirectorCounters {
    /// Misses served from a peer (proxy) or sent to one (redirect).
    pub peer: AtomicU64,
    pub redirect: AtomicU64,
    /// Misses no peer of the region holds.
    pub no_holder: AtomicU64,
    /// Misses whose holders were all above the load bound.
    pub over_bound: AtomicU64,
    /// Misses that went to the storage tier after every chosen peer failed (stale or down).
    pub fallback: AtomicU64,
    /// Peers that answered 404 (evicted) or could not be reached for an asset the table said
    /// they hold.
    pub stale_entries: AtomicU64,
    /// Body bytes relayed from peers.
    pub peer_bytes: AtomicU64,
    /// Hop-marked requests this edge answered 404 (a peer's stale entry about us).
    pub hop_misses: AtomicU64,
    pub tables_received: AtomicU64,
}

/// The director of one edge.
pub struct Director {
    pub settings: DirectorSettings,
    /// This edge's registered name (its own row is never a peer).
    pub name: String,
    table: RwLock<Arc<RegionTable>>,
    stale: Mutex<StaleMarks>,
    pub rows: Mutex<RowBuilder>,
    pub counters: DirectorCounters,
}

impl Director {
    pub fn new(settings: DirectorSettings, name: String) -> Arc<Director> {
        Arc::new(Director {
            settings,
            name,
            table: RwLock::new(Arc::new(RegionTable::default())),
            stale: Mutex::new(StaleMarks::default()),
            rows: Mutex::new(RowBuilder::default()),
            counters: DirectorCounters::default(),
        })
    }

    /// The table now.
    pub fn table(&self) -> Arc<RegionTable> {
        self.table.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// A new table from the control plane; stale marks of rows that changed are dropped.
    pub fn replace(&self, mut table: RegionTable) {
        table.prepare();
        self.stale
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain_current(&table);
        tracing::debug!(
            version = table.version,
            rows = table.rows.len(),
            "director: region state table updated"
        );
        *self.table.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(table);
        self.counters.tables_received.fetch_add(1, Ordering::Relaxed);
    }
}

impl Director {
    /// The decision for `asset` over the current table.
    pub fn choose(&self, asset: &str) -> Choice {
        let table = self.table();
        let stale = self.stale.lock().unwrap_or_else(|p| p.into_inner());
        let bound = LoadBound {
            epsilon: self.settings.epsilon.0,
            floor: self.settings.load_floor.0,
        };
        choose(&table, &self.name, asset, bound, &stale)
    }

    /// `peer` did not serve `asset` (404 or unreachable): skip it for this asset until its
    /// row changes.
    pub fn mark_stale(&self, peer: &str, asset: &str) {
        self.counters.stale_entries.fetch_add(1, Ordering::Relaxed);
        let version = self
            .table()
            .rows
            .iter()
            .find(|r| r.name == peer)
            .map(|r| r.contents_version);
        if let Some(version) = version {
            self.stale
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .mark(peer, asset, version);
        }
    }
}
