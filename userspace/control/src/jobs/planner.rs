//! The cascade planner: one pass over a running job decides who fetches from whom. The storage
//! tier is one source with `fanout` slots for the whole job (so it sends at most `fanout`
//! copies); a target that finished its fetch becomes a source for up to `fanout` receivers at a
//! time, drawn from the targets not yet approached, in the job's order (the seed's
//! command-propagation list), so the tree grows layer by layer. Sources are tried fastest first
//! (the rate they were seen to give, else the rate they received at). A receiver whose source
//! is clearly slower (under half) than a free source is switched and resumes at its offset.
//! Targets that stay silent or overrun their time are timed out. Pure: the caller loads the
//! job, passes what it knows (soft progress, servers up) and commits the result.

use std::collections::{HashMap, HashSet};

use strata_wire::jobs::{CommandKind, TargetState};

use super::model::{Job, JobState};
use super::progress::Progress;

/// The storage tier's source name prefix.
pub const STORAGE: &str = "storage:";
/// A target that already held a verified copy.
pub const LOCAL: &str = "local";

/// A receiver is switched when another source offers at least this many times its rate.
const SWITCH_FACTOR: u64 = 2;
/// ... and only after measuring its current source this long.
const SWITCH_AFTER_MS: u64 = 1500;
/// A source's measured rate counts once a receiver has been on it this long.
const RATE_WINDOW_MS: u64 = 600;
/// ... and not in the last part of the transfer.
const SWITCH_BEFORE_FRACTION: f64 = 0.8;
/// A working target that reports nothing for this long (or its timeout, if shorter) timed out.
const SILENCE_MS: u64 = 10_000;

/// What the planner knows besides the job.
pub struct PlanInput<'a> {
    pub now: u64,
    /// Soft progress of this job's targets, by server.
    pub progress: &'a HashMap<String, Progress>,
    /// Storage servers holding the content and up: (name, data URL).
    pub storage: &'a [(String, String)],
    /// Edges that are up.
    pub edges_up: &'a HashSet<String>,
    /// When this control plane started (silence before it is not the target's fault).
    pub since_ms: u64,
}

fn active(state: TargetState) -> bool {
    matches!(state, TargetState::Transferring | TargetState::Verifying)
}

/// Rate a source gives now: measured at its receivers, else what it received at.
fn offered_rate(job: &Job, source: &str, input: &PlanInput) -> u64 {
    let measured: Vec<u64> = job
        .targets
        .iter()
        .filter(|t| t.source.as_deref() == Some(source) && t.state == TargetState::Transferring)
        // One rate window (the edges measure over 500 ms) is enough to know what it gives.
        .filter(|t| t.updated_ms + RATE_WINDOW_MS <= input.now)
        .filter_map(|t| input.progress.get(&t.server))
        .map(|p| p.rate_bps)
        .filter(|r| *r > 0)
        .collect();
    if !measured.is_empty() {
        return measured.iter().sum::<u64>() / measured.len() as u64;
    }
    job.target(source)
        .map(|i| job.targets[i].received_bps)
        .unwrap_or(0)
}

/// One pass; true when the job changed.
pub fn plan(job: &mut Job, input: &PlanInput) -> bool {
    if job.state != JobState::Running {
        return false;
    }
    let before = job.clone();
    let now = input.now;
    let timeout_ms = job.timeout_secs.saturating_mul(1000);
    let silence = SILENCE_MS.min(timeout_ms);
    // Timeouts.
    for i in 0..job.targets.len() {
        let t = &job.targets[i];
        let working = active(t.state) || (t.state == TargetState::Queued && t.started_ms.is_some());
        if working {
            let started = t.started_ms.unwrap_or(t.updated_ms);
            let heard = input
                .progress
                .get(&t.server)
                .map_or(0, |p| p.heard_ms)
                .max(started)
                .max(t.updated_ms)
                .max(input.since_ms);
            let why = if now.saturating_sub(started) > timeout_ms {
                Some(format!("not finished within {} s", job.timeout_secs))
            } else if now.saturating_sub(heard) > silence {
                Some(format!("no report for {} s", now.saturating_sub(heard) / 1000))
            } else {
                None
            };
            if let Some(why) = why {
                if let Some(p) = input.progress.get(&t.server) {
                    job.targets[i].offset = p.offset;
                }
                job.set_state(i, TargetState::TimedOut, Some(why), now);
            }
        } else if t.state == TargetState::Queued
            && !input.edges_up.contains(&t.server)
            && now.saturating_sub(t.updated_ms.max(job.created_ms).max(input.since_ms)) > timeout_ms
        {
            job.set_state(i, TargetState::TimedOut, Some("the edge is down".into()), now);
        }
    }
    // Non-fetch commands start at once (no source needed).
    for t in &mut job.targets {
        if t.state == TargetState::Queued
            && t.started_ms.is_none()
            && job.commands[t.command] != CommandKind::Fetch
            && input.edges_up.contains(&t.server)
        {
            t.started_ms = Some(now);
        }
    }
    assign_sources(job, input);
    switch_slow(job, input);
    job.settle(now);
    *job != before
}

/// Free receiver slots of each source now.
fn free_slots(job: &Job, input: &PlanInput) -> (i64, Vec<(String, i64)>) {
    let fanout = i64::from(job.fanout);
    let storage_used = job
        .targets
        .iter()
        .filter(|t| t.from_storage)
        .filter(|t| {
            !matches!(
                t.state,
                TargetState::Failed | TargetState::TimedOut | TargetState::Cancelled
            )
        })
        .count() as i64;
    let mut peers = Vec::new();
    for i in 0..job.targets.len() {
        let name = &job.targets[i].server;
        if !job.is_source(i) || !input.edges_up.contains(name) {
            continue;
        }
        let busy = job
            .targets
            .iter()
            .filter(|t| t.source.as_deref() == Some(name.as_str()))
            .filter(|t| job.commands[t.command] == CommandKind::Fetch)
            .filter(|t| active(t.state) || (t.state == TargetState::Queued && t.started_ms.is_some()))
            .count() as i64;
        peers.push((name.clone(), fanout - busy));
    }
    let storage_free = if input.storage.is_empty() {
        0
    } else {
        fanout - storage_used
    };
    (storage_free, peers)
}

fn assign_sources(job: &mut Job, input: &PlanInput) {
    let (mut storage_free, mut peers) = free_slots(job, input);
    peers.sort_by_key(|(name, _)| std::cmp::Reverse(offered_rate(job, name, input)));
    let mut next_storage = job.targets.iter().filter(|t| t.from_storage).count();
    for i in 0..job.targets.len() {
        let t = &job.targets[i];
        if t.state != TargetState::Queued
            || t.started_ms.is_some()
            || job.commands[t.command] != CommandKind::Fetch
            || !input.edges_up.contains(&t.server)
        {
            continue;
        }
        let avoid = t.avoid.clone();
        let peer = peers
            .iter_mut()
            .find(|(name, free)| *free > 0 && *name != job.targets[i].server && !avoid.contains(name));
        let (source, storage) = match peer {
            Some((name, free)) => {
                *free -= 1;
                (name.clone(), false)
            }
            None if storage_free > 0 || job.targets[i].from_storage => {
                let mut candidates: Vec<&(String, String)> = input
                    .storage
                    .iter()
                    .filter(|(n, _)| !avoid.contains(&format!("{STORAGE}{n}")))
                    .collect();
                if candidates.is_empty() {
                    // Every storage server failed this target once: try them again.
                    candidates = input.storage.iter().collect();
                }
                let Some((name, _)) = candidates.get(next_storage % candidates.len().max(1)) else {
                    continue;
                };
                next_storage += 1;
                if !job.targets[i].from_storage {
                    storage_free -= 1;
                }
                (format!("{STORAGE}{name}"), true)
            }
            None => continue,
        };
        let t = &mut job.targets[i];
        t.source = Some(source);
        t.from_storage |= storage;
        t.started_ms = Some(input.now);
        t.updated_ms = input.now;
    }
}

fn switch_slow(job: &mut Job, input: &PlanInput) {
    let (_, peers) = free_slots(job, input);
    for i in 0..job.targets.len() {
        let t = &job.targets[i];
        if t.state != TargetState::Transferring || t.updated_ms + SWITCH_AFTER_MS > input.now {
            continue;
        }
        let Some(p) = input.progress.get(&t.server) else {
            continue;
        };
        if p.rate_bps == 0 || p.total == 0 || p.offset as f64 > p.total as f64 * SWITCH_BEFORE_FRACTION {
            continue;
        }
        let current = t.source.clone();
        let best = peers
            .iter()
            .filter(|(name, free)| *free > 0 && Some(name) != current.as_ref() && *name != t.server)
            .filter(|(name, _)| !t.avoid.contains(name))
            .map(|(name, _)| (offered_rate(job, name, input), name.clone()))
            .max();
        let Some((rate, name)) = best else { continue };
        if rate < p.rate_bps.saturating_mul(SWITCH_FACTOR) {
            continue;
        }
        let why = format!(
            "{} offers {} B/s, the current source gives {} B/s",
            name, rate, p.rate_bps
        );
        let offset = p.offset;
        let t = &mut job.targets[i];
        t.source = Some(name);
        t.offset = offset;
        t.updated_ms = input.now;
        job.log_switch(i, current, offset, why, input.now);
        return; // one switch per pass: slots and rates are recomputed next pass
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::model::Target;
    use strata_wire::jobs::AssetSpec;

    fn job(n: usize, fanout: u32) -> Job {
        Job {
            id: "j".into(),
            tenant: "acme".into(),
            content: "c".into(),
            assets: vec![AssetSpec {
                name: "a".into(),
                size: 1000,
                sha256: "x".into(),
            }],
            fanout,
            timeout_secs: 600,
            notify_url: None,
            commands: vec![CommandKind::Fetch],
            targets: (0..n).map(|i| Target::queued(format!("e{i}"), 0)).collect(),
            state: JobState::Running,
            created_ms: 0,
            finished_ms: None,
            events: vec![],
            notified_seq: 0,
        }
    }

    fn input<'a>(
        now: u64,
        progress: &'a HashMap<String, Progress>,
        storage: &'a [(String, String)],
        up: &'a HashSet<String>,
    ) -> PlanInput<'a> {
        PlanInput {
            now,
            progress,
            storage,
            edges_up: up,
            since_ms: 0,
        }
    }

    #[test]
    fn storage_feeds_fanout_targets_and_finished_ones_feed_the_next_layer() {
        let mut j = job(7, 2);
        let storage = vec![("s1".to_string(), "http://s1".to_string())];
        let up: HashSet<String> = (0..7).map(|i| format!("e{i}")).collect();
        let none = HashMap::new();
        assert!(plan(&mut j, &input(1, &none, &storage, &up)));
        let sources: Vec<Option<&str>> = j.targets.iter().map(|t| t.source.as_deref()).collect();
        assert_eq!(&sources[..3], &[Some("storage:s1"), Some("storage:s1"), None]);
        // e0 finishes: it feeds two more; storage gets nobody new.
        j.command_done(0, 2);
        plan(&mut j, &input(3, &none, &storage, &up));
        let from_e0 = j
            .targets
            .iter()
            .filter(|t| t.source.as_deref() == Some("e0"))
            .count();
        assert_eq!(from_e0, 2);
        assert_eq!(j.targets.iter().filter(|t| t.from_storage).count(), 2);
        // Everyone finishes in turn; storage never gets a third receiver.
        for _ in 0..10 {
            for i in 0..7 {
                if j.targets[i].source.is_some() && j.targets[i].state == TargetState::Queued {
                    j.command_done(i, 4);
                }
            }
            plan(&mut j, &input(5, &none, &storage, &up));
        }
        assert_eq!(j.state, JobState::Done);
        assert_eq!(j.targets.iter().filter(|t| t.from_storage).count(), 2);
    }

    #[test]
    fn a_receiver_of_a_slow_source_switches_to_a_clearly_faster_one_at_its_offset() {
        let mut j = job(3, 2);
        let storage: Vec<(String, String)> = vec![];
        let up: HashSet<String> = (0..3).map(|i| format!("e{i}")).collect();
        j.command_done(0, 1);
        j.targets[0].received_bps = 100_000_000;
        j.targets[0].source = Some(LOCAL.into());
        let none = HashMap::new();
        plan(&mut j, &input(2, &none, &storage, &up));
        assert_eq!(j.targets[1].source.as_deref(), Some("e0"));
        j.targets[2].state = TargetState::Cancelled; // keep the picture simple
        j.set_state(1, TargetState::Transferring, None, 3);
        // e0 turns out slow; e2... is cancelled, so a new source appears: e2 done, fast.
        j.targets[2].state = TargetState::Done;
        j.targets[2].received_bps = 50_000_000;
        let mut progress = HashMap::new();
        progress.insert(
            "e1".to_string(),
            Progress {
                offset: 300,
                total: 1000,
                rate_bps: 1_000_000,
                heard_ms: 3000,
                source: Some("e0".into()),
            },
        );
        plan(&mut j, &input(3000, &progress, &storage, &up));
        assert_eq!(j.targets[1].source.as_deref(), Some("e2"));
        let last = j.events.last().expect("a switch event");
        assert_eq!((last.state.as_str(), last.offset), ("switched", 300));
    }

    #[test]
    fn a_silent_target_times_out() {
        let mut j = job(1, 1);
        let storage = vec![("s1".to_string(), "http://s1".to_string())];
        let up: HashSet<String> = ["e0".to_string()].into();
        let none = HashMap::new();
        plan(&mut j, &input(1, &none, &storage, &up));
        j.set_state(0, TargetState::Transferring, None, 2);
        plan(&mut j, &input(2 + SILENCE_MS + 1, &none, &storage, &up));
        assert_eq!(j.targets[0].state, TargetState::TimedOut);
        assert_eq!(j.state, JobState::Failed);
    }
}
