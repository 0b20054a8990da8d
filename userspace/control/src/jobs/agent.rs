//! The control plane's side of the job agent protocol (`POST /v1/jobs/agent`): an edge's
//! reports move its targets' states (each change logged as an event in the same commit), and
//! the answer lists what the edge should be doing now — derived from the job records, so an
//! edge that restarts, or a report that was lost, converges on the next poll. A report for a
//! command the target has already left, or for a target that ended, changes nothing: a copy is
//! never counted `done` twice.

use std::collections::HashMap;

use strata_wire::jobs::{Assignment, CommandKind, Source, TargetReport, TargetState};

use super::model::{Job, JobState};
use super::planner::STORAGE;
use super::progress::{Progress, ProgressBoard};

/// Applies one report of `server`; true when the job changed.
pub fn apply_report(job: &mut Job, server: &str, r: &TargetReport, now: u64, board: &ProgressBoard) -> bool {
    let Some(i) = job.target(server) else {
        return false;
    };
    let t = &job.targets[i];
    if r.command != t.command {
        return false;
    }
    board.record(
        &job.id,
        server,
        Progress {
            offset: r.offset,
            total: r.total,
            rate_bps: r.rate_bps,
            heard_ms: now,
            source: r.source.clone(),
        },
    );
    if job.state != JobState::Running || t.state.is_final() {
        return false;
    }
    let assigned = t.started_ms.is_some();
    match r.state {
        TargetState::Transferring if t.state == TargetState::Queued && assigned => {
            job.set_state(i, TargetState::Transferring, None, now);
            true
        }
        TargetState::Verifying if t.state != TargetState::Verifying && assigned => {
            job.targets[i].offset = r.offset;
            job.set_state(i, TargetState::Verifying, None, now);
            true
        }
        TargetState::Done if assigned => {
            let fetch = job.commands[job.targets[i].command] == CommandKind::Fetch;
            let t = &mut job.targets[i];
            if fetch {
                t.received_bps = r.rate_bps;
                t.offset = r.offset;
                if r.source.as_deref() == Some(super::planner::LOCAL) {
                    t.source = r.source.clone();
                }
            }
            t.avoid.clear();
            t.error = None;
            job.command_done(i, now);
            true
        }
        TargetState::Failed if r.source_failed => {
            let t = &mut job.targets[i];
            if let Some(s) = t.source.take() {
                if !t.avoid.contains(&s) {
                    t.avoid.push(s.clone());
                }
            }
            t.started_ms = None;
            t.offset = r.offset;
            let why = r.error.clone().unwrap_or_else(|| "the source failed".into());
            job.set_state(
                i,
                TargetState::Queued,
                Some(format!("source failed, looking for another: {why}")),
                now,
            );
            true
        }
        TargetState::Failed => {
            job.targets[i].offset = r.offset;
            let why = r
                .error
                .clone()
                .unwrap_or_else(|| "the edge reported a failure".into());
            job.set_state(i, TargetState::Failed, Some(why), now);
            job.settle(now);
            true
        }
        _ => false,
    }
}

/// Where each source name points: storage servers' data listeners and edges' admin listeners.
pub type SourceUrls = HashMap<String, Source>;

/// What `server` should be doing for `job` now.
pub fn assignment(job: &Job, server: &str, urls: &SourceUrls) -> Option<Assignment> {
    if job.state != JobState::Running {
        return None;
    }
    let t = &job.targets[job.target(server)?];
    // Every target that has not ended its queue gets its current command; a fetch without a
    // source yet (or after its source failed) waits, keeping the bytes it has.
    if t.state.is_final() {
        return None;
    }
    let kind = job.commands[t.command];
    let source = match kind {
        CommandKind::Fetch => t.source.as_deref().and_then(|s| urls.get(s)).cloned(),
        _ => None,
    };
    Some(Assignment {
        job: job.id.clone(),
        command: t.command,
        kind,
        tenant: job.tenant.clone(),
        content: job.content.clone(),
        assets: job.assets.clone(),
        source,
    })
}

/// Source URLs from the registered servers.
pub fn source_urls(servers: &[crate::servers::ServerState]) -> SourceUrls {
    use strata_wire::heartbeat::ServerRole;
    servers
        .iter()
        .filter_map(|s| match s.record.role {
            ServerRole::Storage => Some((
                format!("{STORAGE}{}", s.record.name),
                Source {
                    name: format!("{STORAGE}{}", s.record.name),
                    url: format!("http://{}", s.record.addr),
                    peer: false,
                },
            )),
            ServerRole::Edge => Some((
                s.record.name.clone(),
                Source {
                    name: s.record.name.clone(),
                    url: format!("http://{}", s.record.admin_addr),
                    peer: true,
                },
            )),
            // Live ingest servers hold streams, not the contents jobs distribute.
            ServerRole::Live => None,
        })
        .collect()
}
