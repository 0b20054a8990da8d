//! The benchmark run: the machine's limit, then scenarios (a) local hit, (b) proxied miss,
//! (c) Zipf mix with admission and fill, (d) idle connections, (e) the network map's solve time,
//! (f) DNS queries per second (dns_scenario.rs), (g) control-plane capacity per registry backend
//! (control_capacity.rs), (h) a distribution job to 12 edges in namespaces (job_scenario.rs), (i) the director
//! (director_scenario.rs).
//! Every server runs pinned to CPU 0 and the load generator to CPU 1; each measurement starts a
//! fresh server, warms it, and measures; runs alternate between contenders so drift hits them
//! all alike. Scenario (e) runs no server: it times the map solver in this process, on CPU 1.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use crate::contenders::Contender;
use crate::corpus::Corpus;
use crate::dns_scenario::DnsResult;
use crate::figures::{RunFigures, Spread, Summary};
use crate::idle_hold::{self, IdleRun};
use crate::load::{run_load, LoadPlan, Target};
use crate::map_solve::MapSolveResult;
use crate::physical_limit::{sendfile_loop, LimitRun};
use crate::proc_stats::{machine_busy_seconds, tree_cpu_seconds, PeakRss};
use crate::servers::{pin_to_cpu, ServerEnv, ServerProcess};

/// CPU the servers run on; the load generator takes the other one.
pub const SERVER_CPU: usize = 0;
pub const LOAD_CPU: usize = 1;

/// How long and how often.
pub struct Settings {
    pub quick: bool,
    pub peers: bool,
    pub reps: usize,
    pub duration: Duration,
    pub warmup: Duration,
    pub idle_levels: Vec<usize>,
    pub idle_settle: Duration,
    /// Solves of the map per case in scenario (e).
    pub solve_reps: usize,
    /// Scenarios to run (a, b, c, d, e, f, g, h); all when empty. The limit always runs.
    pub only: Vec<String>,
}

impl Settings {
    pub fn new(quick: bool, peers: bool) -> Settings {
        Settings {
            quick,
            peers,
            reps: if quick { 1 } else { 3 },
            duration: Duration::from_secs(if quick { 2 } else { 5 }),
            warmup: Duration::from_millis(if quick { 300 } else { 1000 }),
            idle_levels: if quick {
                vec![500, 1000, 2000]
            } else {
                vec![5000, 10_000, 18_900]
            },
            // strata parks a keep-alive connection after 2 s quiet; every server gets the same wait.
            idle_settle: Duration::from_secs(3),
            solve_reps: if quick { 3 } else { 9 },
            only: Vec::new(),
        }
    }

    /// Whether scenario `name` is to run.
    pub fn wants(&self, name: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|o| o == name)
    }

    /// Whether any scenario to run starts strata (all but the map solve do).
    pub fn runs_servers(&self) -> bool {
        ["a", "b", "c", "d", "f", "g", "h", "i", "j"]
            .iter()
            .any(|name| self.wants(name))
    }

    /// Whether any scenario to run measures HTTP peers (nginx, HAProxy).
    pub fn runs_http_peers(&self) -> bool {
        self.peers && ["a", "b", "c", "d", "j"].iter().any(|name| self.wants(name))
    }
}

/// One server's runs of one workload.
#[derive(Debug, Serialize)]
pub struct ServerResult {
    pub name: String,
    pub strata: bool,
    pub runs: Vec<RunFigures>,
    pub summary: Summary,
    /// Why it has no figures, when it could not run.
    pub failure: Option<String>,
}

/// One workload of scenario a, b or c.
#[derive(Debug, Serialize)]
pub struct WorkloadResult {
    pub scenario: String,
    pub title: String,
    pub connections: usize,
    pub servers: Vec<ServerResult>,
    /// A line under the table (what could not be measured, and why).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct IdleResult {
    pub name: String,
    pub strata: bool,
    pub runs: Vec<IdleRun>,
    pub kib_per_connection: Spread,
    pub failure: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct LimitResult {
    /// Connections the sendfile loop ran over.
    pub connections: usize,
    pub runs: Vec<LimitRun>,
    pub gbit_per_sec: Spread,
    pub machine_cpu_s_per_gb: Spread,
}

impl LimitResult {
    fn of(connections: usize, runs: Vec<LimitRun>) -> LimitResult {
        LimitResult {
            connections,
            gbit_per_sec: Spread::of(&runs.iter().map(|r| r.gbit_per_sec).collect::<Vec<_>>()),
            machine_cpu_s_per_gb: Spread::of(
                &runs.iter().map(|r| r.machine_cpu_s_per_gb).collect::<Vec<_>>(),
            ),
            runs,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Results {
    /// The sendfile loop over one connection.
    pub limit: LimitResult,
    /// The sendfile loop at each concurrency a workload uses.
    pub limits: Vec<LimitResult>,
    pub workloads: Vec<WorkloadResult>,
    pub idle: Vec<IdleResult>,
    /// Scenario (e), when it ran.
    pub map_solve: Option<MapSolveResult>,
    /// Scenario (f), when it ran.
    pub dns: Option<DnsResult>,
    /// Scenario (g), when it ran.
    pub control_capacity: Option<crate::control_capacity::CapacityResult>,
    /// Scenario (h), when it ran.
    pub jobs: Option<crate::job_scenario::JobResult>,
    /// Scenario (i), when it ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub director: Option<crate::director_scenario::DirectorResult>,
}

impl Results {
    /// The sendfile loop's Gbit/s at `connections` (the one-connection loop when not measured).
    pub fn limit_at(&self, connections: usize) -> f64 {
        self.limits
            .iter()
            .find(|l| l.connections == connections)
            .unwrap_or(&self.limit)
            .gbit_per_sec
            .median
    }
}

/// A workload as planned.
struct Workload {
    scenario: &'static str,
    title: String,
    targets: Arc<Vec<Target>>,
    connections: usize,
    zipf: Option<f64>,
    /// Warm the server before measuring (not for the cold-cache Zipf mix).
    warm: bool,
    /// Needs the storage origin (and reports the byte hit ratio when `hit_ratio`).
    origin: bool,
    hit_ratio: bool,
    /// Driven by h2load (small objects) instead of the thread-per-connection generator.
    h2load: bool,
    /// The origin sits in its own network namespace behind a veth pair.
    veth: bool,
    contenders: Vec<Contender>,
    /// Load over HTTPS with this client configuration.
    tls: Option<Arc<rustls::ClientConfig>>,
    /// A line under the workload's table.
    note: Option<String>,
}

impl Workload {
    /// A scenario (a) row: local hits of warm files, no origin, strata's two body paths and
    /// nginx.
    fn hit(title: String, targets: Vec<Target>, connections: usize, contenders: Vec<Contender>) -> Workload {
        Workload {
            scenario: "a",
            title,
            targets: Arc::new(targets),
            connections,
            zipf: None,
            warm: true,
            origin: false,
            hit_ratio: false,
            h2load: false,
            veth: false,
            contenders,
            tls: None,
            note: None,
        }
    }
}

fn plan_workloads(corpus: &Corpus, s: &Settings) -> anyhow::Result<Vec<Workload>> {
    let peers = |list: Vec<Contender>| -> Vec<Contender> {
        list.into_iter().filter(|c| s.peers || c.is_strata()).collect()
    };
    let hitters = || {
        peers(vec![
            Contender::StrataHit,
            Contender::StrataHitSendfile,
            Contender::NginxStatic,
        ])
    };
    let one_mib_files = corpus.whole_files("seg1m", 64, 1 << 20)?;
    let one_mib = Arc::new(one_mib_files.clone());
    let mut w = vec![Workload::hit(
        "(a) local hit, 1 MiB objects".into(),
        one_mib_files,
        64,
        hitters(),
    )];
    if !s.quick {
        w.push(Workload::hit(
            "(a) local hit, 256 KiB objects".into(),
            corpus.whole_files("seg256k", 64, 256 << 10)?,
            16,
            hitters(),
        ));
        w.push(Workload::hit(
            "(a) local hit, ranges of 128 KiB–2 MiB".into(),
            corpus.ranged_files("movie", 8, 8 << 20, 256)?,
            16,
            hitters(),
        ));
    }
    for (stem, size) in [("obj4k", 4usize << 10), ("obj16k", 16 << 10)] {
        if s.quick && size > 4 << 10 {
            continue;
        }
        w.push(Workload {
            h2load: true,
            ..Workload::hit(
                format!(
                    "(a) small objects, {} KiB (playlists, parts, thumbnails)",
                    size >> 10
                ),
                corpus.whole_files(stem, 100, size)?,
                64,
                hitters(),
            )
        });
    }
    if s.wants("j") {
        w.push(https_workload(one_mib.clone(), s)?);
    }
    let proxies = || {
        peers(vec![
            // The default: per response, the path measured fastest for it.
            Contender::StrataProxy("auto"),
            Contender::StrataProxy("sockmap"),
            Contender::StrataProxy("splice"),
            Contender::StrataProxy("copy"),
            Contender::NginxProxy,
            Contender::HaproxySplice,
        ])
    };
    for veth in [false, true] {
        for connections in if s.quick { vec![16] } else { vec![16, 64] } {
            w.push(Workload {
                scenario: "b",
                title: if veth {
                    "(b) proxied miss over veth (origin in its own namespace), 1 MiB objects".into()
                } else {
                    "(b) proxied miss, 1 MiB objects".into()
                },
                targets: one_mib.clone(),
                connections,
                zipf: None,
                warm: true,
                origin: true,
                hit_ratio: false,
                h2load: false,
                veth,
                contenders: proxies(),
                tls: None,
                note: None,
            });
        }
    }
    let (count, capacity) = if s.quick {
        (128, 32u64 << 20)
    } else {
        (256, 64u64 << 20)
    };
    let zipf = Arc::new(corpus.whole_files("zipf", count, 1 << 20)?);
    w.push(Workload {
        tls: None,
        note: None,
        scenario: "c",
        title: format!(
            "(c) Zipf s=1 over {count} × 1 MiB, cold cache of {} MiB",
            capacity >> 20
        ),
        targets: zipf,
        connections: 16,
        zipf: Some(1.0),
        warm: false,
        origin: true,
        hit_ratio: true,
        h2load: false,
        veth: false,
        contenders: peers(vec![
            Contender::StrataCaching(capacity),
            Contender::NginxCaching(capacity),
        ]),
    });
    Ok(w)
}

/// (j) local hits over HTTPS: strata (rustls) against nginx `ssl` with the same self-signed
/// certificate, TLS 1.3 with AES-256-GCM for both; kernel TLS is probed and reported.
fn https_workload(targets: Arc<Vec<Target>>, s: &Settings) -> anyhow::Result<Workload> {
    let dir = std::env::temp_dir().join(format!("strata-bench-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let cert = strata_tests::https::self_signed(&dir, "localhost", &["localhost"]);
    let ktls = if crate::contenders::kernel_has_tls_ulp() {
        "the kernel has the tls ULP, but strata does not hand keys to it: not measured"
    } else {
        "not measurable here (no CONFIG_TLS: the kernel has no tls ULP)"
    };
    Ok(Workload {
        scenario: "j",
        title: "(j) local hit over HTTPS (TLS 1.3, AES-256-GCM), 1 MiB objects".into(),
        targets,
        connections: 16,
        zipf: None,
        warm: true,
        origin: false,
        hit_ratio: false,
        h2load: false,
        veth: false,
        tls: Some(crate::tls_load::client_config(&cert.pem)?),
        note: Some(format!(
            "Both servers encrypt in userspace (strata: rustls/ring, nginx: OpenSSL); kTLS: {ktls}. \
             The load generator decrypts every body on its own core, the same work for both."
        )),
        contenders: vec![Contender::StrataHttps(cert.clone()), Contender::NginxHttps(cert)]
            .into_iter()
            .filter(|c| s.peers || c.is_strata())
            .collect(),
    })
}

/// Everything a measurement needs to know about where it runs.
pub struct RunContext {
    pub env: ServerEnv,
    pub exe: PathBuf,
    pub files: PathBuf,
    next_scratch: std::cell::Cell<u32>,
}

impl RunContext {
    /// A fresh, empty (not yet created) directory under the work directory.
    pub(crate) fn scratch(&self) -> PathBuf {
        let n = self.next_scratch.get();
        self.next_scratch.set(n + 1);
        let dir = self.env.work.join("scratch").join(n.to_string());
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }
}

fn measure_once(
    cx: &RunContext,
    w: &Workload,
    c: &Contender,
    origin: Option<&ServerProcess>,
    s: &Settings,
) -> anyhow::Result<RunFigures> {
    let scratch = cx.scratch();
    let server = c.start(&cx.env, &cx.files, origin.map(|o| o.addr), &scratch)?;
    let plan = LoadPlan {
        addr: server.addr,
        targets: w.targets.clone(),
        zipf: w.zipf,
        connections: w.connections,
        duration: s.duration,
        check_every: 16,
        record_sequence: w.hit_ratio,
        tls: w.tls.clone(),
    };
    let h2load_log = scratch.with_extension("h2load.log");
    let load = |plan: &LoadPlan| {
        if w.h2load {
            crate::h2load::run(
                plan.addr,
                &plan.targets,
                plan.connections,
                plan.duration,
                &h2load_log,
            )
        } else {
            run_load(plan)
        }
    };
    if w.warm {
        load(&LoadPlan {
            duration: s.warmup + c.learning_time(),
            ..plan.clone()
        })?;
    }
    let origin_bytes = |o: Option<&ServerProcess>| o.map(|o| o.metric("strata_body_bytes_total")).transpose();
    let origin0 = origin_bytes(origin)?;
    let paths = || {
        if c.is_strata() {
            server.metric_by_path("strata_body_bytes_total")
        } else {
            Ok(Vec::new())
        }
    };
    let paths0 = paths()?;
    let (cpu0, machine0) = (tree_cpu_seconds(server.pid()), machine_busy_seconds());
    let peak = PeakRss::start(server.pid());
    let out = load(&plan)?;
    let (cpu1, machine1) = (tree_cpu_seconds(server.pid()), machine_busy_seconds());
    let peak_kib = peak.finish();
    let origin1 = origin_bytes(origin)?;
    let body_paths = crate::figures::path_shares(&paths0, &paths()?);
    drop(server);
    let cache_mib = w.hit_ratio.then(|| dir_bytes(&scratch) as f64 / (1 << 20) as f64);
    let _ = std::fs::remove_dir_all(&scratch);
    let _ = std::fs::remove_file(&h2load_log);
    let t = &out.tally;
    let gb = t.bytes as f64 / 1e9;
    let per_gb = |secs: f64| if gb > 0.0 { secs / gb } else { 0.0 };
    Ok(RunFigures {
        gbit_per_sec: out.gbit_per_sec(),
        requests_per_sec: out.requests_per_sec(),
        p50_ms: t.latency_us(0.5) as f64 / 1000.0,
        p99_ms: t.latency_us(0.99) as f64 / 1000.0,
        p999_ms: t.latency_us(0.999) as f64 / 1000.0,
        requests: t.requests,
        bytes: t.bytes,
        errors: t.errors,
        checksummed: t.checked,
        seconds: out.seconds,
        server_cpu_s_per_gb: per_gb(cpu1 - cpu0),
        machine_cpu_s_per_gb: per_gb(machine1 - machine0),
        peak_rss_mib: peak_kib as f64 / 1024.0,
        byte_hit_ratio: match (w.hit_ratio, origin0, origin1) {
            (true, Some(a), Some(b)) if t.bytes > 0 => Some((1.0 - (b - a) / t.bytes as f64).max(0.0)),
            _ => None,
        },
        lru_byte_hit_ratio: match (w.hit_ratio, c.cache_capacity()) {
            (true, Some(capacity)) => {
                let sizes: Vec<u64> = w.targets.iter().map(|t| t.expect_len).collect();
                crate::exact_lru::byte_hit_ratio(&t.sequence(), &sizes, capacity)
            }
            _ => None,
        },
        cache_mib_at_end: cache_mib,
        body_paths,
        first_error: t.first_error.clone(),
    })
}

/// Bytes of the files under `dir` (a cache directory after a run).
fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_bytes(&e.path()),
            Ok(_) => e.metadata().map_or(0, |m| m.len()),
            Err(_) => 0,
        })
        .sum()
}

/// Something measured in turns, named on the progress bar and in the report.
pub trait Named {
    fn name(&self) -> String;
}

impl Named for Contender {
    fn name(&self) -> String {
        Contender::name(self)
    }
}

/// Runs `measure` for each contender in turn, `reps` rounds (so drift hits them all alike);
/// per contender its runs and, once one failed, why (it is not run again).
pub(crate) fn alternate<C: Named, T>(
    reps: usize,
    contenders: &[C],
    bar: &ProgressBar,
    what: &str,
    mut measure: impl FnMut(&C) -> anyhow::Result<T>,
) -> Vec<(Vec<T>, Option<String>)> {
    let mut per: Vec<(Vec<T>, Option<String>)> = contenders.iter().map(|_| (Vec::new(), None)).collect();
    for _ in 0..reps {
        for (c, slot) in contenders.iter().zip(per.iter_mut()) {
            bar.set_message(format!("{what}: {}", c.name()));
            if slot.1.is_none() {
                match measure(c) {
                    Ok(f) => slot.0.push(f),
                    Err(e) => {
                        bar.println(format!("{} on {what}: {e:#}", c.name()));
                        slot.1 = Some(format!("{e:#}"));
                    }
                }
            }
            bar.inc(1);
        }
    }
    per
}

fn progress(total: u64) -> ProgressBar {
    let bar = ProgressBar::new(total);
    if let Ok(style) = ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} {msg}") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// Runs everything; `say` receives a line for each finished measurement (console summary).
pub fn run_all(cx: &RunContext, s: &Settings) -> anyhow::Result<Results> {
    pin_to_cpu(LOAD_CPU).context("pinning the load generator")?;
    let corpus = Corpus::new(&cx.files)?;
    let mut workloads = plan_workloads(&corpus, s)?;
    workloads.retain(|w| s.wants(w.scenario));
    let tiny = corpus.whole_files("tiny", 1, 1024)?;
    let tiny_path = String::from_utf8_lossy(&tiny[0].request)
        .split(' ')
        .nth(1)
        .unwrap_or_default()
        .to_string();
    let idle_contenders: Vec<Contender> = [Contender::StrataHit, Contender::NginxStatic]
        .into_iter()
        .filter(|c| s.wants("d") && (s.peers || c.is_strata()))
        .collect();
    let map_cases = if s.wants("e") {
        crate::map_solve::CAPACITY_PERCENTS.len() as u64
    } else {
        0
    };
    let dns_contenders = if s.wants("f") {
        crate::dns_scenario::contenders(s.peers).len() as u64
    } else {
        0
    };
    let mut concurrencies: Vec<usize> = workloads.iter().map(|w| w.connections).collect();
    concurrencies.sort_unstable();
    concurrencies.dedup();
    let steps = s.reps as u64
        * (1 + concurrencies.len() as u64
            + workloads.iter().map(|w| w.contenders.len() as u64).sum::<u64>()
            + idle_contenders.len() as u64
            + dns_contenders)
        + map_cases
        + if s.wants("g") { 2 } else { 0 }
        + crate::director_scenario::steps(s);
    let bar = progress(steps);

    let big = cx.files.join(crate::corpus::PREFIX).join("seg1m-0.m4s");
    let mut limits = Vec::new();
    for connections in std::iter::once(1).chain(concurrencies) {
        let mut runs = Vec::new();
        for _ in 0..s.reps {
            bar.set_message(format!(
                "physical limit: sendfile loop over loopback × {connections}"
            ));
            runs.push(sendfile_loop(
                &big,
                s.duration,
                connections,
                SERVER_CPU,
                LOAD_CPU,
            )?);
            bar.inc(1);
        }
        limits.push(LimitResult::of(connections, runs));
    }

    let mut results = Vec::new();
    for w in &workloads {
        let veth = if w.veth {
            Some(crate::veth_origin::VethOrigin::new().context("the veth origin's namespace (needs root)")?)
        } else {
            None
        };
        let origin = match (&veth, w.origin) {
            (Some(v), true) => Some(v.storage(&cx.env, &cx.files)?),
            (None, true) => Some(cx.env.strata_storage("origin", &cx.files)?),
            (_, false) => None,
        };
        let per = alternate(
            s.reps,
            &w.contenders,
            &bar,
            &format!("{} × {} conns", w.title, w.connections),
            |c| measure_once(cx, w, c, origin.as_ref(), s),
        );
        results.push(WorkloadResult {
            note: w.note.clone(),
            scenario: w.scenario.into(),
            title: w.title.clone(),
            connections: w.connections,
            servers: w
                .contenders
                .iter()
                .zip(per)
                .map(|(c, (runs, failure))| ServerResult {
                    name: c.name(),
                    strata: c.is_strata(),
                    summary: Summary::of(&runs),
                    runs,
                    failure,
                })
                .collect(),
        });
    }

    let mut idle = Vec::new();
    let idle_runs = alternate(s.reps, &idle_contenders, &bar, "(d) idle connections", |c| {
        let server = c.start(&cx.env, &cx.files, None, &cx.scratch())?;
        idle_hold::measure(&cx.exe, &server, &tiny_path, &s.idle_levels, s.idle_settle)
    });
    for (c, (runs, failure)) in idle_contenders.iter().zip(idle_runs) {
        idle.push(IdleResult {
            name: c.name(),
            strata: c.is_strata(),
            kib_per_connection: Spread::of(&runs.iter().map(|r| r.kib_per_connection).collect::<Vec<_>>()),
            runs,
            failure,
        });
    }
    let map_solve = s
        .wants("e")
        .then(|| crate::map_solve::measure(s.solve_reps, &bar));
    let dns = if s.wants("f") {
        Some(crate::dns_scenario::measure(cx, s, &bar)?)
    } else {
        None
    };
    let control_capacity = s
        .wants("g")
        .then(|| crate::control_capacity::measure(cx, s, &bar));
    let jobs = s.wants("h").then(|| crate::job_scenario::measure(cx, s, &bar));
    let director = if s.wants("i") {
        Some(crate::director_scenario::measure(cx, s, &bar)?)
    } else {
        None
    };
    bar.finish_and_clear();
    Ok(Results {
        limit: limits.remove(0),
        limits,
        workloads: results,
        idle,
        map_solve,
        dns,
        control_capacity,
        jobs,
        director,
    })
}

impl RunContext {
    pub fn new(strata: &Path, exe: &Path, work: &Path, logs: &Path) -> RunContext {
        RunContext {
            env: ServerEnv {
                strata: strata.to_path_buf(),
                work: work.to_path_buf(),
                logs: logs.to_path_buf(),
                cpu: SERVER_CPU,
            },
            exe: exe.to_path_buf(),
            files: work.join("files"),
            next_scratch: std::cell::Cell::new(0),
        }
    }
}
