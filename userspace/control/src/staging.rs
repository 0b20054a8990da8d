//! Ingest sessions: `strata ingest` declares a content's files (checked against the tenant's
//! quota before a byte is sent), uploads each into the staging directory (written beside,
//! fsynced, renamed), then commits. The commit hashes the files, writes the asset list and, in
//! one registry transaction, records the content and queues its placement work item, so the
//! content and its work are durable together or not at all.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use strata_wire::assets::{AssetDecl, AssetRecord, ASSET_LIST};

use super::api_error::ApiError;
use super::contents::{content_key, ContentBook, ContentRecord, ContentState};
use super::names;
use super::registry::{Guard, Op, RegistryStore};
use super::servers::ServerBook;
use super::tenants::TenantBook;
use super::work_queue::{encode, new_id, Place, Target, WorkItem, WorkKind};
use strata_wire::content_digest::etag_of_sha256;
use strata_wire::content_digest::sha256_file;
use strata_wire::heartbeat::ServerRole;

/// `POST /v1/tenants/{t}/ingests`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestRequest {
    pub content: String,
    #[serde(default)]
    pub hot: bool,
    pub assets: Vec<AssetDecl>,
}

/// An open ingest session (`ingests/{id}`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct IngestSession {
    pub id: String,
    pub tenant: String,
    pub request: IngestRequest,
    pub created_unix: u64,
}

pub fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn session_key(id: &str) -> String {
    format!("ingests/{id}")
}

/// Opens a session after checking names, duplicates and the quota.
pub fn open(
    store: &dyn RegistryStore,
    staging_root: &Path,
    tenant: &str,
    req: IngestRequest,
) -> Result<IngestSession, ApiError> {
    let t = TenantBook { store }.get(tenant)?;
    names::check("content", &req.content)?;
    if req.assets.is_empty() {
        return Err(ApiError::bad_request(
            "field assets: an ingest needs at least one file",
        ));
    }
    let mut seen = std::collections::HashSet::new();
    for (i, a) in req.assets.iter().enumerate() {
        names::check("asset", &a.name)
            .map_err(|e| ApiError::bad_request(format!("field assets[{i}].name: {e}")))?;
        if a.name == ASSET_LIST {
            return Err(ApiError::bad_request(format!(
                "field assets[{i}].name: {ASSET_LIST} is reserved for the asset list strata writes"
            )));
        }
        if !seen.insert(a.name.as_str()) {
            return Err(ApiError::bad_request(format!(
                "field assets[{i}].name: {} is listed twice",
                a.name
            )));
        }
    }
    if store.get(&content_key(tenant, &req.content))?.is_some() {
        return Err(ApiError::new(
            409,
            format!("tenant {tenant} already has content {}", req.content),
        ));
    }
    let incoming: u64 = req.assets.iter().map(|a| a.size).sum();
    if t.quota_bytes > 0 {
        let used = ContentBook { store }.usage(tenant)?;
        if used + incoming > t.quota_bytes {
            return Err(ApiError::new(
                413,
                format!(
                    "tenant {tenant}'s quota is {} bytes; it uses {used} bytes and content {} adds {incoming} bytes ({} over); nothing was uploaded",
                    t.quota_bytes,
                    req.content,
                    used + incoming - t.quota_bytes
                ),
            ));
        }
    }
    let session = IngestSession {
        id: new_id(),
        tenant: tenant.into(),
        request: req,
        created_unix: now_unix(),
    };
    let dir = staging_root.join(&session.id);
    std::fs::create_dir_all(&dir)
        .map_err(|e| ApiError::internal(format!("creating {}: {e}", dir.display())))?;
    store.commit(
        &[],
        &[Op::Put {
            key: session_key(&session.id),
            value: encode(&session),
            lease: None,
        }],
    )?;
    Ok(session)
}

/// Reads a session.
pub fn session(store: &dyn RegistryStore, id: &str) -> Result<(IngestSession, u64), ApiError> {
    let entry = store
        .get(&session_key(id))?
        .ok_or_else(|| ApiError::new(404, format!("no open ingest {id}")))?;
    let s = serde_json::from_slice(&entry.value)
        .map_err(|e| ApiError::internal(format!("ingest record {id}: {e}")))?;
    Ok((s, entry.revision))
}

/// Where an upload of `name` is written, and its final place in staging.
pub fn upload_paths(
    staging_root: &Path,
    session: &IngestSession,
    name: &str,
) -> Result<(PathBuf, PathBuf, u64), ApiError> {
    let decl = session
        .request
        .assets
        .iter()
        .find(|a| a.name == name)
        .ok_or_else(|| {
            ApiError::new(
                404,
                format!("ingest {} did not declare a file {name}", session.id),
            )
        })?;
    let dir = staging_root.join(&session.id);
    Ok((dir.join(format!(".{name}.part")), dir.join(name), decl.size))
}

/// Chooses where a content goes: every registered server of the home cluster, then of each
/// replica cluster, then the archive.
fn targets(store: &dyn RegistryStore, home: &str, replicas: &[String]) -> Result<Vec<Target>, ApiError> {
    let servers = ServerBook::all(store)?;
    let mut out = Vec::new();
    for cluster in std::iter::once(home).chain(replicas.iter().map(String::as_str)) {
        let mut members: Vec<_> = servers
            .iter()
            .filter(|s| s.record.role == ServerRole::Storage && s.record.cluster.as_deref() == Some(cluster))
            .collect();
        if members.is_empty() {
            return Err(ApiError::new(
                409,
                format!(
                    "storage cluster {cluster} has no registered servers; start one with --cluster {cluster}"
                ),
            ));
        }
        members.sort_by(|a, b| a.record.name.cmp(&b.record.name));
        out.extend(members.into_iter().map(|s| {
            Target::new(Place::Server {
                name: s.record.name.clone(),
                cluster: cluster.into(),
            })
        }));
    }
    out.push(Target::new(Place::Archive));
    Ok(out)
}

/// Up edges to push a hot content to: the `n` with the most free cache space.
pub fn hot_edges(
    store: &dyn RegistryStore,
    n: u32,
    free: &dyn Fn(&str) -> u64,
) -> Result<Vec<String>, ApiError> {
    let mut edges: Vec<String> = ServerBook::all(store)?
        .into_iter()
        .filter(|s| s.up && s.record.role == ServerRole::Edge)
        .map(|s| s.record.name)
        .collect();
    edges.sort_by_key(|e| std::cmp::Reverse(free(e)));
    edges.truncate(n as usize);
    Ok(edges)
}

/// Commits a session whose files are all uploaded: hashes them, writes `assets.json`, and in
/// one transaction records the content and queues its work item. Blocking (hashing).
pub fn commit(
    store: &dyn RegistryStore,
    staging_root: &Path,
    id: &str,
    edge_free: &dyn Fn(&str) -> u64,
) -> Result<(ContentRecord, WorkItem), ApiError> {
    let (session, revision) = session(store, id)?;
    let tenant = TenantBook { store }.get(&session.tenant)?;
    let dir = staging_root.join(&session.id);
    let mut assets = Vec::new();
    for decl in &session.request.assets {
        let path = dir.join(&decl.name);
        let len = std::fs::metadata(&path).map(|m| m.len()).map_err(|_| {
            ApiError::new(
                409,
                format!("ingest {id}: file {} was not uploaded yet", decl.name),
            )
        })?;
        if len != decl.size {
            return Err(ApiError::new(
                409,
                format!(
                    "ingest {id}: file {} holds {len} bytes, {} were declared",
                    decl.name, decl.size
                ),
            ));
        }
        let sha256 =
            sha256_file(&path).map_err(|e| ApiError::internal(format!("hashing {}: {e}", path.display())))?;
        assets.push(AssetRecord {
            decl: decl.clone(),
            etag: etag_of_sha256(&sha256),
            sha256,
        });
    }
    let hot_edges = if session.request.hot {
        hot_edges(store, tenant.hot_edges, edge_free)?
    } else {
        Vec::new()
    };
    let record = ContentRecord {
        tenant: session.tenant.clone(),
        content: session.request.content.clone(),
        assets,
        state: ContentState::Placing,
        hot: session.request.hot,
        hot_edges,
        placed: Default::default(),
        created_unix: now_unix(),
    };
    let list = dir.join(ASSET_LIST);
    std::fs::write(&list, record.asset_list_json())
        .and_then(|_| std::fs::File::open(&list)?.sync_all())
        .and_then(|_| std::fs::File::open(&dir)?.sync_all())
        .map_err(|e| ApiError::internal(format!("writing {}: {e}", list.display())))?;
    let item = WorkItem {
        id: session.id.clone(),
        tenant: session.tenant.clone(),
        content: session.request.content.clone(),
        kind: WorkKind::Place {
            staging: session.id.clone(),
        },
        targets: targets(store, &tenant.home_cluster, &tenant.replica_clusters)?,
        created_unix: now_unix(),
    };
    let key = content_key(&record.tenant, &record.content);
    let committed = store.commit(
        &[Guard::Absent(key.clone()), Guard::At(session_key(id), revision)],
        &[
            Op::Put {
                key,
                value: encode(&record),
                lease: None,
            },
            Op::Put {
                key: item.key(),
                value: encode(&item),
                lease: None,
            },
            Op::Delete { key: session_key(id) },
        ],
    )?;
    if committed.is_none() {
        return Err(ApiError::new(
            409,
            format!(
                "tenant {} already has content {} (or ingest {id} was committed twice)",
                record.tenant, record.content
            ),
        ));
    }
    Ok((record, item))
}

/// Removes staging directories that no open session or queued item refers to (left by a
/// control plane killed between committing and cleaning up, or abandoned uploads).
pub fn sweep(store: &dyn RegistryStore, staging_root: &Path) -> usize {
    let mut keep = std::collections::HashSet::new();
    for prefix in ["ingests/", "work/"] {
        for e in store.list(prefix).unwrap_or_default() {
            keep.insert(e.key[prefix.len()..].to_string());
        }
    }
    let mut removed = 0;
    for entry in std::fs::read_dir(staging_root).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        if !keep.contains(&name) && std::fs::remove_dir_all(entry.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}
