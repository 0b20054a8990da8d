//! `strata edge reload|upgrade`: asks a running server, through its admin listener, to hand its
//! listeners to a new process (see `strata_edge::server::handover`), and prints the outcome: the
//! new process's id, or why the old one keeps serving (an invalid configuration, a successor
//! that failed to start).

use std::time::Duration;

use anyhow::bail;
use strata_edge::server::handover::Successor;

use crate::cli::ProcessArgs;

/// Longest wait for the answer: the successor's start (`handover.ready_timeout`, 120 s by
/// default) and some.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(180);

/// Runs one reload or upgrade and prints the server's answer.
pub fn run(args: &ProcessArgs, which: Successor) -> anyhow::Result<()> {
    let path = match which {
        Successor::SameBinary => "/process/reload",
        Successor::OnDisk => "/process/upgrade",
    };
    let (status, body) = super::guard_cli::request(args.admin, "POST", path, ANSWER_TIMEOUT)?;
    print!("{body}");
    if !body.ends_with('\n') {
        println!();
    }
    if status >= 300 {
        bail!(
            "the server at {} answered {status}: still running the old process",
            args.admin
        );
    }
    Ok(())
}
