//! Building, testing and running strata.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{bail, Context as _};

use crate::shell::{describe, exec, root};

/// Builds the release binary and returns its path.
pub fn release_binary() -> anyhow::Result<PathBuf> {
    exec(Command::new("cargo").args(["build", "--release", "--package", "strata", "--bin", "strata"]))?;
    Ok(root().join("target/release/strata"))
}

/// Builds the binary, then runs every unit and integration test against it, and closes with
/// one line that totals every test binary's results.
pub fn test(extra: &[String]) -> anyhow::Result<()> {
    let bin = release_binary()?;
    let mut cmd = Command::new("cargo");
    cmd.args([
        "test",
        "--release",
        "--no-fail-fast",
        "--workspace",
        "--exclude",
        "strata-ebpf",
    ])
    .args(extra)
    .env("STRATA_BIN", &bin)
    .current_dir(root())
    .stdout(Stdio::piped());
    println!("$ {}", describe(&cmd));
    let mut child = cmd.spawn().context("starting cargo test")?;
    let stdout = child.stdout.take().context("cargo test stdout")?;
    let (mut passed, mut failed) = (0u64, 0u64);
    for line in BufReader::new(stdout).lines() {
        let line = line.context("reading cargo test output")?;
        println!("{line}");
        if let Some(rest) = line.strip_prefix("test result: ") {
            passed += count(rest, " passed");
            failed += count(rest, " failed");
        }
    }
    let status = child.wait().context("waiting for cargo test")?;
    println!("tests: {passed} passed, {failed} failed");
    if !status.success() {
        bail!("cargo test failed with {status}");
    }
    Ok(())
}

/// The number before `what` in a cargo test summary ("ok. 12 passed; 0 failed; ...").
fn count(summary: &str, what: &str) -> u64 {
    summary
        .split(';')
        .find_map(|part| part.trim().strip_suffix(what.trim_start()).map(str::trim))
        .and_then(|n| n.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Builds the binary and runs `strata pop` with its data under target/, HTTPS beside HTTP
/// with a self-signed certificate generated there.
pub fn run_pop(extra: &[String]) -> anyhow::Result<()> {
    let bin = release_binary()?;
    let mut cmd = Command::new(&bin);
    cmd.arg("pop");
    if !extra.iter().any(|a| a == "--data-dir") {
        cmd.arg("--data-dir").arg(root().join("target/strata-pop"));
    }
    if !extra.iter().any(|a| a == "--tls-cert") {
        let (cert, key) = crate::pop_cert::self_signed(&root().join("target/strata-pop-tls"))?;
        cmd.arg("--tls-cert").arg(cert).arg("--tls-key").arg(key);
    }
    cmd.args(extra);
    exec(&mut cmd)
}
