//! `cargo xtask bench`: builds strata and the harness (release), installs the peers (nginx,
//! HAProxy) from Debian's packages when missing, and runs `bench run` with the given options,
//! which writes the report.

use std::process::Command;

use clap::Args;

use crate::setup::install_debian_packages;
use crate::shell::{exec, root};

/// The peers strata is measured against.
const PEER_PACKAGES: &[&str] = &["nginx", "haproxy", "knot", "dnsperf"];

#[derive(Args)]
pub struct BenchArgs {
    /// Options for `bench run`: --quick, --no-peers, --out DIR, --only a,b,c,d
    /// (see `target/release/bench run --help`).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

pub fn run(args: &BenchArgs) -> anyhow::Result<()> {
    let strata = crate::build::release_binary()?;
    exec(Command::new("cargo").args(["build", "--release", "--package", "bench"]))?;
    if !args.args.iter().any(|a| a == "--no-peers") {
        install_debian_packages(PEER_PACKAGES, false)?;
    }
    let mut cmd = Command::new(root().join("target/release/bench"));
    cmd.arg("run").arg("--strata").arg(&strata).args(&args.args);
    exec(&mut cmd)
}
