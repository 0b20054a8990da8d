//! The command line of distribution jobs: `strata job create|status|watch|cancel|repair|command`
//! (clap types; the work is in `roles/job.rs`).

use clap::{Args, Subcommand};

use crate::control_cli::ClientArgs;

#[derive(Debug, Args)]
pub struct JobArgs {
    #[command(subcommand)]
    pub command: JobCommand,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Subcommand)]
pub enum JobCommand {
    /// Distribute a content to many edges (cascaded: edges that finished feed others).
    Create {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        content: String,
        /// `all-edges`, `region:NAME`, or edge names separated by commas.
        #[arg(long)]
        to: String,
        /// Only these assets (comma-separated; default: all of the content's).
        #[arg(long, value_delimiter = ',')]
        assets: Vec<String>,
        /// Receivers per source (the storage tier, or an edge that finished).
        #[arg(long)]
        fanout: Option<u32>,
        /// Seconds each target may take.
        #[arg(long)]
        timeout: Option<u64>,
        /// Webhook URL notified (JSON POST) of each target's end and the job's.
        #[arg(long)]
        notify: Option<String>,
        /// The command queue, comma-separated: fetch, pin, unpin, delete [default: fetch].
        #[arg(long, value_delimiter = ',')]
        commands: Vec<String>,
        /// Return at once instead of watching the job to its end.
        #[arg(long)]
        no_wait: bool,
    },
    /// Every target's state, source, bytes and rate.
    Status {
        /// A job id; none: list the jobs.
        id: Option<String>,
        /// Print the raw JSON.
        #[arg(long)]
        json: bool,
    },
    /// Progress bars until the job ends.
    Watch { id: String },
    /// Stop a job: targets not yet done are cancelled.
    Cancel { id: String },
    /// Re-queue failed and timed-out targets, re-verify the done ones.
    Repair { id: String },
    /// Append a command (fetch, pin, unpin, delete) to a job's queue.
    Command { id: String, command: String },
}
