//! Scenario (g), the control plane's capacity on each registry backend (the embedded redb file,
//! the default, and a three-member etcd cluster): how many servers heartbeating every second one
//! control plane carries before the heartbeat latency's p99 passes one second, and how many API
//! writes per second it takes. The control plane (and etcd's members) run on the server CPU; the
//! simulated servers (`bench beat` helpers, see beat_load.rs) and one real storage server on the
//! load CPU. Per backend: a fresh control plane, content really ingested (edges report demand
//! for it), API writes measured on the quiet plane, then the fleet ramped in steps, each measured
//! for a fixed time, until the first step whose p99 passes one second. Reported, not asserted.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use indicatif::ProgressBar;
use serde::Serialize;
use serde_json::json;

use crate::api_conn::ApiConn;
use crate::beat_load::BeatOutcome;
use crate::proc_stats::{machine_busy_seconds, tree_cpu_seconds};
use crate::scenarios::{RunContext, Settings, LOAD_CPU, SERVER_CPU};
use crate::servers::{free_addr, ServerProcess};
use crate::sim_heartbeat::{Fleet, SimServer, SIM_CLUSTER};

/// The heartbeat interval of every simulated server.
pub const INTERVAL_MS: u64 = 1000;
/// The latency a step's p99 must stay under.
pub const P99_LIMIT_MS: f64 = 1000.0;
/// A step also fails when more than this share of its beats fail.
pub const FAILED_SHARE_LIMIT: f64 = 0.01;
/// Most simulated servers one helper process holds (a connection each).
const PER_HELPER: usize = 2000;
/// Concurrent clients of the API-write measurement (each on its own tenant).
const WRITERS: usize = 16;
/// Content ingested for the edges' demand: contents × assets of `ASSET_BYTES`.
const CONTENTS: usize = 4;
const ASSETS_PER_CONTENT: usize = 16;
const ASSET_BYTES: usize = 4096;
const HOME_CLUSTER: &str = "bench-store";

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

/// `strata control serve` with its defaults (server TTL 5 s, map every 10 s) on the server CPU.
fn start_control(
    cx: &RunContext,
    data_dir: &Path,
    registry: Option<String>,
) -> anyhow::Result<ServerProcess> {
    let addr = free_addr()?;
    let mut cmd = Command::new(&cx.env.strata);
    cmd.args(["control", "serve", "--data-dir"])
        .arg(data_dir)
        .arg("--listen")
        .arg(addr.to_string())
        .env("RUST_LOG", "warn");
    let name = match &registry {
        Some(url) => {
            cmd.arg("--registry").arg(url);
            "capacity-control-etcd"
        }
        None => "capacity-control-redb",
    };
    ServerProcess::spawn(name, cmd, addr, None, SERVER_CPU, &cx.env.logs)
}

/// The control plane's address and the operator's token.
struct Api {
    addr: SocketAddr,
    operator: String,
}

impl Api {
    async fn call(
        &self,
        conn: &mut ApiConn,
        method: &str,
        path: &str,
        body: &serde_json::Value,
    ) -> anyhow::Result<serde_json::Value> {
        conn.request(method, path, &self.operator, body.to_string().as_bytes())
            .await?
            .json(&format!("{method} {path}"))
    }
}

/// Clusters (the real storage server's and the simulated ones'), the tenant whose content the
/// edges ask for, and the tenants the writers update.
async fn setup(api: &Api) -> anyhow::Result<()> {
    let mut c = ApiConn::connect(api.addr, None).await?;
    for cluster in [HOME_CLUSTER, SIM_CLUSTER] {
        api.call(
            &mut c,
            "POST",
            "/v1/clusters",
            &json!({"name": cluster, "tier": "storage"}),
        )
        .await?;
    }
    for tenant in std::iter::once("bench".to_string()).chain((0..WRITERS).map(|i| format!("writer{i}"))) {
        api.call(
            &mut c,
            "POST",
            "/v1/tenants",
            &json!({"name": tenant, "home_cluster": HOME_CLUSTER}),
        )
        .await?;
    }
    Ok(())
}

/// A real `strata storage` in the home cluster (ingested content is placed on it), on the load
/// CPU, once the control plane has it up.
fn start_storage(
    cx: &RunContext,
    api: &Api,
    dir: &Path,
    rt: &tokio::runtime::Runtime,
) -> anyhow::Result<ServerProcess> {
    let token = rt.block_on(async {
        let mut c = ApiConn::connect(api.addr, None).await?;
        let v = api
            .call(
                &mut c,
                "POST",
                "/v1/tokens",
                &json!({"role": "service", "server": "store-1"}),
            )
            .await?;
        v["token"]
            .as_str()
            .map(str::to_string)
            .context("no token in the answer")
    })?;
    let token_file = dir.join("store-1.token");
    std::fs::write(&token_file, token).with_context(|| format!("writing {}", token_file.display()))?;
    let root = dir.join("store-1");
    std::fs::create_dir_all(&root).with_context(|| format!("creating {}", root.display()))?;
    let (addr, admin) = (free_addr()?, free_addr()?);
    let mut cmd = Command::new(&cx.env.strata);
    cmd.arg("storage")
        .arg("--listen")
        .arg(addr.to_string())
        .arg("--admin-listen")
        .arg(admin.to_string())
        .arg("--root")
        .arg(&root)
        .args([
            "--telemetry",
            "off",
            "--cluster",
            HOME_CLUSTER,
            "--name",
            "store-1",
        ])
        .arg("--control")
        .arg(format!("http://{}", api.addr))
        .arg("--control-token-file")
        .arg(&token_file)
        .env("RUST_LOG", "warn");
    let storage = ServerProcess::spawn("capacity-storage", cmd, addr, Some(admin), LOAD_CPU, &cx.env.logs)?;
    Ok(storage)
}

/// Ingests `CONTENTS` contents for tenant `bench` (retrying the first while the storage server
/// registers); returns every asset's path and size.
async fn ingest(api: &Api) -> anyhow::Result<Vec<(String, u64)>> {
    let mut c = ApiConn::connect(api.addr, None).await?;
    let mut assets = Vec::new();
    let body = vec![b'x'; ASSET_BYTES];
    for n in 0..CONTENTS {
        let content = format!("show{n}");
        let decls: Vec<serde_json::Value> = (0..ASSETS_PER_CONTENT)
            .map(|a| json!({"name": format!("seg{a}.m4s"), "size": ASSET_BYTES}))
            .collect();
        let id = api
            .call(
                &mut c,
                "POST",
                "/v1/tenants/bench/ingests",
                &json!({"content": content, "assets": decls}),
            )
            .await?["id"]
            .as_str()
            .map(str::to_string)
            .context("no ingest id in the answer")?;
        for a in 0..ASSETS_PER_CONTENT {
            let path = format!("/v1/ingests/{id}/files/seg{a}.m4s");
            let answer = c.request("PUT", &path, &api.operator, &body).await?;
            answer.json(&format!("PUT {path}"))?;
            assets.push((format!("bench/{content}/seg{a}.m4s"), ASSET_BYTES as u64));
        }
        let began = Instant::now();
        loop {
            // 409 while the home cluster has no registered server yet (the storage server's
            // first heartbeat).
            let path = format!("/v1/ingests/{id}/commit");
            let answer = c.request("POST", &path, &api.operator, b"{}").await?;
            if answer.status == 409 && began.elapsed() < Duration::from_secs(20) {
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
            answer.json(&format!("POST {path}"))?;
            break;
        }
    }
    Ok(assets)
}

/// `WRITERS` clients each PATCHing its own tenant's quota back to back for `time`.
async fn tenant_writes(api: &Api, time: Duration) -> WriteFigures {
    let until = tokio::time::Instant::now() + time;
    let began = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..WRITERS {
        let (addr, token) = (api.addr, api.operator.clone());
        tasks.spawn(async move {
            let mut latencies = Vec::new();
            let mut failed = 0u64;
            let mut first_error = None;
            let mut conn = None;
            let mut quota = 1u64 << 40;
            while tokio::time::Instant::now() < until {
                quota += 1;
                let body = json!({ "quota_bytes": quota }).to_string();
                let path = format!("/v1/tenants/writer{w}");
                let t0 = Instant::now();
                let result = async {
                    if conn.is_none() {
                        conn = Some(ApiConn::connect(addr, None).await?);
                    }
                    match conn.as_mut() {
                        Some(c) => c
                            .request("PATCH", &path, &token, body.as_bytes())
                            .await?
                            .json(&format!("PATCH {path}")),
                        None => bail!("no connection"),
                    }
                }
                .await;
                latencies.push(t0.elapsed().as_micros() as u64);
                if let Err(e) = result {
                    failed += 1;
                    first_error.get_or_insert(format!("{e:#}"));
                    conn = None;
                }
            }
            (latencies, failed, first_error)
        });
    }
    let mut all = Vec::new();
    let mut figures = WriteFigures {
        what: "PATCH /v1/tenants/T (a tenant's quota)".into(),
        writers: WRITERS,
        ..Default::default()
    };
    while let Some(Ok((latencies, failed, first_error))) = tasks.join_next().await {
        all.extend(latencies);
        figures.failed += failed;
        if figures.first_error.is_none() {
            figures.first_error = first_error;
        }
    }
    let seconds = began.elapsed().as_secs_f64();
    figures.writes = all.len() as u64 - figures.failed;
    figures.per_sec = figures.writes as f64 / seconds.max(1e-9);
    all.sort_unstable();
    figures.p50_ms = percentile_ms(&all, 0.5);
    figures.p99_ms = percentile_ms(&all, 0.99);
    figures
}

/// Service tokens for servers `from..to`, issued by `WRITERS` concurrent clients.
async fn issue_tokens(api: &Api, from: usize, to: usize) -> anyhow::Result<Vec<String>> {
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..WRITERS {
        let (addr, token) = (api.addr, api.operator.clone());
        tasks.spawn(async move {
            let mut c = ApiConn::connect(addr, None).await?;
            let mut out = Vec::new();
            for i in (from + w..to).step_by(WRITERS) {
                let name = SimServer::new(i, String::new()).name;
                let body = json!({"role": "service", "server": name}).to_string();
                let v = c
                    .request("POST", "/v1/tokens", &token, body.as_bytes())
                    .await?
                    .json(&format!("issuing a service token for {name}"))?;
                let t = v["token"].as_str().context("no token in the answer")?;
                out.push((i, t.to_string()));
            }
            anyhow::Ok(out)
        });
    }
    let mut all = Vec::new();
    while let Some(done) = tasks.join_next().await {
        all.extend(done.context("a token task failed")??);
    }
    all.sort_unstable_by_key(|(i, _)| *i);
    Ok(all.into_iter().map(|(_, t)| t).collect())
}

/// Runs the helpers for one step and merges their figures.
fn run_step(
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

/// The `q` quantile of sorted microseconds, in milliseconds.
fn percentile_ms(sorted_us: &[u64], q: f64) -> f64 {
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
