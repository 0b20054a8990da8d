//! Distribution jobs as they cross the wire: what an operator asks for (`POST /v1/jobs`), the
//! commands of a job's queue, each target's state, and the edge's side of the job agent
//! protocol (`POST /v1/jobs/agent`: an edge reports what it did and hears what to do next:
//! fetch from which source, pin, unpin, delete). The peer transfer path every edge serves on its
//! admin listener (`/v1/peer/{tenant}/{content}/{asset}`, by ranges, placement key) is named here
//! so both ends agree on it.

use serde::{Deserialize, Serialize};

/// The path prefix of the peer transfer endpoint on an edge's admin listener.
pub const PEER_PATH: &str = "/v1/peer";

/// One command of a job's queue; every target executes the queue in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CommandKind {
    /// Put the content on the target (from storage or a peer that has it), SHA-256 verified.
    Fetch,
    /// Keep the content: exempt from LRU and syncd eviction.
    Pin,
    /// Make the content evictable again.
    Unpin,
    /// Remove the content from the target's cache.
    Delete,
}

impl CommandKind {
    pub fn parse(s: &str) -> Option<CommandKind> {
        match s {
            "fetch" => Some(CommandKind::Fetch),
            "pin" => Some(CommandKind::Pin),
            "unpin" => Some(CommandKind::Unpin),
            "delete" => Some(CommandKind::Delete),
            _ => None,
        }
    }
}

/// Where a target is with its current command.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetState {
    Queued,
    Transferring,
    Verifying,
    Done,
    Failed,
    TimedOut,
    Cancelled,
}

impl TargetState {
    /// No further change without an operator (repair) or a new command.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            TargetState::Done | TargetState::Failed | TargetState::TimedOut | TargetState::Cancelled
        )
    }
}

/// `POST /v1/jobs`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobRequest {
    pub tenant: String,
    pub content: String,
    /// Asset names; empty: every asset of the content.
    #[serde(default)]
    pub assets: Vec<String>,
    /// `all-edges`, `region:NAME`, or a comma-separated list of edge names.
    pub to: String,
    /// How many receivers one source (the storage tier, or an edge that finished) serves.
    #[serde(default)]
    pub fanout: Option<u32>,
    /// Seconds a target may take (and may stay silent at most) before it is timed out.
    #[serde(default)]
    pub timeout_secs: Option<u64>,
    /// Webhook: POSTed JSON on each target's done / failed / timed out and at the job's end.
    #[serde(default)]
    pub notify_url: Option<String>,
    /// The command queue; empty: `[fetch]`.
    #[serde(default)]
    pub commands: Vec<CommandKind>,
}

/// Where an edge takes the bytes from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    /// `storage:NAME` or the edge's name.
    pub name: String,
    /// Base URL: a storage server's data listener (`/{t}/{c}/{a}`) or an edge's admin listener
    /// (`/v1/peer/{t}/{c}/{a}`).
    pub url: String,
    /// True for an edge (the peer path and the placement key apply).
    pub peer: bool,
}

/// One asset a fetch moves.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssetSpec {
    pub name: String,
    pub size: u64,
    pub sha256: String,
}

/// What an edge is told to do now for one job.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assignment {
    pub job: String,
    /// Index of the command in the job's queue.
    pub command: usize,
    pub kind: CommandKind,
    pub tenant: String,
    pub content: String,
    pub assets: Vec<AssetSpec>,
    /// Fetch: where from (changes when the control plane switches the receiver to a faster
    /// source; the edge resumes at its offset).
    #[serde(default)]
    pub source: Option<Source>,
}

/// What an edge reports about one assignment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetReport {
    pub job: String,
    pub command: usize,
    pub state: TargetState,
    /// The source the bytes come from now.
    #[serde(default)]
    pub source: Option<String>,
    /// Bytes received and kept so far (all assets).
    pub offset: u64,
    pub total: u64,
    /// Recent receive rate, bytes per second.
    pub rate_bps: u64,
    #[serde(default)]
    pub error: Option<String>,
    /// The source failed mid-transfer: give me another (the bytes so far are kept).
    #[serde(default)]
    pub source_failed: bool,
}

/// `POST /v1/jobs/agent`: an edge's reports.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentPoll {
    pub server: String,
    pub reports: Vec<TargetReport>,
}

/// The answer: everything this edge should be doing now, and the key peers accept.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentReply {
    pub assignments: Vec<Assignment>,
    #[serde(default)]
    pub peer_key: Option<String>,
}
