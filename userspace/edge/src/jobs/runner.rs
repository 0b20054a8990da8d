//! The edge's job runner: every poll it sends the state of each running assignment to the
//! control plane (`POST /v1/jobs/agent`) and gets back everything it should be doing. New
//! assignments start on a thread of their own; a changed source is handed to the running
//! transfer (which resumes there at its offset); an assignment that is no longer listed
//! (cancelled, or the control plane moved the target on) is withdrawn. Reports repeat until the
//! control plane stops listing the assignment, so a lost report is sent again.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::transfer::{self, TaskStatus};
use crate::cache::EdgeCache;
use crate::server::control_agent::PlacementKey;
use strata_wire::client::ServiceClient;
use strata_wire::jobs::{AgentPoll, AgentReply, Source};

/// Time between polls while assignments run.
const POLL: Duration = Duration::from_millis(300);
/// Time between polls with nothing to do.
const IDLE_POLL: Duration = Duration::from_secs(1);

struct Task {
    status: Arc<TaskStatus>,
    source: watch::Sender<Option<Source>>,
}

/// Polls and executes until shutdown.
pub async fn run(
    client: ServiceClient,
    server: String,
    cache: Arc<EdgeCache>,
    key: PlacementKey,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut tasks: HashMap<(String, usize), Task> = HashMap::new();
    let mut healthy = true;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(if tasks.is_empty() { IDLE_POLL } else { POLL }) => {}
            _ = shutdown.changed() => break,
        }
        let poll = AgentPoll {
            server: server.clone(),
            reports: tasks.values().map(|t| t.status.report()).collect(),
        };
        let c = client.clone();
        let reply = match tokio::task::spawn_blocking(move || {
            c.post::<_, AgentReply>("/v1/jobs/agent", &poll)
        })
        .await
        {
            Ok(Ok(r)) => {
                healthy = true;
                r
            }
            Ok(Err(e)) => {
                if healthy {
                    tracing::warn!(error = %e, "polling the control plane for job commands failed; retrying");
                }
                healthy = false;
                continue;
            }
            Err(e) => {
                tracing::error!(error = %e, "job poll task failed");
                continue;
            }
        };
        if let Some(k) = reply.peer_key {
            *key.write().unwrap_or_else(|p| p.into_inner()) = Some(k);
        }
        let wanted: std::collections::HashSet<(String, usize)> = reply
            .assignments
            .iter()
            .map(|a| (a.job.clone(), a.command))
            .collect();
        tasks.retain(|k, t| {
            let keep = wanted.contains(k);
            if !keep {
                t.status.cancel.store(true, std::sync::atomic::Ordering::Relaxed);
            }
            keep
        });
        for a in reply.assignments {
            let k = (a.job.clone(), a.command);
            if let Some(t) = tasks.get(&k) {
                t.source.send_if_modified(|s| {
                    let changed = *s != a.source;
                    if changed {
                        s.clone_from(&a.source);
                    }
                    changed
                });
                continue;
            }
            tracing::info!(job = %a.job, command = ?a.kind, content = %format!("{}/{}", a.tenant, a.content), source = a.source.as_ref().map_or("-", |s| s.name.as_str()), "job command received");
            let status = Arc::new(TaskStatus::new(&a));
            let (tx, rx) = watch::channel(a.source.clone());
            let (cache, key, st) = (cache.clone(), key.clone(), status.clone());
            let spawned = std::thread::Builder::new()
                .name("strata-job".into())
                .spawn(move || transfer::run(a, cache, rx, key, st));
            if let Err(e) = spawned {
                tracing::error!(error = %e, "starting a job thread failed; retrying at the next poll");
                continue;
            }
            tasks.insert(k, Task { status, source: tx });
        }
    }
    for t in tasks.values() {
        t.status.cancel.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}
