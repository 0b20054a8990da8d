//! Restores from the archive: a storage server that lost an asset (an edge saw it answer 404
//! and fetched the asset from a replica instead, or the operator's repair check found it
//! missing or different) gets a restore work item that copies the archive's copy back. The
//! item's id is derived from server and assets, so a burst of reports queues it once.

use std::sync::atomic::Ordering;

use sha2::{Digest, Sha256};

use super::api_error::ApiError;
use super::contents::{ContentBook, ContentRecord};
use super::placement::StorageObjects;
use super::plane::ControlPlane;
use super::servers::ServerBook;
use super::staging::now_unix;
use super::work_queue::{encode, Place, Target, WorkItem, WorkKind};

/// Queues a restore of `assets` of `record` onto storage server `server`; false if the same
/// restore is already queued.
pub fn queue_restore(
    plane: &ControlPlane,
    record: &ContentRecord,
    server: &str,
    cluster: &str,
    assets: Vec<String>,
) -> Result<bool, ApiError> {
    let digest = Sha256::digest(format!(
        "{server}/{}/{}/{}",
        record.tenant,
        record.content,
        assets.join(",")
    ));
    let id = format!("restore-{}", strata_wire::content_digest::hex(&digest[..8]));
    let item = WorkItem {
        id,
        tenant: record.tenant.clone(),
        content: record.content.clone(),
        kind: WorkKind::Restore { assets },
        targets: vec![Target::new(Place::Server {
            name: server.into(),
            cluster: cluster.into(),
        })],
        created_unix: now_unix(),
    };
    let queued = plane.store().create(&item.key(), encode(&item))?;
    if queued {
        plane.counters.restores_queued.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(work = %item.id, server, tenant = %record.tenant, content = %record.content, "restore from the archive queued");
        plane.ingestor.wake();
    }
    Ok(queued)
}

/// An edge reports that storage server `addr` answered 404 for `path` (`tenant/content/asset`)
/// while a replica had it.
pub fn on_failed_read(
    plane: &ControlPlane,
    path: &str,
    addr: std::net::SocketAddr,
) -> Result<bool, ApiError> {
    let mut parts = path.splitn(3, '/');
    let (Some(t), Some(c), Some(a)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(ApiError::bad_request(format!(
            "field path: {path:?} is not tenant/content/asset"
        )));
    };
    let record = ContentBook { store: plane.store() }.get(t, c)?;
    if !record.assets.iter().any(|x| x.decl.name == a) {
        return Err(ApiError::new(404, format!("content {t}/{c} has no asset {a}")));
    }
    let servers = ServerBook::all(plane.store())?;
    let Some(s) = servers.iter().find(|s| s.record.addr == addr) else {
        return Err(ApiError::new(404, format!("no registered server at {addr}")));
    };
    if !record.placed.contains(&s.record.name) {
        return Ok(false); // not placed there yet: the ingestor will put it there
    }
    let cluster = s.record.cluster.clone().unwrap_or_default();
    queue_restore(plane, &record, &s.record.name, &cluster, vec![a.to_string()])
}

/// The operator's repair: asks every server holding the content for each asset's SHA-256 and
/// queues restores where one is missing or different. Blocking. Returns (checked, restores).
pub fn check_content(
    plane: &ControlPlane,
    tenant: &str,
    content: &str,
) -> Result<(usize, Vec<String>), ApiError> {
    let record = ContentBook { store: plane.store() }.get(tenant, content)?;
    let servers = ServerBook::all(plane.store())?;
    let mut checked = 0;
    let mut restoring = Vec::new();
    for s in servers.iter().filter(|s| record.placed.contains(&s.record.name)) {
        if !s.up {
            restoring.push(format!("{}: down, not checked", s.record.name));
            continue;
        }
        let objects = StorageObjects::new(
            s.record.admin_addr,
            &plane.placement_key,
            std::time::Duration::from_secs(600),
        );
        let mut lost = Vec::new();
        for a in &record.assets {
            checked += 1;
            let holds = objects
                .holds(tenant, content, &a.decl.name, &a.sha256)
                .map_err(|e| ApiError::new(502, e.to_string()))?;
            if !holds {
                lost.push(a.decl.name.clone());
            }
        }
        if !lost.is_empty() {
            let cluster = s.record.cluster.clone().unwrap_or_default();
            queue_restore(plane, &record, &s.record.name, &cluster, lost.clone())?;
            restoring.push(format!("{}: {}", s.record.name, lost.join(", ")));
        }
    }
    Ok((checked, restoring))
}
