//! Scenario (h): a distribution job. A storage server and 12 edges, each in a network namespace
//! of its own behind one bridge ([`JobLan`]), the control plane in the harness's namespace; the
//! storage server's link shaped with tbf. One content goes to all 12 edges as a cascaded job
//! (fanout 2), another of the same size as a job with fanout 12 (every edge starts from storage
//! at once; receivers still switch to edges that finished, so it is not a pure storage-alone
//! push). Storage alone is the shaped link's time for 12 copies. Reported: both completion
//! times, that bound, and what the storage server sent as a multiple of the size (from its
//! metrics). Every copy is checked against the registry's SHA-256 by the edges themselves.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use indicatif::ProgressBar;
use serde::Serialize;
use serde_json::json;

use crate::control_api::ControlApi;
use crate::job_lan::JobLan;
use crate::scenarios::{RunContext, Settings, LOAD_CPU, SERVER_CPU};
use crate::servers::ServerProcess;

const EDGES: usize = 12;
/// The storage server's shaped rate, bits per second.
const SHAPED_BPS: u64 = 400_000_000;

/// One job's outcome.
#[derive(Debug, Serialize)]
pub struct JobRun {
    pub fanout: u32,
    pub seconds: f64,
    /// Bytes the storage server sent / the content's size.
    pub storage_egress_multiple: f64,
    pub targets_done: usize,
}

#[derive(Debug, Serialize)]
pub struct JobResult {
    pub edges: usize,
    pub size_mib: u64,
    pub shaped_mbit: u64,
    /// 12 copies through the shaped link.
    pub link_time_for_all_s: f64,
    pub cascade: Option<JobRun>,
    pub storage_alone: Option<JobRun>,
    pub failure: Option<String>,
}

/// Runs the scenario; failures are recorded in the result, not raised.
pub fn measure(cx: &RunContext, s: &Settings, bar: &ProgressBar) -> JobResult {
    let size_mib: u64 = if s.quick { 64 } else { 256 };
    let mut result = JobResult {
        edges: EDGES,
        size_mib,
        shaped_mbit: SHAPED_BPS / 1_000_000,
        link_time_for_all_s: (EDGES as u64 * (size_mib << 20) * 8) as f64 / SHAPED_BPS as f64,
        cascade: None,
        storage_alone: None,
        failure: None,
    };
    if let Err(e) = run(cx, size_mib, bar, &mut result) {
        result.failure = Some(format!("{e:#}"));
    }
    result
}

fn nsenter(strata: &Path, ns: &str) -> Command {
    let mut cmd = Command::new("nsenter");
    cmd.arg(format!("--net=/var/run/netns/{ns}")).arg(strata);
    cmd.env("RUST_LOG", "warn");
    cmd
}

fn run(cx: &RunContext, size_mib: u64, bar: &ProgressBar, out: &mut JobResult) -> anyhow::Result<()> {
    bar.set_message("(h) distribution job: namespaces, control plane, 12 edges");
    let lan = JobLan::new(EDGES).context("building the job LAN (needs root)")?;
    let dir = cx.scratch();
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let port = std::net::TcpListener::bind((lan.root_addr(), 0))
        .and_then(|l| l.local_addr())
        .context("a port for the control plane")?
        .port();
    let control_addr = SocketAddr::from((lan.root_addr(), port));
    let mut cmd = Command::new(&cx.env.strata);
    cmd.args(["control", "serve", "--data-dir"])
        .arg(dir.join("control"))
        .arg("--listen")
        .arg(control_addr.to_string())
        .args(["--server-ttl", "2s"])
        .env("RUST_LOG", "warn");
    let _control = ServerProcess::spawn("job-control", cmd, control_addr, None, SERVER_CPU, &cx.env.logs)?;
    let token_path = dir.join("control").join("operator.token");
    let operator =
        std::fs::read_to_string(&token_path).with_context(|| format!("reading {}", token_path.display()))?;
    let api = ControlApi {
        addr: control_addr,
        token: operator.trim().to_string(),
    };
    api.post("/v1/clusters", &json!({"name": "home", "tier": "storage"}))?;
    api.post(
        "/v1/tenants",
        &json!({"name": "bench", "home_cluster": "home", "replica_clusters": [], "quota_bytes": 1u64 << 40, "hot_edges": 1}),
    )?;
    let link = |name: &str| -> anyhow::Result<Vec<String>> {
        let v = api.post("/v1/tokens", &json!({"role": "service", "server": name}))?;
        let file = dir.join(format!("{name}.token"));
        std::fs::write(&file, v["token"].as_str().unwrap_or_default())
            .with_context(|| format!("writing {}", file.display()))?;
        Ok(vec![
            "--control".into(),
            format!("http://{control_addr}"),
            "--control-token-file".into(),
            file.display().to_string(),
            "--name".into(),
            name.into(),
            "--heartbeat".into(),
            "250ms".into(),
            "--telemetry".into(),
            "off".into(),
        ])
    };
    let serve = |i: usize, role: &str, extra: Vec<String>, cpu: usize| -> anyhow::Result<ServerProcess> {
        let (addr, admin) = (
            SocketAddr::from((lan.addr(i), 8080)),
            SocketAddr::from((lan.addr(i), 9080)),
        );
        let mut cmd = nsenter(&cx.env.strata, &lan.hosts[i]);
        cmd.arg(role)
            .arg("--listen")
            .arg(addr.to_string())
            .arg("--admin-listen")
            .arg(admin.to_string())
            .args(extra);
        ServerProcess::spawn(
            &format!("job-{role}-{i}"),
            cmd,
            addr,
            Some(admin),
            cpu,
            &cx.env.logs,
        )
    };
    let root = dir.join("storage");
    std::fs::create_dir_all(&root)?;
    let mut extra = vec![
        "--root".to_string(),
        root.display().to_string(),
        "--cluster".into(),
        "home".into(),
    ];
    extra.extend(link("store-1")?);
    let storage = serve(0, "storage", extra, SERVER_CPU)?;
    let mut edges = Vec::new();
    for i in 1..=EDGES {
        let cache = dir.join(format!("edge-{i}"));
        std::fs::create_dir_all(&cache)?;
        let mut extra = vec![
            "--cache-dir".to_string(),
            cache.display().to_string(),
            "--region".into(),
            "r1".into(),
        ];
        extra.extend(["--cache-capacity".to_string(), format!("{}", 4u64 << 30)]);
        extra.extend(link(&format!("edge-{i}"))?);
        edges.push(serve(i, "edge", extra, LOAD_CPU)?);
    }
    wait_up(&api)?;
    bar.set_message(format!("(h) distribution job: ingesting 2 × {size_mib} MiB"));
    for (content, seed) in [("premiere", 1u64), ("premiere-b", 2)] {
        ingest(cx, &api, &dir, content, seed, size_mib << 20)?;
    }
    lan.shape_upload(0, &format!("{}mbit", SHAPED_BPS / 1_000_000))?;
    let size = (size_mib << 20) as f64;
    for (content, fanout) in [("premiere", 2u32), ("premiere-b", EDGES as u32)] {
        bar.set_message(format!(
            "(h) distribution job: {size_mib} MiB to {EDGES} edges, fanout {fanout}"
        ));
        let before = storage.metric("strata_body_bytes_total")?;
        let job = api.post(
            "/v1/jobs",
            &json!({"tenant": "bench", "content": content, "to": "all-edges", "fanout": fanout}),
        )?;
        let id = job["id"].as_str().context("job id")?.to_string();
        let began = Instant::now();
        let end = loop {
            let v = api.get(&format!("/v1/jobs/{id}"))?;
            if v["state"] != "running" {
                break v;
            }
            if began.elapsed() > Duration::from_secs(1800) {
                bail!("job {id} still running after 30 minutes");
            }
            std::thread::sleep(Duration::from_millis(200));
        };
        let sent = storage.metric("strata_body_bytes_total")? - before;
        let ms = end["finished_ms"]
            .as_u64()
            .unwrap_or(0)
            .saturating_sub(end["created_ms"].as_u64().unwrap_or(0));
        let run = JobRun {
            fanout,
            seconds: ms as f64 / 1000.0,
            storage_egress_multiple: sent / size,
            targets_done: end["summary"]["done"].as_u64().unwrap_or(0) as usize,
        };
        if end["state"] != "done" {
            bail!("job {id} (fanout {fanout}) ended {}: {end}", end["state"]);
        }
        if fanout == 2 {
            out.cascade = Some(run);
        } else {
            out.storage_alone = Some(run);
        }
    }
    drop(edges);
    Ok(())
}

/// Waits until the storage server and every edge are up.
fn wait_up(api: &ControlApi) -> anyhow::Result<()> {
    let began = Instant::now();
    loop {
        let s = api.get("/v1/status")?;
        let up = s["edges"]
            .as_array()
            .map_or(0, |e| e.iter().filter(|x| x["up"] == true).count());
        if up == EDGES {
            return Ok(());
        }
        if began.elapsed() > Duration::from_secs(60) {
            bail!("only {up} of {EDGES} edges came up: {s}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Writes `len` pseudo-random bytes and ingests them as `content` through `strata ingest`.
fn ingest(
    cx: &RunContext,
    api: &ControlApi,
    dir: &Path,
    content: &str,
    seed: u64,
    len: u64,
) -> anyhow::Result<()> {
    let src = dir.join(format!("src-{content}"));
    std::fs::create_dir_all(&src)?;
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut bytes = Vec::with_capacity(len as usize);
    while (bytes.len() as u64) < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        bytes.extend_from_slice(&x.to_le_bytes());
    }
    bytes.truncate(len as usize);
    let file = src.join("video-1080p.mp4");
    std::fs::write(&file, &bytes).with_context(|| format!("writing {}", file.display()))?;
    let out = Command::new(&cx.env.strata)
        .args(["ingest", "--tenant", "bench", "--content", content, "--quiet"])
        .arg(&src)
        .env("STRATA_CONTROL", format!("http://{}", api.addr))
        .env("STRATA_TOKEN", &api.token)
        .output()
        .context("running strata ingest")?;
    if !out.status.success() {
        bail!(
            "strata ingest {content}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// The report's section.
pub fn table(s: &mut String, j: &JobResult) {
    use std::fmt::Write as _;
    let _ = writeln!(
        s,
        "\n## (h) Distribution job: {} MiB to {} edges, storage link shaped to {} Mbit/s (tbf)\n",
        j.size_mib, j.edges, j.shaped_mbit
    );
    if let Some(f) = &j.failure {
        let _ = writeln!(s, "Failed: {f}\n");
    }
    let _ = writeln!(
        s,
        "| job | fanout | completion s | storage egress × size | targets done |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|");
    for (name, r) in [
        ("cascade", &j.cascade),
        (
            "all from storage at once (switching to peers allowed)",
            &j.storage_alone,
        ),
    ] {
        if let Some(r) = r {
            let _ = writeln!(
                s,
                "| {name} | {} | {:.1} | {:.2} | {} |",
                r.fanout, r.seconds, r.storage_egress_multiple, r.targets_done
            );
        }
    }
    let _ = writeln!(
        s,
        "\nStorage alone: {} copies through the shaped link take {:.1} s at best.",
        j.edges, j.link_time_for_all_s
    );
}

/// One line for the console.
pub fn line(j: &JobResult) -> String {
    match (&j.cascade, &j.storage_alone, &j.failure) {
        (_, _, Some(f)) => format!("failed: {f}"),
        (Some(c), Some(a), None) => format!(
            "{} MiB to {} edges: cascade {:.1} s (storage sent {:.2} × size), fanout 12 {:.1} s ({:.2} ×); storage alone (link bound) {:.1} s",
            j.size_mib, j.edges, c.seconds, c.storage_egress_multiple, a.seconds, a.storage_egress_multiple, j.link_time_for_all_s
        ),
        _ => "incomplete".into(),
    }
}
