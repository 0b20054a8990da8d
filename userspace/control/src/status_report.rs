//! `GET /v1/status` (and `strata control status`): the tiers with their servers up or down,
//! the archive, edges with their cache tables and syncd's decisions, tenants with quota and
//! usage, hot content, the work queue with each target's state, and the control-plane leader.

use serde_json::{json, Value};

use super::api_error::ApiError;
use super::contents::ContentBook;
use super::ingestor::progress;
use super::leader::current_leader;
use super::plane::ControlPlane;
use super::servers::ServerBook;
use super::tenants::TenantBook;
use super::work_queue::pending;
use strata_wire::heartbeat::ServerRole;

pub fn build(plane: &ControlPlane) -> Result<Value, ApiError> {
    let store = plane.store();
    let servers = ServerBook::all(store)?;
    let contents = ContentBook { store }.list(None)?;
    let clusters: Vec<Value> = TenantBook { store }
        .clusters()?
        .into_iter()
        .map(|c| {
            let members: Vec<Value> = servers
                .iter()
                .filter(|s| s.record.cluster.as_deref() == Some(c.name.as_str()))
                .map(|s| json!({"name": s.record.name, "addr": s.record.addr, "admin": s.record.admin_addr, "up": s.up}))
                .collect();
            json!({"name": c.name, "tier": c.tier, "servers": members})
        })
        .collect();
    let archived: Vec<_> = contents.iter().filter(|c| c.placed.contains("archive")).collect();
    let views = plane.syncd.views();
    let edges: Vec<Value> = servers
        .iter()
        .filter(|s| s.record.role == ServerRole::Edge)
        .map(|s| {
            let view = views
                .iter()
                .find(|(n, _)| *n == s.record.name)
                .map(|(_, v)| v.clone())
                .unwrap_or_default();
            json!({
                "name": s.record.name, "addr": s.record.addr, "up": s.up,
                "capacity_bytes": view.capacity_bytes, "used_bytes": view.used_bytes,
                "held_files": view.held_files, "open_connections": view.open_connections,
                "hits": view.hits, "misses": view.misses, "pushes": view.pushes,
                "wanted": view.wanted.len(),
                "top": view.ranking.iter().take(10).collect::<Vec<_>>(),
            })
        })
        .collect();
    let tenants: Vec<Value> = TenantBook { store }
        .list()?
        .into_iter()
        .map(|t| {
            let mine: Vec<_> = contents.iter().filter(|c| c.tenant == t.name).collect();
            json!({
                "name": t.name, "home_cluster": t.home_cluster, "replica_clusters": t.replica_clusters,
                "quota_bytes": t.quota_bytes, "used_bytes": mine.iter().map(|c| c.bytes()).sum::<u64>(),
                "contents": mine.len(), "hot_edges": t.hot_edges,
            })
        })
        .collect();
    let hot: Vec<Value> = contents
        .iter()
        .filter(|c| c.hot)
        .map(|c| json!({"tenant": c.tenant, "content": c.content, "edges": c.hot_edges}))
        .collect();
    let work: Vec<Value> = pending(store)?
        .into_iter()
        .map(|(w, _)| {
            let (done, all) = progress(&w);
            json!({
                "id": w.id, "tenant": w.tenant, "content": w.content, "kind": w.kind,
                "targets_done": done, "targets": all,
                "waiting": w.targets.iter().filter(|t| !t.done && t.last_error.is_some())
                    .map(|t| json!({"target": t.place.label(), "attempts": t.attempts, "error": t.last_error})).collect::<Vec<_>>(),
            })
        })
        .collect();
    let leader = current_leader(store)?;
    Ok(json!({
        "control": {
            "leader": leader,
            "instance": plane.leadership.instance(),
            "is_leader": plane.leadership.is_leader(),
        },
        "tiers": {
            "clusters": clusters,
            "archive": {"dir": plane.archive_root, "contents": archived.len(), "bytes": archived.iter().map(|c| c.bytes()).sum::<u64>()},
        },
        "edges": edges,
        "live": plane.live_streams(&servers),
        "director": super::state_table::status(store)?,
        "tenants": tenants,
        "hot": hot,
        "work": work,
        "counters": {
            "bytes_copied": plane.bytes_copied(),
            "restores_queued": plane.restores_queued(),
            "syncd_pushes": plane.syncd.pushes(),
        },
    }))
}
