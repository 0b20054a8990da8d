//! The admin listener's `GET /state`: this edge's copy of its region's state table (each
//! edge's load and contents), the region's mean load and the bound, and the director's counters.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};
use strata_wire::state_table::CacheSummary;

use super::edge_director::Director;

/// The routes to merge into the admin router.
pub fn routes(director: Arc<Director>) -> Router {
    Router::new().route("/state", get(state)).with_state(director)
}

async fn state(State(d): State<Arc<Director>>) -> Json<Value> {
    let table = d.table();
    let mean = table.mean_load();
    let rows: Vec<Value> = table
        .rows
        .iter()
        .map(|r| {
            let contents = match &r.contents {
                CacheSummary::Exact { assets } => json!({"kind": "exact", "assets": assets}),
                CacheSummary::Bloom(b) => json!({"kind": "bloom", "items": b.items, "bits": b.m, "hashes": b.k, "fp_rate": b.fp_rate}),
            };
            json!({
                "edge": r.name, "addr": r.addr, "me": r.name == d.name,
                "load": r.load, "contents_version": r.contents_version, "contents": contents,
            })
        })
        .collect();
    let c = &d.counters;
    let n = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    Json(json!({
        "edge": d.name,
        "mode": d.settings.mode,
        "region": table.region,
        "version": table.version,
        "mean_load": mean,
        "load_bound": ((1.0 + d.settings.epsilon.0) * mean).max(d.settings.load_floor.0),
        "epsilon": d.settings.epsilon,
        "rows": rows,
        "decisions": {
            "peer": n(&c.peer), "redirect": n(&c.redirect), "no_holder": n(&c.no_holder),
            "over_bound": n(&c.over_bound), "fallback": n(&c.fallback),
        },
        "peer_bytes": n(&c.peer_bytes),
        "stale_entries": n(&c.stale_entries),
        "hop_misses": n(&c.hop_misses),
        "tables_received": n(&c.tables_received),
    }))
}
