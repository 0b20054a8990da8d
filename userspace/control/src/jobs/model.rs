//! A distribution job as the registry keeps it (`jobs/{id}`): the content and its assets, the
//! targets with each one's state for its current command, the command queue, and the ordered
//! event log that the SSE stream and the webhook read. Every change of a target's state goes
//! through the methods here, which append the event in the same step, so the log and the
//! states never disagree.

use serde::{Deserialize, Serialize};

use strata_wire::jobs::{AssetSpec, CommandKind, TargetState};

/// Where the job is as a whole.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Running,
    /// Every target did every command.
    Done,
    /// Every target ended, some failed or timed out (repair re-queues them).
    Failed,
    Cancelled,
}

/// One target server and where it is in the command queue.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    pub server: String,
    /// Index of the command being executed.
    pub command: usize,
    pub state: TargetState,
    /// The source of the current fetch (`storage:NAME`, an edge's name, or `local`).
    #[serde(default)]
    pub source: Option<String>,
    /// This target took one of the storage tier's `fanout` slots.
    #[serde(default)]
    pub from_storage: bool,
    /// Sources that failed this target; not chosen again for it until it finishes.
    #[serde(default)]
    pub avoid: Vec<String>,
    /// Bytes kept at the last state change (progress between changes is soft state).
    #[serde(default)]
    pub offset: u64,
    /// Rate the content arrived at (bytes/s), once fetched: what this target offers as a source.
    #[serde(default)]
    pub received_bps: u64,
    #[serde(default)]
    pub started_ms: Option<u64>,
    pub updated_ms: u64,
    #[serde(default)]
    pub finished_ms: Option<u64>,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub attempts: u32,
}

/// One entry of the job's event log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub seq: u64,
    pub at_ms: u64,
    /// None: the job itself.
    #[serde(default)]
    pub target: Option<String>,
    #[serde(default)]
    pub command: Option<CommandKind>,
    /// A target's state (`transferring`, `done`, ...), or `switched`, or the job's end state.
    pub state: String,
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub offset: u64,
    #[serde(default)]
    pub detail: Option<String>,
}

impl Event {
    /// Webhook-worthy: a target's end (done / failed / timed out) or the job's end.
    pub fn notifies(&self) -> bool {
        match &self.target {
            None => self.state != "running",
            Some(_) => matches!(self.state.as_str(), "done" | "failed" | "timed_out"),
        }
    }
}

/// The job record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    pub id: String,
    pub tenant: String,
    pub content: String,
    pub assets: Vec<AssetSpec>,
    pub fanout: u32,
    pub timeout_secs: u64,
    #[serde(default)]
    pub notify_url: Option<String>,
    pub commands: Vec<CommandKind>,
    pub targets: Vec<Target>,
    pub state: JobState,
    pub created_ms: u64,
    #[serde(default)]
    pub finished_ms: Option<u64>,
    pub events: Vec<Event>,
    /// The last event seq the webhook receiver acknowledged.
    #[serde(default)]
    pub notified_seq: u64,
}

/// Logs events a committed change added.
pub fn log_events(job: &str, events: &[Event]) {
    for e in events {
        tracing::info!(job = %job, seq = e.seq, target = e.target.as_deref().unwrap_or("-"), state = %e.state, source = e.source.as_deref().unwrap_or("-"), offset = e.offset, detail = e.detail.as_deref().unwrap_or(""), "job event");
    }
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn state_name(s: TargetState) -> String {
    serde_json::to_value(s)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

impl Target {
    /// A target that has not started its first command.
    pub fn queued(server: String, now_ms: u64) -> Target {
        Target {
            server,
            command: 0,
            state: TargetState::Queued,
            source: None,
            from_storage: false,
            avoid: vec![],
            offset: 0,
            received_bps: 0,
            started_ms: None,
            updated_ms: now_ms,
            finished_ms: None,
            error: None,
            attempts: 0,
        }
    }
}

impl Job {
    pub fn key(&self) -> String {
        format!("jobs/{}", self.id)
    }

    pub fn bytes(&self) -> u64 {
        self.assets.iter().map(|a| a.size).sum()
    }

    pub fn target(&self, server: &str) -> Option<usize> {
        self.targets.iter().position(|t| t.server == server)
    }

    fn push_event(&mut self, mut e: Event) {
        e.seq = self.events.last().map_or(1, |l| l.seq + 1);
        self.events.push(e);
    }

    /// Sets target `i`'s state and logs it.
    pub fn set_state(&mut self, i: usize, state: TargetState, detail: Option<String>, now: u64) {
        let t = &mut self.targets[i];
        t.state = state;
        t.updated_ms = now;
        if state.is_final() {
            t.finished_ms = Some(now);
        }
        if matches!(state, TargetState::Failed | TargetState::TimedOut) {
            t.error = detail.clone();
        }
        let e = Event {
            seq: 0,
            at_ms: now,
            target: Some(t.server.clone()),
            command: self.commands.get(t.command).copied(),
            state: state_name(state),
            source: t.source.clone(),
            offset: t.offset,
            detail,
        };
        self.push_event(e);
    }

    /// Logs a source switch of target `i`.
    pub fn log_switch(&mut self, i: usize, from: Option<String>, offset: u64, why: String, now: u64) {
        let t = &self.targets[i];
        let e = Event {
            seq: 0,
            at_ms: now,
            target: Some(t.server.clone()),
            command: self.commands.get(t.command).copied(),
            state: "switched".into(),
            source: t.source.clone(),
            offset,
            detail: Some(format!("from {}: {why}", from.unwrap_or_else(|| "none".into()))),
        };
        self.push_event(e);
    }

    /// A target finished its current command: the next one is queued, or the target is done.
    pub fn command_done(&mut self, i: usize, now: u64) {
        self.set_state(i, TargetState::Done, None, now);
        let t = &mut self.targets[i];
        if t.command + 1 < self.commands.len() {
            t.command += 1;
            t.state = TargetState::Queued;
            t.source = None;
            t.started_ms = None;
            t.finished_ms = None;
        }
    }

    /// Whether target `i` ended the whole queue (done or not).
    pub fn target_ended(&self, i: usize) -> bool {
        let t = &self.targets[i];
        t.state.is_final() && (t.state != TargetState::Done || t.command + 1 >= self.commands.len())
    }

    /// Whether target `i` holds the fetched content and may serve it to others.
    pub fn is_source(&self, i: usize) -> bool {
        let t = &self.targets[i];
        let fetch_at = self.commands.iter().position(|c| *c == CommandKind::Fetch);
        let fetched = match fetch_at {
            Some(f) => t.command > f || (t.command == f && t.state == TargetState::Done),
            None => false,
        };
        // A later delete removes the copy.
        let deleted = self.commands[..=t.command.min(self.commands.len() - 1)]
            .iter()
            .enumerate()
            .any(|(k, c)| *c == CommandKind::Delete && (k < t.command || t.state == TargetState::Done));
        fetched && !deleted
    }

    /// Ends the job when every target ended; logs the job's end. True when it just ended.
    pub fn settle(&mut self, now: u64) -> bool {
        if self.state != JobState::Running || !(0..self.targets.len()).all(|i| self.target_ended(i)) {
            return false;
        }
        let all_done = self.targets.iter().all(|t| t.state == TargetState::Done);
        self.state = if all_done {
            JobState::Done
        } else {
            JobState::Failed
        };
        self.finished_ms = Some(now);
        self.log_job(now);
        true
    }

    pub fn log_job(&mut self, now: u64) {
        let done = self
            .targets
            .iter()
            .filter(|t| t.state == TargetState::Done)
            .count();
        let e = Event {
            seq: 0,
            at_ms: now,
            target: None,
            command: None,
            state: serde_json::to_value(self.state)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            source: None,
            offset: 0,
            detail: Some(format!("{done} of {} targets done", self.targets.len())),
        };
        self.push_event(e);
    }

    /// Cancels every target that has not ended and the job.
    pub fn cancel(&mut self, now: u64) {
        for i in 0..self.targets.len() {
            if !self.target_ended(i) {
                self.set_state(i, TargetState::Cancelled, Some("job cancelled".into()), now);
            }
        }
        if self.state == JobState::Running {
            self.state = JobState::Cancelled;
            self.finished_ms = Some(now);
            self.log_job(now);
        }
    }

    /// Repair: failed, timed-out and cancelled targets go back to the queue; done ones run the
    /// queue again from the start (a fetch of a copy the target holds is a local SHA-256
    /// check, no transfer). Returns how many targets were re-queued.
    pub fn repair(&mut self, now: u64) -> usize {
        let mut n = 0;
        for i in 0..self.targets.len() {
            let t = &mut self.targets[i];
            if matches!(t.state, TargetState::Transferring | TargetState::Verifying) {
                continue; // still working: it reports, or times out
            }
            if t.state == TargetState::Queued && t.source.is_some() {
                continue;
            }
            if t.state == TargetState::Done || t.state.is_final() {
                t.command = if t.state == TargetState::Done {
                    0
                } else {
                    t.command
                };
                t.attempts += 1;
                t.source = None;
                t.from_storage = false;
                t.avoid.clear();
                t.started_ms = None;
                t.finished_ms = None;
                t.offset = 0;
                self.set_state(i, TargetState::Queued, Some("repair: re-queued".into()), now);
                n += 1;
            }
        }
        if n > 0 && self.state != JobState::Running {
            self.state = JobState::Running;
            self.finished_ms = None;
            self.log_job(now);
        }
        n
    }

    /// Appends a command; targets that had ended the queue done go on with it.
    pub fn append(&mut self, kind: CommandKind, now: u64) {
        self.commands.push(kind);
        let last = self.commands.len() - 1;
        let mut reopened = false;
        for t in &mut self.targets {
            if t.state == TargetState::Done && t.command + 1 == last {
                t.command = last;
                t.state = TargetState::Queued;
                t.source = None;
                t.started_ms = None;
                t.finished_ms = None;
                t.updated_ms = now;
                reopened = true;
            }
        }
        if reopened && self.state != JobState::Running {
            self.state = JobState::Running;
            self.finished_ms = None;
            self.log_job(now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub fn job(targets: &[&str], commands: &[CommandKind]) -> Job {
        Job {
            id: "j".into(),
            tenant: "acme".into(),
            content: "c".into(),
            assets: vec![AssetSpec {
                name: "a".into(),
                size: 100,
                sha256: "x".into(),
            }],
            fanout: 2,
            timeout_secs: 60,
            notify_url: None,
            commands: commands.to_vec(),
            targets: targets.iter().map(|s| Target::queued(s.to_string(), 0)).collect(),
            state: JobState::Running,
            created_ms: 0,
            finished_ms: None,
            events: vec![],
            notified_seq: 0,
        }
    }

    #[test]
    fn a_target_walks_the_queue_and_the_job_ends_when_all_did() {
        let mut j = job(&["e1", "e2"], &[CommandKind::Fetch, CommandKind::Pin]);
        j.command_done(0, 1);
        assert_eq!(
            (j.targets[0].command, j.targets[0].state),
            (1, TargetState::Queued)
        );
        assert!(j.is_source(0));
        j.command_done(0, 2);
        assert!(j.target_ended(0) && !j.settle(3));
        j.set_state(1, TargetState::Failed, Some("disk".into()), 4);
        assert!(j.settle(5));
        assert_eq!(j.state, JobState::Failed);
        let seqs: Vec<u64> = j.events.iter().map(|e| e.seq).collect();
        assert_eq!(
            seqs,
            (1..=seqs.len() as u64).collect::<Vec<_>>(),
            "events in order"
        );
        assert_eq!(j.repair(6), 2);
        assert_eq!(j.state, JobState::Running);
        assert!(j
            .targets
            .iter()
            .all(|t| t.state == TargetState::Queued && t.command == 0));
    }

    #[test]
    fn an_appended_command_reopens_targets_that_had_finished() {
        let mut j = job(&["e1"], &[CommandKind::Fetch]);
        j.command_done(0, 1);
        assert!(j.settle(2));
        j.append(CommandKind::Delete, 3);
        assert_eq!(j.state, JobState::Running);
        assert_eq!(
            (j.targets[0].command, j.targets[0].state),
            (1, TargetState::Queued)
        );
        j.command_done(0, 4);
        assert!(!j.is_source(0), "a deleted copy is no source");
    }
}
