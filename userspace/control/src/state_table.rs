//! The director's state tables in the registry: each edge's row (`state/{region}/{edge}`, its
//! cache contents and load) is written from its heartbeat under the edge's server lease, so a
//! dead edge's row disappears with its liveness; the region's table (every row of the region,
//! versioned by a hash of the rows' revisions) goes back in the heartbeat reply whenever the
//! edge's copy is older. Changes thus reach every edge of the region within a heartbeat.

use std::hash::{Hash, Hasher};

use serde_json::{json, Value};
use strata_wire::heartbeat::{EdgeReport, ServerRecord};
use strata_wire::state_table::{CacheSummary, RegionTable, StateRow};
use thiserror::Error;

use super::registry::{Entry, LeaseId, Op, RegistryError, RegistryStore};

#[derive(Debug, Error)]
pub enum StateTableError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error("state row {key} is not valid JSON: {message}")]
    Corrupt { key: String, message: String },
}

impl From<StateTableError> for super::api_error::ApiError {
    fn from(e: StateTableError) -> Self {
        match e {
            StateTableError::Registry(r) => r.into(),
            other => super::api_error::ApiError::new(500, other.to_string()),
        }
    }
}

fn row_key(region: &str, name: &str) -> String {
    format!("state/{region}/{name}")
}

/// Writes `row` under `lease` unless the registry already holds exactly it.
pub fn publish(store: &dyn RegistryStore, lease: LeaseId, row: &StateRow) -> Result<(), StateTableError> {
    let key = row_key(&row.region, &row.name);
    let value = serde_json::to_vec(row).unwrap_or_default();
    let current = store.get(&key)?;
    if current
        .as_ref()
        .is_some_and(|e| e.value == value && e.lease == Some(lease))
    {
        return Ok(());
    }
    store.commit(
        &[],
        &[Op::Put {
            key,
            value,
            lease: Some(lease),
        }],
    )?;
    Ok(())
}

/// The version of a region's rows: a hash of (key, revision) of each, so a write or a row
/// that went (lease expired) changes it.
fn version_of(entries: &[Entry]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for e in entries {
        e.key.hash(&mut h);
        e.revision.hash(&mut h);
    }
    // 0 means "no table yet" to an edge.
    h.finish().max(1)
}

/// Every row of `region`, versioned.
pub fn region_table(store: &dyn RegistryStore, region: &str) -> Result<RegionTable, StateTableError> {
    let entries = store.list(&format!("state/{region}/"))?;
    let version = version_of(&entries);
    let rows = entries
        .iter()
        .map(|e| {
            serde_json::from_slice::<StateRow>(&e.value).map_err(|err| StateTableError::Corrupt {
                key: e.key.clone(),
                message: err.to_string(),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(RegionTable {
        region: region.to_string(),
        version,
        rows,
    })
}

/// An edge's heartbeat: publishes its row (named and placed by its record, not by what the row
/// says) and returns the region's table when the edge's copy is not the current one.
pub fn on_edge_report(
    store: &dyn RegistryStore,
    lease: Option<LeaseId>,
    server: &ServerRecord,
    report: &EdgeReport,
) -> Result<Option<RegionTable>, StateTableError> {
    let (Some(region), Some(row), Some(lease)) = (&server.region, &report.state, lease) else {
        return Ok(None);
    };
    let mut row = row.clone();
    row.name = server.name.clone();
    row.region = region.clone();
    row.addr = Some(server.addr);
    publish(store, lease, &row)?;
    let table = region_table(store, region)?;
    Ok((table.version != report.state_version).then_some(table))
}

/// `strata control status`'s view: per region, each edge's load and what it holds.
pub fn status(store: &dyn RegistryStore) -> Result<Value, StateTableError> {
    let entries = store.list("state/")?;
    let mut regions: std::collections::BTreeMap<String, Vec<Value>> = Default::default();
    for e in &entries {
        let row: StateRow = serde_json::from_slice(&e.value).map_err(|err| StateTableError::Corrupt {
            key: e.key.clone(),
            message: err.to_string(),
        })?;
        let contents = match &row.contents {
            CacheSummary::Exact { assets } => json!({"kind": "exact", "assets": assets}),
            CacheSummary::Bloom(b) => {
                json!({"kind": "bloom", "items": b.items, "bits": b.m, "hashes": b.k, "fp_rate": b.fp_rate})
            }
        };
        regions.entry(row.region.clone()).or_default().push(json!({
            "edge": row.name, "addr": row.addr, "load": row.load.value,
            "connections": row.load.connections, "egress_bps": row.load.egress_bps, "cpu": row.load.cpu,
            "contents_version": row.contents_version, "contents": contents,
        }));
    }
    Ok(json!(regions
        .into_iter()
        .map(|(region, edges)| {
            let n = edges.len().max(1) as f64;
            let mean = edges
                .iter()
                .map(|e| e["load"].as_f64().unwrap_or(0.0))
                .sum::<f64>()
                / n;
            json!({"region": region, "mean_load": mean, "edges": edges})
        })
        .collect::<Vec<_>>()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embedded_store::EmbeddedStore;
    use std::time::Duration;
    use strata_wire::heartbeat::ServerRole;

    fn edge(name: &str) -> ServerRecord {
        ServerRecord {
            name: name.into(),
            role: ServerRole::Edge,
            cluster: None,
            addr: "127.0.0.1:8080".parse().unwrap(),
            admin_addr: "127.0.0.1:9080".parse().unwrap(),
            region: Some("east".into()),
            capacity_bps: 0,
        }
    }

    fn report(assets: &[&str], known: u64) -> EdgeReport {
        EdgeReport {
            state: Some(StateRow {
                contents: CacheSummary::Exact {
                    assets: assets.iter().map(|a| a.to_string()).collect(),
                },
                ..Default::default()
            }),
            state_version: known,
            ..Default::default()
        }
    }

    #[test]
    fn rows_reach_the_region_and_go_with_the_edges_lease() {
        let dir = std::env::temp_dir().join(format!("strata-state-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let store = EmbeddedStore::open(&dir).unwrap();
        let l1 = store.grant_lease(Duration::from_secs(60)).unwrap();
        let l2 = store.grant_lease(Duration::from_millis(300)).unwrap();
        let t = on_edge_report(&store, Some(l1), &edge("e1"), &report(&["a/b/c"], 0))
            .unwrap()
            .expect("a new edge gets the table");
        assert_eq!(t.rows.len(), 1);
        let t2 = on_edge_report(&store, Some(l2), &edge("e2"), &report(&[], 0))
            .unwrap()
            .unwrap();
        assert_eq!(t2.rows.len(), 2);
        assert!(t2.rows[0].contents.contains("a/b/c"));
        // Up to date: nothing to send. Same row again: no rewrite, same version.
        assert!(
            on_edge_report(&store, Some(l1), &edge("e1"), &report(&["a/b/c"], t2.version))
                .unwrap()
                .is_none()
        );
        std::thread::sleep(Duration::from_millis(1200));
        let t3 = on_edge_report(&store, Some(l1), &edge("e1"), &report(&["a/b/c"], t2.version))
            .unwrap()
            .expect("e2's lease expired: the table changed");
        assert_eq!(t3.rows.len(), 1, "e2's row went with its lease");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
