//! Scenario (i): the director. A region of three strata edges with small caches under a control
//! plane, in front of one strata storage server, all on CPU 0; one Zipf stream of 1 MiB objects
//! spread over the three edges (a third of the connections each) from CPU 1. Measured with the
//! director off and on (`--director off|proxy`), each run on fresh processes and cold caches:
//! the storage tier's egress (its body bytes) and the region's byte hit ratio (1 − storage
//! bytes / bytes the viewers received), plus bytes moved between edges. syncd's pushes are off
//! (so what reaches storage is misses and admission fills only).

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use indicatif::ProgressBar;
use serde::Serialize;
use serde_json::json;

use crate::control_api::ControlApi;
use crate::corpus::Corpus;
use crate::figures::Spread;
use crate::load::{run_load, LoadPlan, Target};
use crate::scenarios::{alternate, Named, RunContext, Settings};
use crate::servers::{free_addr, ServerProcess};

pub const EDGES: usize = 3;

/// Director off or on.
#[derive(Clone, Copy, Debug)]
pub struct Mode(pub &'static str);

impl Named for Mode {
    fn name(&self) -> String {
        format!(
            "strata, 3 edges, director {}",
            if self.0 == "off" { "off" } else { "on (proxy)" }
        )
    }
}

/// One run's figures.
#[derive(Debug, Serialize)]
pub struct DirectorRun {
    pub viewer_bytes: u64,
    pub storage_bytes: f64,
    pub peer_bytes: f64,
    pub byte_hit_ratio: f64,
    pub storage_gbit_per_sec: f64,
    pub gbit_per_sec: f64,
    pub errors: u64,
    pub seconds: f64,
}

#[derive(Debug, Serialize)]
pub struct DirectorModeResult {
    pub name: String,
    pub runs: Vec<DirectorRun>,
    pub byte_hit_ratio: Spread,
    pub storage_gib: Spread,
    pub failure: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct DirectorResult {
    pub title: String,
    pub modes: Vec<DirectorModeResult>,
}

/// The plan: (objects, cache MiB per edge, connections, seconds).
fn shape(s: &Settings) -> (usize, u64, usize, Duration) {
    if s.quick {
        (96, 16, 9, Duration::from_secs(6))
    } else {
        (256, 32, 15, Duration::from_secs(15))
    }
}

pub fn steps(s: &Settings) -> u64 {
    if s.wants("i") {
        2 * s.reps as u64
    } else {
        0
    }
}

pub fn measure(cx: &RunContext, s: &Settings, bar: &ProgressBar) -> anyhow::Result<DirectorResult> {
    let (count, cache_mib, connections, duration) = shape(s);
    let corpus = Corpus::new(&cx.files)?;
    let targets = Arc::new(corpus.whole_files("dirzipf", count, 1 << 20)?);
    let modes = [Mode("off"), Mode("proxy")];
    let title = format!(
        "(i) director: Zipf s=1 over {count} × 1 MiB spread over {EDGES} edges of one region, \
         {cache_mib} MiB cache each, {connections} conns, {} s",
        duration.as_secs()
    );
    let per = alternate(s.reps, &modes, bar, "(i) director", |m| {
        once(cx, m.0, &targets, cache_mib << 20, connections, duration)
    });
    Ok(DirectorResult {
        title,
        modes: modes
            .iter()
            .zip(per)
            .map(|(m, (runs, failure))| DirectorModeResult {
                name: m.name(),
                byte_hit_ratio: Spread::of(&runs.iter().map(|r| r.byte_hit_ratio).collect::<Vec<_>>()),
                storage_gib: Spread::of(
                    &runs
                        .iter()
                        .map(|r| r.storage_bytes / (1u64 << 30) as f64)
                        .collect::<Vec<_>>(),
                ),
                runs,
                failure,
            })
            .collect(),
    })
}

fn strata(cx: &RunContext, args: &[String]) -> Command {
    let mut cmd = Command::new(&cx.env.strata);
    cmd.args(args).env("RUST_LOG", "warn");
    cmd
}

fn token(api: &ControlApi, server: &str, dir: &Path) -> anyhow::Result<String> {
    let answer = api.post("/v1/tokens", &json!({ "role": "service", "server": server }))?;
    let token = answer["token"]
        .as_str()
        .with_context(|| format!("no token in {answer}"))?;
    let file = dir.join(format!("{server}.token"));
    std::fs::write(&file, token).with_context(|| format!("writing {}", file.display()))?;
    Ok(file.to_string_lossy().into_owned())
}

/// One run on fresh processes: control plane, storage, three edges; the load; the figures.
fn once(
    cx: &RunContext,
    mode: &str,
    targets: &Arc<Vec<Target>>,
    cache_bytes: u64,
    connections: usize,
    duration: Duration,
) -> anyhow::Result<DirectorRun> {
    let dir = cx.scratch();
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let cpu = cx.env.cpu;
    let logs = &cx.env.logs;
    let control_addr = free_addr()?;
    let mut cmd = strata(
        cx,
        &[
            "control".into(),
            "serve".into(),
            "--data-dir".into(),
            dir.join("control").to_string_lossy().into_owned(),
            "--listen".into(),
            control_addr.to_string(),
            "--push-min-requests".into(),
            "1000000000".into(),
        ],
    );
    cmd.current_dir(&dir);
    let control = ServerProcess::spawn("director-control", cmd, control_addr, None, cpu, logs)?;
    let operator = std::fs::read_to_string(dir.join("control").join("operator.token"))
        .context("reading the operator token")?;
    let api = ControlApi {
        addr: control_addr,
        token: operator.trim().to_string(),
    };
    api.post("/v1/clusters", &json!({"name": "origin", "tier": "storage"}))?;
    api.post(
        "/v1/tenants",
        &json!({"name": "bench", "home_cluster": "origin", "replica_clusters": [], "quota_bytes": 0, "hot_edges": 1}),
    )?;
    let url = format!("http://{control_addr}");
    let link = |name: &str| -> anyhow::Result<Vec<String>> {
        Ok(vec![
            "--control".into(),
            url.clone(),
            "--control-token-file".into(),
            token(&api, name, &dir)?,
            "--name".into(),
            name.into(),
            "--heartbeat".into(),
            "250ms".into(),
            "--worker-threads".into(),
            "1".into(),
            "--splice-workers".into(),
            "1".into(),
            "--telemetry".into(),
            "off".into(),
        ])
    };
    let (s_addr, s_admin) = (free_addr()?, free_addr()?);
    let mut args: Vec<String> = vec![
        "storage".into(),
        "--root".into(),
        cx.files.to_string_lossy().into_owned(),
        "--listen".into(),
        s_addr.to_string(),
        "--admin-listen".into(),
        s_admin.to_string(),
        "--cluster".into(),
        "origin".into(),
    ];
    args.extend(link("origin-1")?);
    let storage = ServerProcess::spawn(
        "director-storage",
        strata(cx, &args),
        s_addr,
        Some(s_admin),
        cpu,
        logs,
    )?;
    let mut edges = Vec::new();
    for i in 1..=EDGES {
        let (addr, admin) = (free_addr()?, free_addr()?);
        let cache = dir.join(format!("edge-{i}"));
        std::fs::create_dir_all(&cache).with_context(|| format!("creating {}", cache.display()))?;
        let mut args: Vec<String> = vec![
            "edge".into(),
            "--cache-dir".into(),
            cache.to_string_lossy().into_owned(),
            "--listen".into(),
            addr.to_string(),
            "--admin-listen".into(),
            admin.to_string(),
            "--region".into(),
            "r1".into(),
            "--cache-capacity".into(),
            cache_bytes.to_string(),
            "--director".into(),
            mode.into(),
            "--proxy-path".into(),
            "splice".into(),
        ];
        args.extend(link(&format!("edge-{i}"))?);
        edges.push(ServerProcess::spawn(
            &format!("director-edge-{i}"),
            strata(cx, &args),
            addr,
            Some(admin),
            cpu,
            logs,
        )?);
    }
    wait_for_table(&edges)?;
    let storage0 = storage.metric("strata_body_bytes_total")?;
    let addrs: Vec<SocketAddr> = edges.iter().map(|e| e.addr).collect();
    let began = Instant::now();
    let loads: Vec<_> = addrs
        .iter()
        .map(|&addr| {
            let plan = LoadPlan {
                addr,
                targets: targets.clone(),
                zipf: Some(1.0),
                connections: (connections / EDGES).max(1),
                duration,
                check_every: 16,
                record_sequence: false,
                tls: None,
            };
            std::thread::spawn(move || run_load(&plan))
        })
        .collect();
    let mut viewer_bytes = 0u64;
    let mut errors = 0u64;
    for l in loads {
        let out = l
            .join()
            .map_err(|_| anyhow::anyhow!("a load thread panicked"))??;
        viewer_bytes += out.tally.bytes;
        errors += out.tally.errors;
    }
    let seconds = began.elapsed().as_secs_f64();
    let storage_bytes = storage.metric("strata_body_bytes_total")? - storage0;
    let mut peer_bytes = 0.0;
    for e in &edges {
        peer_bytes += e.metric("strata_director_peer_bytes_total")?;
    }
    drop(edges);
    drop(storage);
    drop(control);
    let _ = std::fs::remove_dir_all(&dir);
    if viewer_bytes == 0 {
        bail!("the viewers received nothing ({errors} errors)");
    }
    Ok(DirectorRun {
        viewer_bytes,
        storage_bytes,
        peer_bytes,
        byte_hit_ratio: (1.0 - storage_bytes / viewer_bytes as f64).max(0.0),
        storage_gbit_per_sec: storage_bytes * 8.0 / seconds / 1e9,
        gbit_per_sec: viewer_bytes as f64 * 8.0 / seconds / 1e9,
        errors,
        seconds,
    })
}

/// Waits until every edge's director holds a table with all three rows.
fn wait_for_table(edges: &[ServerProcess]) -> anyhow::Result<()> {
    let began = Instant::now();
    while began.elapsed() < Duration::from_secs(20) {
        let mut ready = true;
        for e in edges {
            ready &= e.metric("strata_director_table_rows")? >= EDGES as f64;
        }
        if ready {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("the edges' state tables did not fill within 20 s")
}

fn spread(x: &Spread, digits: usize) -> String {
    if x.min == x.max {
        format!("{:.*}", digits, x.median)
    } else {
        format!(
            "{:.*} ({:.*}–{:.*})",
            digits, x.median, digits, x.min, digits, x.max
        )
    }
}

/// The report's section.
pub fn table(d: &DirectorResult) -> String {
    let mut s = format!("\n## (i) director\n\n{}. Region byte hit ratio = 1 − storage body bytes / viewer body bytes; storage egress = the storage server's body bytes during the run; syncd pushes off.\n\n", d.title);
    s.push_str("| setup | region byte hit ratio | storage egress GiB | storage Gbit/s | viewer Gbit/s | bytes between edges GiB | errors |\n|---|---|---|---|---|---|---|\n");
    for m in &d.modes {
        if let Some(f) = &m.failure {
            s.push_str(&format!(
                "| {} | failed: {} ||||||\n",
                m.name,
                f.replace('|', "/")
            ));
            continue;
        }
        let med = |f: &dyn Fn(&DirectorRun) -> f64| Spread::of(&m.runs.iter().map(f).collect::<Vec<_>>());
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} |\n",
            m.name,
            spread(&m.byte_hit_ratio, 3),
            spread(&m.storage_gib, 2),
            spread(&med(&|r| r.storage_gbit_per_sec), 2),
            spread(&med(&|r| r.gbit_per_sec), 2),
            spread(&med(&|r| r.peer_bytes / (1u64 << 30) as f64), 2),
            m.runs.iter().map(|r| r.errors).sum::<u64>(),
        ));
    }
    s
}

/// Console lines.
pub fn console_lines(d: &DirectorResult) -> Vec<String> {
    d.modes
        .iter()
        .map(|m| match &m.failure {
            Some(f) => format!("(i) {}: failed: {f}", m.name),
            None => format!(
                "(i) {}: region byte hit ratio {}, storage egress {} GiB",
                m.name,
                spread(&m.byte_hit_ratio, 3),
                spread(&m.storage_gib, 2)
            ),
        })
        .collect()
}
