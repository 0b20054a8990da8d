//! `cargo xtask bench`: builds strata and the harness (release), installs the peers (nginx,
//! HAProxy) from Debian's packages when missing, and runs `bench run`, which writes the report.

use std::path::PathBuf;
use std::process::Command;

use clap::Args;

use crate::setup::install_debian_packages;
use crate::shell::{exec, root};

/// The peers strata is measured against.
const PEER_PACKAGES: &[&str] = &["nginx", "haproxy"];

#[derive(Args)]
pub struct BenchArgs {
    /// Smoke check: one run each, fewer workloads, short runs (under two minutes).
    #[arg(long)]
    quick: bool,
    /// Measure strata only (nginx and HAProxy neither installed nor run).
    #[arg(long)]
    no_peers: bool,
    /// Where the report goes.
    #[arg(long, default_value = "bench/results")]
    out: PathBuf,
}

pub fn run(args: &BenchArgs) -> anyhow::Result<()> {
    let strata = crate::build::release_binary()?;
    exec(Command::new("cargo").args(["build", "--release", "--package", "bench"]))?;
    if !args.no_peers {
        install_debian_packages(PEER_PACKAGES, false)?;
    }
    let mut cmd = Command::new(root().join("target/release/bench"));
    cmd.arg("run")
        .arg("--strata")
        .arg(&strata)
        .arg("--out")
        .arg(&args.out);
    if args.quick {
        cmd.arg("--quick");
    }
    if args.no_peers {
        cmd.arg("--no-peers");
    }
    exec(&mut cmd)
}
