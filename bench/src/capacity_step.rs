//! One step of scenario (g)'s ramp: `bench beat` helper processes (each at most `PER_HELPER`
//! servers, each from its own loopback source address) heartbeat for the warm-up and the window;
//! the control plane's, etcd's and the helpers' CPU is read over the window; the helpers'
//! figures are merged into the step's rate and latency percentiles.

use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context as _};

use crate::beat_load::BeatOutcome;
use crate::control_capacity::{percentile_ms, CapacityPlan, StepFigures, INTERVAL_MS, PER_HELPER};
use crate::proc_stats::{machine_busy_seconds, tree_cpu_seconds};
use crate::scenarios::RunContext;
use crate::servers::ServerProcess;

/// Runs the helpers for one step and merges their figures.
pub fn run_step(
    cx: &RunContext,
    plan: &CapacityPlan,
    control: &ServerProcess,
    fleet_file: &Path,
    step: usize,
    servers: usize,
) -> anyhow::Result<StepFigures> {
    let helpers = servers.div_ceil(PER_HELPER);
    let mut children: Vec<Child> = Vec::new();
    for h in 0..helpers {
        let from = h * servers / helpers;
        let count = (h + 1) * servers / helpers - from;
        let child = Command::new(&cx.exe)
            .arg("beat")
            .arg("--control")
            .arg(control.addr.to_string())
            .arg("--fleet")
            .arg(fleet_file)
            .args(["--from", &from.to_string(), "--count", &count.to_string()])
            .arg("--source")
            .arg(Ipv4Addr::new(127, 1, step as u8 + 1, h as u8 + 1).to_string())
            .args(["--warmup-ms", &plan.warmup.as_millis().to_string()])
            .args(["--measure-ms", &plan.measure.as_millis().to_string()])
            .args(["--interval-ms", &INTERVAL_MS.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting a `bench beat` helper")?;
        children.push(child);
    }
    let helper_pids: Vec<u32> = children.iter().map(Child::id).collect();
    let etcd_pids = etcd_members();
    let cpu = |pids: &[u32]| pids.iter().map(|&p| tree_cpu_seconds(p)).sum::<f64>();
    std::thread::sleep(plan.warmup);
    let (control0, etcd0, helpers0) = (
        tree_cpu_seconds(control.pid()),
        cpu(&etcd_pids),
        cpu(&helper_pids),
    );
    let (machine0, t0) = (machine_busy_seconds(), Instant::now());
    std::thread::sleep(plan.measure);
    let (control1, etcd1, helpers1) = (
        tree_cpu_seconds(control.pid()),
        cpu(&etcd_pids),
        cpu(&helper_pids),
    );
    let (machine1, seconds) = (machine_busy_seconds(), t0.elapsed().as_secs_f64());
    let mut outcomes = Vec::new();
    let mut failure = None;
    for child in children {
        match collect(child) {
            Ok(o) => outcomes.push(o),
            Err(e) => failure = failure.or(Some(e)),
        }
    }
    if let Some(e) = failure {
        return Err(e);
    }
    let mut latencies: Vec<u64> = outcomes
        .iter()
        .flat_map(|o| o.latencies_us.iter().copied())
        .collect();
    latencies.sort_unstable();
    let due: u64 = outcomes.iter().map(|o| o.due).sum();
    let answered: u64 = outcomes.iter().map(|o| o.answered).sum();
    Ok(StepFigures {
        servers,
        helpers,
        due,
        answered,
        failed: outcomes.iter().map(|o| o.failed).sum(),
        heartbeats_per_sec: answered as f64 / plan.measure.as_secs_f64(),
        p50_ms: percentile_ms(&latencies, 0.5),
        p99_ms: percentile_ms(&latencies, 0.99),
        max_ms: latencies.last().map_or(0.0, |&l| l as f64 / 1000.0),
        avg_body_bytes: outcomes.iter().map(|o| o.body_bytes).sum::<u64>() as f64 / due.max(1) as f64,
        control_cores: (control1 - control0) / seconds,
        etcd_cores: (etcd1 - etcd0) / seconds,
        helper_cores: (helpers1 - helpers0) / seconds,
        machine_cores: (machine1 - machine0) / seconds,
        first_error: outcomes.into_iter().find_map(|o| o.first_error),
    })
}

/// The etcd members this process started (its children named `etcd`).
fn etcd_members() -> Vec<u32> {
    crate::proc_stats::process_tree(std::process::id())
        .into_iter()
        .filter(|pid| std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "etcd"))
        .collect()
}

/// Waits for a helper (they end by themselves: warm-up, window, then at most the beat timeout)
/// and reads its figures.
fn collect(child: Child) -> anyhow::Result<BeatOutcome> {
    let out = child
        .wait_with_output()
        .context("waiting for a `bench beat` helper")?;
    if !out.status.success() {
        bail!(
            "a `bench beat` helper failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    serde_json::from_slice(&out.stdout).context("reading a `bench beat` helper's figures")
}
