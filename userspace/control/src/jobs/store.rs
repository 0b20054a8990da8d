//! Jobs in the registry (`jobs/{id}`): creation after every check (tenant, content ready, asset
//! names, targets known), guarded read-modify-write updates (a revision guard, plus the
//! leader's guard for the planner), and listing. A job is one record, so a target's state, the
//! event that logs it and the webhook's position change together or not at all.

use std::collections::HashSet;

use serde_json::json;
use strata_wire::heartbeat::ServerRole;
use strata_wire::jobs::{AssetSpec, CommandKind, JobRequest, TargetState};

use super::model::{now_ms, Job, JobState, Target};
use crate::api_error::ApiError;
use crate::contents::{ContentBook, ContentRecord, ContentState};
use crate::registry::{Guard, Op, RegistryError, RegistryStore};
use crate::servers::ServerBook;
use crate::tenants::TenantBook;
use crate::work_queue::{encode, new_id};

/// Default receivers per source.
pub const DEFAULT_FANOUT: u32 = 2;
/// Default time a target may take.
pub const DEFAULT_TIMEOUT_SECS: u64 = 600;

fn corrupt(key: &str, e: serde_json::Error) -> RegistryError {
    RegistryError::Corrupt {
        key: key.into(),
        message: e.to_string(),
    }
}

/// A job with its record's revision.
pub fn get(store: &dyn RegistryStore, id: &str) -> Result<Option<(Job, u64)>, RegistryError> {
    let key = format!("jobs/{id}");
    store
        .get(&key)?
        .map(|e| {
            Ok((
                serde_json::from_slice(&e.value).map_err(|err| corrupt(&key, err))?,
                e.revision,
            ))
        })
        .transpose()
}

/// Every job, oldest first.
pub fn list(store: &dyn RegistryStore) -> Result<Vec<Job>, RegistryError> {
    store
        .list("jobs/")?
        .into_iter()
        .map(|e| serde_json::from_slice(&e.value).map_err(|err| corrupt(&e.key, err)))
        .collect()
}

/// Applies `change` to job `id` and commits it if it changed anything (under `leader` too, if
/// given), reading again on a conflicting write. The job after the change; None: no such job.
pub fn update(
    store: &dyn RegistryStore,
    id: &str,
    leader: Option<&Guard>,
    mut change: impl FnMut(&mut Job) -> Result<bool, ApiError>,
) -> Result<Option<Job>, ApiError> {
    for _ in 0..16 {
        let Some((mut job, rev)) = get(store, id)? else {
            return Ok(None);
        };
        if !change(&mut job)? {
            return Ok(Some(job));
        }
        let mut guards = vec![Guard::At(job.key(), rev)];
        guards.extend(leader.cloned());
        let put = Op::Put {
            key: job.key(),
            value: encode(&job),
            lease: None,
        };
        if store.commit(&guards, &[put])?.is_some() {
            return Ok(Some(job));
        }
        // The leader key moved: this instance no longer plans.
        if let Some(Guard::At(k, r)) = leader {
            if store.get(k)?.is_none_or(|e| e.revision != *r) {
                return Err(ApiError::new(503, "no longer the control-plane leader"));
            }
        }
    }
    Err(ApiError::new(409, format!("job {id} kept changing; try again")))
}

/// Checks a request and records the job (nothing is started before every check passed).
pub fn create(store: &dyn RegistryStore, req: &JobRequest) -> Result<Job, ApiError> {
    TenantBook { store }.get(&req.tenant)?;
    let content = ContentBook { store }.get(&req.tenant, &req.content)?;
    if content.state != ContentState::Ready {
        return Err(ApiError::new(
            409,
            format!(
                "content {}/{} is still being placed on its storage servers; create the job when it is ready",
                req.tenant, req.content
            ),
        ));
    }
    let job = prepare(store, req, &content, format!("job-{}", new_id()))?;
    if !store.create(&job.key(), encode(&job))? {
        return Err(ApiError::new(409, format!("job {} exists", job.id)));
    }
    Ok(job)
}

/// The job that puts a content flagged hot on its hot edges and pins it there (created when
/// its placement completes, in the same commit; or when an operator flags it hot later).
pub fn hot_job(store: &dyn RegistryStore, content: &ContentRecord, id: String) -> Result<Job, ApiError> {
    let req = JobRequest {
        tenant: content.tenant.clone(),
        content: content.content.clone(),
        assets: vec![],
        to: content.hot_edges.join(","),
        fanout: None,
        timeout_secs: None,
        notify_url: None,
        commands: vec![CommandKind::Fetch, CommandKind::Pin],
    };
    prepare(store, &req, content, id)
}

/// Every check of a request, and the job it makes (not stored yet).
fn prepare(
    store: &dyn RegistryStore,
    req: &JobRequest,
    content: &ContentRecord,
    id: String,
) -> Result<Job, ApiError> {
    let mut assets = Vec::new();
    if req.assets.is_empty() {
        assets.extend(content.assets.iter().map(|a| AssetSpec {
            name: a.decl.name.clone(),
            size: a.decl.size,
            sha256: a.sha256.clone(),
        }));
    } else {
        for name in &req.assets {
            let a = content
                .assets
                .iter()
                .find(|a| a.decl.name == *name)
                .ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "field assets: content {}/{} has no asset {name:?}",
                        req.tenant, req.content
                    ))
                })?;
            assets.push(AssetSpec {
                name: a.decl.name.clone(),
                size: a.decl.size,
                sha256: a.sha256.clone(),
            });
        }
    }
    if assets.is_empty() {
        return Err(ApiError::bad_request(format!(
            "content {}/{} has no assets to distribute",
            req.tenant, req.content
        )));
    }
    let fanout = req.fanout.unwrap_or(DEFAULT_FANOUT);
    if fanout == 0 || fanout > 64 {
        return Err(ApiError::bad_request(format!(
            "field fanout: {fanout} is not between 1 and 64"
        )));
    }
    let timeout_secs = req.timeout_secs.unwrap_or(DEFAULT_TIMEOUT_SECS);
    if timeout_secs == 0 {
        return Err(ApiError::bad_request("field timeout_secs: must be more than 0"));
    }
    if let Some(url) = &req.notify_url {
        if !url.starts_with("http://") && !url.starts_with("https://") {
            return Err(ApiError::bad_request(format!(
                "field notify_url: {url:?} is not an http:// or https:// URL"
            )));
        }
    }
    let targets = resolve_targets(store, &req.to)?;
    let commands = if req.commands.is_empty() {
        vec![CommandKind::Fetch]
    } else {
        req.commands.clone()
    };
    let now = now_ms();
    let mut job = Job {
        id,
        tenant: req.tenant.clone(),
        content: req.content.clone(),
        assets,
        fanout,
        timeout_secs,
        notify_url: req.notify_url.clone(),
        commands,
        targets: targets
            .into_iter()
            .map(|server| Target::queued(server, now))
            .collect(),
        state: JobState::Running,
        created_ms: now,
        finished_ms: None,
        events: vec![],
        notified_seq: 0,
    };
    job.log_job(now);
    Ok(job)
}

/// `all-edges` (edges up), `region:NAME` (its edges up), or names of registered edges.
fn resolve_targets(store: &dyn RegistryStore, to: &str) -> Result<Vec<String>, ApiError> {
    let edges: Vec<_> = ServerBook::all(store)?
        .into_iter()
        .filter(|s| s.record.role == ServerRole::Edge)
        .collect();
    let to = to.trim();
    let chosen: Vec<String> = if to == "all-edges" {
        edges
            .iter()
            .filter(|s| s.up)
            .map(|s| s.record.name.clone())
            .collect()
    } else if let Some(region) = to.strip_prefix("region:") {
        edges
            .iter()
            .filter(|s| s.up && s.record.region.as_deref() == Some(region))
            .map(|s| s.record.name.clone())
            .collect()
    } else {
        let known: HashSet<&str> = edges.iter().map(|s| s.record.name.as_str()).collect();
        let names: Vec<String> = to
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        let unknown: Vec<&String> = names.iter().filter(|n| !known.contains(n.as_str())).collect();
        if !unknown.is_empty() {
            return Err(ApiError::bad_request(format!(
                "field to: no registered edge named {}",
                unknown.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
            )));
        }
        let mut seen = HashSet::new();
        names.into_iter().filter(|n| seen.insert(n.clone())).collect()
    };
    if chosen.is_empty() {
        return Err(ApiError::bad_request(format!(
            "field to: {to:?} names no edge that is up (all-edges, region:NAME, or edge names)"
        )));
    }
    Ok(chosen)
}

/// A job as `GET /v1/jobs/{id}` shows it: the record with each target's live progress.
pub fn view(
    job: &Job,
    progress: &std::collections::HashMap<String, super::progress::Progress>,
) -> serde_json::Value {
    let total = job.bytes();
    let targets: Vec<serde_json::Value> = job
        .targets
        .iter()
        .map(|t| {
            let p = progress.get(&t.server);
            let offset = match t.state {
                TargetState::Done => total,
                TargetState::Transferring | TargetState::Verifying => p.map_or(t.offset, |p| p.offset),
                _ => t.offset,
            };
            json!({
                "server": t.server,
                "command": job.commands.get(t.command),
                "command_index": t.command,
                "state": t.state,
                "source": t.source,
                "offset": offset,
                "total": total,
                "rate_bps": if t.state == TargetState::Transferring { p.map_or(0, |p| p.rate_bps) } else { 0 },
                "received_bps": t.received_bps,
                "from_storage": t.from_storage,
                "started_ms": t.started_ms,
                "finished_ms": t.finished_ms,
                "error": t.error,
                "attempts": t.attempts,
            })
        })
        .collect();
    let count = |s: TargetState| job.targets.iter().filter(|t| t.state == s).count();
    json!({
        "id": job.id,
        "tenant": job.tenant,
        "content": job.content,
        "assets": job.assets,
        "bytes": total,
        "fanout": job.fanout,
        "timeout_secs": job.timeout_secs,
        "notify_url": job.notify_url,
        "commands": job.commands,
        "state": job.state,
        "created_ms": job.created_ms,
        "finished_ms": job.finished_ms,
        "summary": {
            "targets": job.targets.len(),
            "done": job.targets.iter().enumerate().filter(|(i, _)| job.target_ended(*i) && job.targets[*i].state == TargetState::Done).count(),
            "transferring": count(TargetState::Transferring),
            "failed": count(TargetState::Failed),
            "timed_out": count(TargetState::TimedOut),
            "cancelled": count(TargetState::Cancelled),
        },
        "targets": targets,
    })
}

/// Job `id` or 404.
pub fn must_get(store: &dyn RegistryStore, id: &str) -> Result<Job, ApiError> {
    get(store, id)?
        .map(|(j, _)| j)
        .ok_or_else(|| ApiError::new(404, format!("no job {id}")))
}

pub fn now() -> u64 {
    now_ms()
}
