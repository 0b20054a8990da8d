//! Scenario (g), the control plane's capacity on each registry backend (the embedded redb file,
//! the default, and a three-member etcd cluster): how many servers heartbeating every second one
//! control plane carries before the heartbeat latency's p99 passes one second, and how many API
//! writes per second it takes. The control plane (and etcd's members) run on the server CPU; the
//! simulated servers (`bench beat` helpers, see beat_load.rs) and one real storage server on the
//! load CPU. Per backend: a fresh control plane, content really ingested (edges report demand
//! for it), API writes measured on the quiet plane, then the fleet ramped in steps, each measured
//! for a fixed time, until the first step whose p99 passes one second. Reported, not asserted.
//! The control plane and its setup are in capacity_fixture.rs, one step in capacity_step.rs.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use indicatif::ProgressBar;
use serde::Serialize;

use crate::capacity_fixture::{
    ingest, issue_tokens, setup, start_control, start_storage, tenant_writes, Api,
};
use crate::capacity_step::run_step;
use crate::scenarios::{RunContext, Settings, LOAD_CPU, SERVER_CPU};
use crate::sim_heartbeat::{Fleet, SimServer};

/// The heartbeat interval of every simulated server.
pub const INTERVAL_MS: u64 = 1000;
/// The latency a step's p99 must stay under.
pub const P99_LIMIT_MS: f64 = 1000.0;
/// A step also fails when more than this share of its beats fail.
pub const FAILED_SHARE_LIMIT: f64 = 0.01;
/// Most simulated servers one helper process holds (a connection each).
pub(crate) const PER_HELPER: usize = 2000;
/// Concurrent clients of the API-write measurement (each on its own tenant).
pub(crate) const WRITERS: usize = 16;
/// Content ingested for the edges' demand: contents × assets of `ASSET_BYTES`.
pub(crate) const CONTENTS: usize = 4;
pub(crate) const ASSETS_PER_CONTENT: usize = 16;
pub(crate) const ASSET_BYTES: usize = 4096;
pub(crate) const HOME_CLUSTER: &str = "bench-store";

/// The two registries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Redb,
    Etcd,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Redb => "redb (embedded, default)",
            Backend::Etcd => "etcd (3 members)",
        }
    }
}

/// How the scenario runs.
pub struct CapacityPlan {
    pub steps: Vec<usize>,
    pub warmup: Duration,
    pub measure: Duration,
    pub write_time: Duration,
}

impl CapacityPlan {
    pub fn new(quick: bool) -> CapacityPlan {
        if quick {
            CapacityPlan {
                steps: vec![100, 250, 500, 1000, 2000, 4000],
                warmup: Duration::from_secs(2),
                measure: Duration::from_secs(2),
                write_time: Duration::from_secs(2),
            }
        } else {
            CapacityPlan {
                steps: vec![
                    100, 150, 200, 300, 400, 500, 600, 750, 1000, 1500, 2000, 3000, 4000, 6000, 8000,
                ],
                warmup: Duration::from_secs(3),
                measure: Duration::from_secs(5),
                write_time: Duration::from_secs(4),
            }
        }
    }
}

/// One step of the ramp.
#[derive(Debug, Default, Serialize)]
pub struct StepFigures {
    pub servers: usize,
    pub helpers: usize,
    pub due: u64,
    pub answered: u64,
    pub failed: u64,
    pub heartbeats_per_sec: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub avg_body_bytes: f64,
    /// The control plane's CPU seconds per second of the window (its own process).
    pub control_cores: f64,
    /// The etcd members' CPU seconds per second of the window (0 on redb).
    pub etcd_cores: f64,
    /// The `bench beat` helpers' CPU seconds per second of the window.
    pub helper_cores: f64,
    /// The whole machine's busy cores over the window (other work on the machine included).
    pub machine_cores: f64,
    pub first_error: Option<String>,
}

impl StepFigures {
    /// CPU milliseconds the control plane and the registry (etcd) spent per answered beat.
    pub fn cpu_ms_per_beat(&self) -> f64 {
        (self.control_cores + self.etcd_cores) * 1000.0 / self.heartbeats_per_sec.max(1e-9)
    }

    /// Whether the control plane carried this step: p99 within the limit, few failures.
    pub fn carried(&self) -> bool {
        self.due > 0
            && self.p99_ms <= P99_LIMIT_MS
            && (self.failed as f64) <= FAILED_SHARE_LIMIT * self.due as f64
    }
}

/// API writes measured on a quiet control plane.
#[derive(Debug, Default, Serialize)]
pub struct WriteFigures {
    pub what: String,
    pub writers: usize,
    pub writes: u64,
    pub failed: u64,
    pub per_sec: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub first_error: Option<String>,
}

/// One backend's figures.
#[derive(Debug, Default, Serialize)]
pub struct BackendCapacity {
    pub backend: String,
    pub steps: Vec<StepFigures>,
    /// The largest step carried (p99 ≤ 1 s), if any.
    pub carried: Option<usize>,
    /// The first step not carried (None: every step was).
    pub exceeded_at: Option<usize>,
    pub writes: Vec<WriteFigures>,
    /// Why it stopped early, when it could not run.
    pub failure: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct CapacityResult {
    pub interval_ms: u64,
    pub warmup_seconds: f64,
    pub measure_seconds: f64,
    pub storage_every: usize,
    pub held_per_edge: usize,
    pub demand_per_beat: usize,
    pub blocks_per_edge: usize,
    pub backends: Vec<BackendCapacity>,
}

/// Runs scenario (g) on both backends; one step of `bar` per backend.
pub fn measure(cx: &RunContext, s: &Settings, bar: &ProgressBar) -> CapacityResult {
    let plan = CapacityPlan::new(s.quick);
    let backends = [Backend::Redb, Backend::Etcd]
        .into_iter()
        .map(|b| {
            let mut figures = BackendCapacity {
                backend: b.name().into(),
                ..Default::default()
            };
            if let Err(e) = measure_backend(cx, &plan, b, bar, &mut figures) {
                bar.println(format!("(g) control capacity on {}: {e:#}", b.name()));
                figures.failure = Some(format!("{e:#}"));
            }
            bar.inc(1);
            figures
        })
        .collect();
    CapacityResult {
        interval_ms: INTERVAL_MS,
        warmup_seconds: plan.warmup.as_secs_f64(),
        measure_seconds: plan.measure.as_secs_f64(),
        storage_every: crate::sim_heartbeat::STORAGE_EVERY,
        held_per_edge: crate::sim_heartbeat::HELD_PER_EDGE,
        demand_per_beat: crate::sim_heartbeat::DEMAND_PER_BEAT,
        blocks_per_edge: crate::sim_heartbeat::BLOCKS_PER_EDGE,
        backends,
    }
}

/// A three-member etcd cluster started on the server CPU (its members inherit this thread's
/// affinity), or why it could not start.
fn start_etcd() -> anyhow::Result<strata_tests::etcd::TestEtcd> {
    crate::servers::pin_to_cpu(SERVER_CPU)?;
    let started = std::panic::catch_unwind(|| strata_tests::etcd::TestEtcd::cluster(3));
    crate::servers::pin_to_cpu(LOAD_CPU)?;
    started.map_err(|p| {
        let why = p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        anyhow::anyhow!("starting a 3-member etcd cluster (apt-get install etcd-server): {why}")
    })
}

fn measure_backend(
    cx: &RunContext,
    plan: &CapacityPlan,
    backend: Backend,
    bar: &ProgressBar,
    figures: &mut BackendCapacity,
) -> anyhow::Result<()> {
    let what = format!("(g) control capacity, {}", backend.name());
    bar.set_message(format!("{what}: starting"));
    let dir = cx.scratch();
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let etcd = match backend {
        Backend::Redb => None,
        Backend::Etcd => Some(start_etcd()?),
    };
    let control = start_control(cx, &dir.join("control"), etcd.as_ref().map(|e| e.url()))?;
    let operator = std::fs::read_to_string(dir.join("control").join("operator.token"))
        .context("reading the operator token")?
        .trim()
        .to_string();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let api = Api {
        addr: control.addr,
        operator,
    };
    rt.block_on(setup(&api))?;
    let storage = start_storage(cx, &api, &dir, &rt)?;
    let assets = rt.block_on(ingest(&api))?;
    bar.set_message(format!("{what}: API writes"));
    figures
        .writes
        .push(rt.block_on(tenant_writes(&api, plan.write_time)));

    let mut tokens: Vec<String> = Vec::new();
    let mut issue_time = Duration::ZERO;
    for (step, &servers) in plan.steps.iter().enumerate() {
        bar.set_message(format!("{what}: service tokens for {servers} servers"));
        let began = Instant::now();
        let issued = rt.block_on(issue_tokens(&api, tokens.len(), servers))?;
        issue_time += began.elapsed();
        tokens.extend(issued);
        let fleet = Fleet {
            servers: tokens
                .iter()
                .enumerate()
                .map(|(i, t)| SimServer::new(i, t.clone()))
                .collect(),
            assets: assets.clone(),
        };
        let fleet_file = dir.join("fleet.json");
        std::fs::write(&fleet_file, serde_json::to_vec(&fleet)?)
            .with_context(|| format!("writing {}", fleet_file.display()))?;
        bar.set_message(format!("{what}: {servers} servers heartbeating"));
        let f = run_step(cx, plan, &control, &fleet_file, step, servers)?;
        let carried = f.carried();
        figures.steps.push(f);
        if carried {
            figures.carried = Some(servers);
        } else {
            figures.exceeded_at = Some(servers);
            break;
        }
    }
    if !tokens.is_empty() {
        figures.writes.push(WriteFigures {
            what: "POST /v1/tokens (new service token)".into(),
            writers: WRITERS,
            writes: tokens.len() as u64,
            per_sec: tokens.len() as f64 / issue_time.as_secs_f64().max(1e-9),
            ..Default::default()
        });
    }
    drop(storage);
    drop(control);
    drop(etcd);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// The `q` quantile of sorted microseconds, in milliseconds.
pub(crate) fn percentile_ms(sorted_us: &[u64], q: f64) -> f64 {
    if sorted_us.is_empty() {
        return 0.0;
    }
    let i = ((sorted_us.len() as f64 * q).ceil() as usize).clamp(1, sorted_us.len()) - 1;
    sorted_us[i] as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_taken_from_the_sorted_samples() {
        let v: Vec<u64> = (1..=100).map(|x| x * 1000).collect();
        assert_eq!(percentile_ms(&v, 0.5), 50.0);
        assert_eq!(percentile_ms(&v, 0.99), 99.0);
        assert_eq!(percentile_ms(&[], 0.99), 0.0);
    }

    #[test]
    fn a_step_is_carried_only_under_the_p99_limit_with_few_failures() {
        let step = |p99_ms, failed| StepFigures {
            due: 1000,
            p99_ms,
            failed,
            ..Default::default()
        };
        assert!(step(999.0, 0).carried());
        assert!(!step(1001.0, 0).carried());
        assert!(!step(10.0, 11).carried());
        assert!(!StepFigures::default().carried(), "no beat measured: not carried");
    }
}
