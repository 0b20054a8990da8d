//! Scenario (f), DNS: queries per second of one `strata dns` nameserver against Knot DNS
//! answering the same query mix from a static zone. A control plane (on the load CPU) holds a
//! map of regions, edges and client blocks; a first strata nameserver's answers to every name of
//! the mix become the peer's zone; then each server, fresh per run and pinned to the server CPU,
//! is warmed and measured by dnsperf for a bounded time, in alternating runs.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use indicatif::ProgressBar;
use serde::Serialize;

use crate::dns_fixture::{ControlFixture, BLOCKS, EDGES_PER_REGION, REGIONS};
use crate::dns_mix::{Query, QueryMix, QUERIES};
use crate::dns_servers::DOMAIN;
use crate::dns_wire::ask;
use crate::dnsperf::{DnsperfOut, DnsperfPlan};
use crate::figures::Spread;
use crate::proc_stats::tree_cpu_seconds;
use crate::scenarios::{alternate, Named, RunContext, Settings, LOAD_CPU};
use crate::servers::ServerProcess;

const MIX_SEED: u64 = 0xd15_0001;
/// The TTL strata answers with by default, used for the peer's zone too.
const TTL: u32 = 20;

/// A nameserver under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DnsContender {
    Strata,
    Knot,
}

impl Named for DnsContender {
    fn name(&self) -> String {
        match self {
            DnsContender::Strata => "strata dns".into(),
            DnsContender::Knot => "knot".into(),
        }
    }
}

/// The contenders of a run with or without peers.
pub fn contenders(peers: bool) -> Vec<DnsContender> {
    if peers {
        vec![DnsContender::Strata, DnsContender::Knot]
    } else {
        vec![DnsContender::Strata]
    }
}

/// One measured run of one nameserver.
#[derive(Clone, Debug, Serialize)]
pub struct DnsRun {
    #[serde(flatten)]
    pub dnsperf: DnsperfOut,
    /// The server's CPU time per answered query, microseconds.
    pub server_cpu_us_per_query: f64,
    /// The server's CPU time over the run's time: near 1 when the server (on its one core) is
    /// the bottleneck, lower when the load generator is.
    pub server_core_busy: f64,
}

#[derive(Debug, Serialize)]
pub struct DnsServerResult {
    pub name: String,
    pub strata: bool,
    pub runs: Vec<DnsRun>,
    pub queries_per_sec: Spread,
    pub avg_latency_ms: Spread,
    pub server_cpu_us_per_query: Spread,
    pub server_core_busy: Spread,
    pub generator_core_busy: Spread,
    pub avg_response_bytes: Spread,
    pub sent: u64,
    pub lost: u64,
    pub not_noerror: u64,
    /// Why it has no figures, when it could not run.
    pub failure: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct DnsResult {
    pub domain: String,
    pub regions: usize,
    pub edges_per_region: usize,
    pub blocks: usize,
    pub queries_in_mix: usize,
    pub distinct_names: usize,
    pub srv_share: f64,
    /// Records in the peer's zone (apex records aside), when it was written.
    pub zone_records: Option<usize>,
    pub load_generator: Option<String>,
    pub clients: usize,
    pub outstanding: usize,
    pub timeout_seconds: u64,
    /// Edge heartbeats the control plane did not take during the scenario (edges would go down).
    pub heartbeat_failures: u64,
    pub servers: Vec<DnsServerResult>,
}

/// Runs scenario (f): one step of `bar` per contender and run.
pub fn measure(cx: &RunContext, s: &Settings, bar: &ProgressBar) -> anyhow::Result<DnsResult> {
    bar.set_message("(f) DNS: control plane, map, query mix");
    let dir = cx.scratch();
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let fixture = ControlFixture::start(&cx.env, &dir, LOAD_CPU).context("(f) DNS: the control plane")?;
    let mix = QueryMix::new(MIX_SEED, DOMAIN, &fixture.blocks, &fixture.regions);
    let datafile = dir.join("queries.txt");
    std::fs::write(&datafile, mix.datafile()).with_context(|| format!("writing {}", datafile.display()))?;
    let distinct = mix.distinct();
    let contenders = contenders(s.peers);
    let probe = distinct
        .iter()
        .find(|q| q.qtype == crate::dns_wire::TYPE_SRV)
        .context("the query mix has no SRV query")?;
    let zone = if contenders.contains(&DnsContender::Knot) {
        bar.set_message("(f) DNS: the peer's zone from strata's answers");
        Some(peer_zone(cx, &fixture, probe, &distinct).map_err(|e| format!("writing its zone: {e:#}")))
    } else {
        None
    };
    let per = alternate(s.reps, &contenders, bar, "(f) DNS", |c| {
        let server = match c {
            DnsContender::Strata => {
                cx.env
                    .strata_dns("strata-dns", fixture.api.addr, &fixture.dns_token_file)?
            }
            DnsContender::Knot => match &zone {
                Some(Ok(z)) => cx.env.knot("knot", &z.0)?,
                Some(Err(e)) => bail!("{e}"),
                None => bail!("no zone for the peer"),
            },
        };
        measure_once(&server, probe, &datafile, s)
    });
    let servers: Vec<DnsServerResult> = contenders
        .iter()
        .zip(per)
        .map(|(c, (runs, failure))| summarize(c, runs, failure))
        .collect();
    let load_generator = servers
        .iter()
        .flat_map(|s| &s.runs)
        .find_map(|r| r.dnsperf.version.clone());
    Ok(DnsResult {
        domain: DOMAIN.into(),
        regions: REGIONS.len(),
        edges_per_region: EDGES_PER_REGION,
        blocks: BLOCKS,
        queries_in_mix: QUERIES,
        distinct_names: distinct.len(),
        srv_share: mix.srv_share(),
        zone_records: zone.and_then(|z| z.ok()).map(|z| z.1),
        load_generator,
        clients: crate::dnsperf::CLIENTS,
        outstanding: crate::dnsperf::OUTSTANDING,
        timeout_seconds: crate::dnsperf::TIMEOUT_SECONDS,
        heartbeat_failures: fixture
            .heartbeat_failures
            .load(std::sync::atomic::Ordering::Relaxed),
        servers,
    })
}

/// The peer's zone text and its record count: a strata nameserver (started for this only)
/// asked each distinct name once.
fn peer_zone(
    cx: &RunContext,
    fixture: &ControlFixture,
    probe: &Query,
    distinct: &[Query],
) -> anyhow::Result<(String, usize)> {
    let server = cx
        .env
        .strata_dns("strata-dns-zone", fixture.api.addr, &fixture.dns_token_file)?;
    wait_answering(server.addr, probe)?;
    let records = crate::dns_zone::collect(server.addr, distinct)?;
    Ok((crate::dns_zone::zone_file(DOMAIN, TTL, &records), records.len()))
}

/// Waits (up to 10 s) until `server` answers `probe` with NOERROR and at least one record.
fn wait_answering(server: SocketAddr, probe: &Query) -> anyhow::Result<()> {
    let began = Instant::now();
    loop {
        let last = match ask(server, &probe.name, probe.qtype, Duration::from_millis(300)) {
            Ok(r) if r.rcode == 0 && !r.answers.is_empty() => return Ok(()),
            Ok(r) => format!("rcode {}, {} answers", r.rcode, r.answers.len()),
            Err(e) => format!("{e:#}"),
        };
        if began.elapsed() > Duration::from_secs(10) {
            bail!("{server} does not answer {} within 10 s: {last}", probe.name);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn measure_once(
    server: &ServerProcess,
    probe: &Query,
    datafile: &std::path::Path,
    s: &Settings,
) -> anyhow::Result<DnsRun> {
    wait_answering(server.addr, probe).with_context(|| format!("{} before the run", server.name))?;
    let plan = |duration| DnsperfPlan {
        server: server.addr,
        datafile: datafile.to_path_buf(),
        duration,
    };
    crate::dnsperf::run(&plan(s.warmup)).context("warm-up")?;
    let cpu0 = tree_cpu_seconds(server.pid());
    let out = crate::dnsperf::run(&plan(s.duration))?;
    let cpu1 = tree_cpu_seconds(server.pid());
    anyhow::ensure!(out.completed > 0, "{}: no query answered", server.name);
    Ok(DnsRun {
        server_cpu_us_per_query: (cpu1 - cpu0) / out.completed as f64 * 1e6,
        server_core_busy: (cpu1 - cpu0) / out.seconds.max(1e-9),
        dnsperf: out,
    })
}

fn summarize(c: &DnsContender, runs: Vec<DnsRun>, failure: Option<String>) -> DnsServerResult {
    let spread = |get: fn(&DnsRun) -> f64| Spread::of(&runs.iter().map(get).collect::<Vec<_>>());
    DnsServerResult {
        name: c.name(),
        strata: *c == DnsContender::Strata,
        queries_per_sec: spread(|r| r.dnsperf.queries_per_sec),
        avg_latency_ms: spread(|r| r.dnsperf.avg_latency_ms),
        server_cpu_us_per_query: spread(|r| r.server_cpu_us_per_query),
        server_core_busy: spread(|r| r.server_core_busy),
        generator_core_busy: spread(|r| r.dnsperf.generator_core_busy),
        avg_response_bytes: spread(|r| r.dnsperf.avg_response_bytes),
        sent: runs.iter().map(|r| r.dnsperf.sent).sum(),
        lost: runs.iter().map(|r| r.dnsperf.lost).sum(),
        not_noerror: runs.iter().map(|r| r.dnsperf.not_noerror).sum(),
        runs,
        failure,
    }
}
