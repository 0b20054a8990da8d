//! The ingestor: a thread that works through the durable queue. For each item it copies the
//! content to every target not yet done (home cluster's servers, then replicas, then the
//! archive), records each finished target in the same commit that updates the item, and when
//! all are done removes the item, marks the content ready and deletes the staging copy. A
//! target that fails (a storage server down, a full disk) is retried with exponential backoff
//! while the other targets and items go on. It works only while this instance is the
//! control-plane leader ([`Leadership`]), and every commit carries the leader's guard, so a
//! deposed leader's progress commits fail instead of racing the new leader's.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::contents::ContentRecord;
use super::leader::Leadership;
use super::placement::Placer;
use super::registry::{Guard, Op, RegistryStore};
use super::work_queue::{content_at, pending, save_progress, WorkItem, WorkKind};

/// Longest wait between two tries of a failing target.
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// First retry delay.
const FIRST_BACKOFF: Duration = Duration::from_millis(250);

/// Counters the control plane's /metrics shows.
#[derive(Debug, Default)]
pub struct IngestCounters {
    pub targets_done: AtomicU64,
    pub target_failures: AtomicU64,
    pub items_done: AtomicU64,
}

/// The running ingestor.
pub struct Ingestor {
    placer: Placer,
    leadership: Arc<Leadership>,
    wake: (Mutex<bool>, Condvar),
    pub counters: IngestCounters,
}

impl Ingestor {
    /// Starts the ingestor thread.
    pub fn spawn(placer: Placer, leadership: Arc<Leadership>) -> std::io::Result<Arc<Ingestor>> {
        let ingestor = Arc::new(Ingestor {
            placer,
            leadership,
            wake: (Mutex::new(false), Condvar::new()),
            counters: IngestCounters::default(),
        });
        let running = ingestor.clone();
        std::thread::Builder::new()
            .name("strata-ingestor".into())
            .spawn(move || running.run())?;
        Ok(ingestor)
    }

    /// Bytes copied to targets since start.
    pub fn bytes_copied(&self) -> u64 {
        self.placer.bytes_copied.load(Ordering::Relaxed)
    }

    /// New work was queued: look now.
    pub fn wake(&self) {
        let mut flag = self.wake.0.lock().unwrap_or_else(|p| p.into_inner());
        *flag = true;
        self.wake.1.notify_all();
    }

    fn run(&self) {
        let mut retry_at: HashMap<(String, usize), Instant> = HashMap::new();
        loop {
            let wait = match self.leadership.guard() {
                // Not the leader: look again soon (the election loop runs every TTL/3).
                None => {
                    retry_at.clear();
                    Duration::from_millis(250)
                }
                Some(leader) => match self.pass(&leader, &mut retry_at) {
                    Ok(wait) => wait,
                    Err(e) => {
                        tracing::error!(error = %e, "ingestor: reading the work queue failed; retrying");
                        Duration::from_secs(1)
                    }
                },
            };
            let flag = self.wake.0.lock().unwrap_or_else(|p| p.into_inner());
            let (mut flag, _) = self
                .wake
                .1
                .wait_timeout_while(flag, wait, |woken| !*woken)
                .unwrap_or_else(|p| p.into_inner());
            *flag = false;
        }
    }

    /// One pass over the queue; returns how long to sleep.
    fn pass(
        &self,
        leader: &Guard,
        retry_at: &mut HashMap<(String, usize), Instant>,
    ) -> Result<Duration, String> {
        let store = self.placer.store.as_ref();
        let mut wait = Duration::from_secs(1);
        for (mut item, mut revision) in pending(store).map_err(|e| e.to_string())? {
            let Some((record, _)) =
                content_at(store, &item.tenant, &item.content).map_err(|e| e.to_string())?
            else {
                tracing::warn!(work = %item.id, tenant = %item.tenant, content = %item.content, "work item for a content that no longer exists; dropping it");
                let _ = store.commit(std::slice::from_ref(leader), &[Op::Delete { key: item.key() }]);
                continue;
            };
            for i in 0..item.targets.len() {
                if item.targets[i].done {
                    continue;
                }
                if self.leadership.guard().as_ref() != Some(leader) {
                    return Ok(Duration::ZERO); // deposed: stop before copying more
                }
                let key = (item.id.clone(), i);
                if let Some(at) = retry_at.get(&key) {
                    let now = Instant::now();
                    if *at > now {
                        wait = wait.min(*at - now);
                        continue;
                    }
                }
                let place = item.targets[i].place.clone();
                let outcome = self.placer.place(&item, &record, &place);
                let target = &mut item.targets[i];
                target.attempts += 1;
                match outcome {
                    Ok(()) => {
                        target.done = true;
                        target.last_error = None;
                        retry_at.remove(&key);
                        self.counters.targets_done.fetch_add(1, Ordering::Relaxed);
                        tracing::info!(work = %item.id, tenant = %item.tenant, content = %item.content, target = %place.label(), "placed");
                    }
                    Err(e) => {
                        let backoff = FIRST_BACKOFF
                            .saturating_mul(1 << target.attempts.min(8))
                            .min(MAX_BACKOFF);
                        tracing::warn!(work = %item.id, tenant = %item.tenant, content = %item.content, target = %place.label(), attempts = target.attempts, retry_in = ?backoff, error = %e, "placement failed; will retry");
                        target.last_error = Some(e);
                        retry_at.insert(key, Instant::now() + backoff);
                        wait = wait.min(backoff);
                        self.counters.target_failures.fetch_add(1, Ordering::Relaxed);
                    }
                }
                let placed = item.targets[i].done.then_some(&place);
                let when_done = if item.done() {
                    hot_job_op(store, &item, &record)?
                } else {
                    Vec::new()
                };
                match save_progress(store, &item, revision, placed, leader, &when_done)
                    .map_err(|e| e.to_string())?
                {
                    Some(r) => revision = r,
                    None => {
                        if !self.leadership.confirm(store).map_err(|e| e.to_string())? {
                            return Ok(Duration::ZERO); // deposed: another instance leads now
                        }
                        tracing::warn!(work = %item.id, "work item or leader changed under the ingestor; reading again");
                        return Ok(Duration::ZERO);
                    }
                }
            }
            if item.done() {
                self.finish(&item);
            }
        }
        Ok(wait)
    }

    /// After the item left the queue: the staging copy is no longer needed.
    fn finish(&self, item: &WorkItem) {
        self.counters.items_done.fetch_add(1, Ordering::Relaxed);
        tracing::info!(work = %item.id, tenant = %item.tenant, content = %item.content, "content is everywhere its rules say");
        if let WorkKind::Place { staging } = &item.kind {
            let dir = self.placer.staging_root.join(staging);
            if let Err(e) = std::fs::remove_dir_all(&dir) {
                tracing::warn!(dir = %dir.display(), error = %e, "removing the staging copy failed");
            }
        }
    }
}

/// A content flagged hot goes out to its hot edges as a distribution job (fetch, then pin),
/// created in the commit that marks it ready, so the job exists exactly when the content does.
fn hot_job_op(store: &dyn RegistryStore, item: &WorkItem, record: &ContentRecord) -> Result<Vec<Op>, String> {
    if !record.hot || record.hot_edges.is_empty() || !matches!(item.kind, WorkKind::Place { .. }) {
        return Ok(Vec::new());
    }
    match crate::jobs::store::hot_job(store, record, format!("job-hot-{}", item.id)) {
        Ok(job) => {
            tracing::info!(job = %job.id, tenant = %record.tenant, content = %record.content, edges = ?record.hot_edges, "hot content goes out as a job");
            Ok(vec![Op::Put {
                key: job.key(),
                value: crate::work_queue::encode(&job),
                lease: None,
            }])
        }
        Err(e) => {
            // An edge picked at ingest may have left since: the content is still placed.
            tracing::warn!(tenant = %record.tenant, content = %record.content, error = %e.message, "hot content: no job (its edges are gone); syncd's demand will fill them");
            Ok(Vec::new())
        }
    }
}

/// Progress of one item: targets done of all.
pub fn progress(item: &WorkItem) -> (usize, usize) {
    (item.targets.iter().filter(|t| t.done).count(), item.targets.len())
}
