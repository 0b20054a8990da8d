//! Building, testing and running strata.

use std::path::PathBuf;
use std::process::Command;

use crate::shell::{exec, root};

/// Builds the release binary and returns its path.
pub fn release_binary() -> anyhow::Result<PathBuf> {
    exec(Command::new("cargo").args(["build", "--release", "--package", "strata", "--bin", "strata"]))?;
    Ok(root().join("target/release/strata"))
}

/// Builds the binary, then runs every unit and integration test against it.
pub fn test(extra: &[String]) -> anyhow::Result<()> {
    let bin = release_binary()?;
    let mut cmd = Command::new("cargo");
    cmd.args(["test", "--release", "--workspace", "--exclude", "strata-ebpf"])
        .args(extra)
        .env("STRATA_BIN", &bin);
    exec(&mut cmd)
}

/// Builds the binary and runs `strata pop` with its data under target/.
pub fn run_pop(extra: &[String]) -> anyhow::Result<()> {
    let bin = release_binary()?;
    let mut cmd = Command::new(&bin);
    cmd.arg("pop");
    if !extra.iter().any(|a| a == "--data-dir") {
        cmd.arg("--data-dir").arg(root().join("target/strata-pop"));
    }
    cmd.args(extra);
    exec(&mut cmd)
}
