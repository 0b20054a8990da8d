//! The job scheduler: a thread that, while this instance leads, runs the cascade planner over
//! every running job a few times a second and commits what changed under the leader's guard
//! (so a deposed leader's plans fail on the registry), like the ingestor. Jobs survive a
//! kill -9: their records are the whole state, and the next leader plans from them.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use strata_wire::heartbeat::ServerRole;

use super::model::{now_ms, JobState};
use super::planner::{plan, PlanInput};
use super::progress::ProgressBoard;
use super::store;
use crate::contents::ContentBook;
use crate::leader::Leadership;
use crate::registry::RegistryStore;
use crate::servers::ServerBook;

/// Time between planning passes.
const PASS: Duration = Duration::from_millis(200);

/// Starts the scheduler thread; it ends when the store (the plane) is gone.
pub fn spawn(
    store: std::sync::Weak<dyn RegistryStore>,
    leadership: Arc<Leadership>,
    board: Arc<ProgressBoard>,
) -> std::io::Result<()> {
    let since = now_ms();
    std::thread::Builder::new()
        .name("strata-jobs".into())
        .spawn(move || loop {
            std::thread::sleep(PASS);
            let Some(store) = store.upgrade() else { return };
            let Some(guard) = leadership.guard() else { continue };
            if let Err(e) = pass(store.as_ref(), &guard, &board, since) {
                tracing::warn!(error = %e, "job scheduler pass failed; retrying");
            }
        })?;
    Ok(())
}

fn pass(
    store: &dyn RegistryStore,
    guard: &crate::registry::Guard,
    board: &ProgressBoard,
    since: u64,
) -> Result<(), String> {
    let jobs = store::list(store).map_err(|e| e.to_string())?;
    if jobs.iter().all(|j| j.state != JobState::Running) {
        return Ok(());
    }
    let servers = ServerBook::all(store).map_err(|e| e.to_string())?;
    let edges_up: HashSet<String> = servers
        .iter()
        .filter(|s| s.up && s.record.role == ServerRole::Edge)
        .map(|s| s.record.name.clone())
        .collect();
    for job in jobs.into_iter().filter(|j| j.state == JobState::Running) {
        let placed = ContentBook { store }
            .get(&job.tenant, &job.content)
            .map(|c| c.placed)
            .unwrap_or_default();
        let storage: Vec<(String, String)> = servers
            .iter()
            .filter(|s| s.up && s.record.role == ServerRole::Storage && placed.contains(&s.record.name))
            .map(|s| (s.record.name.clone(), format!("http://{}", s.record.addr)))
            .collect();
        let progress = board.of(&job.id);
        let mut ended = None;
        let mut fresh = Vec::new();
        let result = store::update(store, &job.id, Some(guard), |j| {
            let input = PlanInput {
                now: now_ms(),
                progress: &progress,
                storage: &storage,
                edges_up: &edges_up,
                since_ms: since,
            };
            let before = j.events.len();
            let changed = plan(j, &input);
            fresh = j.events[before..].to_vec();
            ended = (j.state != JobState::Running).then_some(j.state);
            Ok(changed)
        });
        match result {
            Ok(_) => {
                super::model::log_events(&job.id, &fresh);
                if let Some(state) = ended {
                    tracing::info!(job = %job.id, state = ?state, "job ended");
                }
            }
            Err(e) if e.status == 503 => return Ok(()),
            Err(e) => return Err(format!("job {}: {}", job.id, e.message)),
        }
    }
    Ok(())
}
