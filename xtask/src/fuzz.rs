//! `cargo xtask fuzz`: runs each cargo-fuzz target (nightly, libFuzzer) for a fixed time.
//! Crashing inputs land in userspace/http/fuzz/artifacts/; copy them to userspace/http/fuzz/regressions/
//! where the unit tests replay them.

use std::process::Command;

use clap::Args;

use crate::shell::{exec, output};

/// The fuzz targets in userspace/http/fuzz/fuzz_targets/.
pub const TARGETS: &[&str] = &["request_head", "range_header"];

#[derive(Args)]
pub struct FuzzArgs {
    /// Seconds to run each target.
    #[arg(long, default_value_t = 60)]
    time: u64,
    /// Run only this target.
    #[arg(long)]
    target: Option<String>,
}

pub fn run(args: FuzzArgs) -> anyhow::Result<()> {
    if output(Command::new("cargo").args(["fuzz", "--version"])).is_none() {
        println!("fuzz: installing cargo-fuzz");
        exec(Command::new("cargo").args(["install", "cargo-fuzz", "--locked"]))?;
    }
    let targets: Vec<&str> = match &args.target {
        Some(t) => {
            anyhow::ensure!(
                TARGETS.contains(&t.as_str()),
                "unknown fuzz target {t}; targets: {}",
                TARGETS.join(", ")
            );
            vec![t.as_str()]
        }
        None => TARGETS.to_vec(),
    };
    for target in targets {
        println!("fuzz: {target} for {} s", args.time);
        exec(
            Command::new("cargo")
                .args([
                    "+nightly",
                    "fuzz",
                    "run",
                    "--fuzz-dir",
                    "userspace/http/fuzz",
                    target,
                    "--",
                ])
                .arg(format!("-max_total_time={}", args.time)),
        )?;
    }
    Ok(())
}
