//! The report: report.md (tables, each strata figure with its ratio to the best peer and to the
//! machine's limit; the map solve's times; DNS queries per second against Knot DNS),
//! report.json (every raw figure and the machine's description), and the console summary.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context as _;
use serde::Serialize;

use crate::dns_scenario::DnsResult;
use crate::figures::{Spread, Summary};
use crate::map_solve::MapSolveResult;
use crate::scenarios::{Results, ServerResult, Settings, WorkloadResult};

/// What the numbers were measured on.
#[derive(Debug, Serialize)]
pub struct Machine {
    pub cpu_model: String,
    pub cpus: usize,
    pub memory_gib: f64,
    pub kernel: String,
    pub strata: String,
    pub nginx: Option<String>,
    pub haproxy: Option<String>,
    pub knot: Option<String>,
}

fn command_line(program: &str, args: &[&str]) -> Option<String> {
    let out = std::process::Command::new(program).args(args).output().ok()?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    text.lines()
        .next()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
}

impl Machine {
    pub fn describe(strata: &Path) -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        Machine {
            cpu_model: cpuinfo
                .lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|l| l.trim_start_matches([' ', '\t', ':']).to_string())
                .unwrap_or_else(|| "unknown".into()),
            // Not available_parallelism: the harness has pinned itself to one CPU by now.
            cpus: cpuinfo.lines().filter(|l| l.starts_with("processor")).count(),
            memory_gib: meminfo
                .lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|l| l.split_whitespace().next()?.parse::<f64>().ok())
                .map_or(0.0, |kib| kib / 1024.0 / 1024.0),
            kernel: nix::sys::utsname::uname()
                .map(|u| u.release().to_string_lossy().into_owned())
                .unwrap_or_default(),
            strata: command_line(&strata.to_string_lossy(), &["--version"])
                .unwrap_or_else(|| "unknown".into()),
            nginx: command_line("nginx", &["-v"]),
            haproxy: command_line("haproxy", &["-v"]),
            knot: command_line("knotd", &["--version"]),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub date: String,
    pub machine: Machine,
    pub quick: bool,
    pub peers: bool,
    pub runs_per_figure: usize,
    pub seconds_per_run: f64,
    pub results: Results,
}

impl Report {
    pub fn new(settings: &Settings, machine: Machine, results: Results) -> Report {
        Report {
            date: command_line("date", &["-u", "+%Y-%m-%d %H:%M UTC"]).unwrap_or_default(),
            machine,
            quick: settings.quick,
            peers: settings.peers,
            runs_per_figure: settings.reps,
            seconds_per_run: settings.duration.as_secs_f64(),
            results,
        }
    }

    /// Writes report.md and report.json into `dir`.
    pub fn write(&self, dir: &Path) -> anyhow::Result<()> {
        let json = serde_json::to_string_pretty(self).context("encoding the report as JSON")?;
        std::fs::write(dir.join("report.json"), json)
            .with_context(|| format!("writing {}/report.json", dir.display()))?;
        std::fs::write(dir.join("report.md"), self.markdown())
            .with_context(|| format!("writing {}/report.md", dir.display()))?;
        Ok(())
    }

    pub fn markdown(&self) -> String {
        let m = &self.machine;
        let r = &self.results;
        let mut s = String::new();
        let _ = writeln!(s, "# strata benchmark, {}\n", self.date);
        let _ = writeln!(
            s,
            "Machine: {} × {}, {:.0} GiB, Linux {}; {}; {}; {}. Servers pinned to CPU 0, the load generator to CPU 1. \
             {} run(s) of {:.0} s per figure, alternating servers; cells are median (min–max).{}\n",
            m.cpus,
            m.cpu_model,
            m.memory_gib,
            m.kernel,
            m.strata,
            m.nginx.as_deref().unwrap_or("nginx not installed"),
            m.haproxy.as_deref().unwrap_or("HAProxy not installed"),
            self.runs_per_figure,
            self.seconds_per_run,
            if self.quick { " Quick run: fewer workloads, shorter runs." } else { "" }
        );
        let _ = writeln!(
            s,
            "Physical limit (sendfile loop to discarding readers over loopback; each table's \"of limit\" is against the loop at its own concurrency):\n"
        );
        for l in std::iter::once(&r.limit).chain(&r.limits) {
            let _ = writeln!(
                s,
                "- {} connection(s): **{} Gbit/s**, machine {} CPU-s/GB",
                l.connections,
                cell(&l.gbit_per_sec, 2),
                cell(&l.machine_cpu_s_per_gb, 3)
            );
        }
        let _ = writeln!(s);
        for w in &r.workloads {
            workload_table(&mut s, w, r.limit_at(w.connections));
        }
        idle_table(&mut s, r);
        if let Some(m) = &r.map_solve {
            map_solve_table(&mut s, m);
        }
        if let Some(d) = &r.dns {
            dns_table(&mut s, d, self.machine.knot.as_deref());
        }
        if let Some(c) = &r.control_capacity {
            crate::capacity_report::table(&mut s, c);
        }
        if let Some(j) = &r.jobs {
            crate::job_scenario::table(&mut s, j);
        }
        if let Some(d) = &r.director {
            s.push_str(&crate::director_scenario::table(d));
        }
        let verdicts = crate::goals::judge(r);
        if !verdicts.is_empty() {
            let _ = writeln!(s, "\n## Goals\n");
            for v in verdicts {
                let _ = writeln!(s, "- {} {}", if v.met { "met:" } else { "**SHORT:**" }, v.text);
            }
        }
        s
    }

    /// A few lines for the console.
    pub fn console_summary(&self) -> String {
        let mut s = String::from("limit (sendfile loop):");
        for l in std::iter::once(&self.results.limit).chain(&self.results.limits) {
            let _ = write!(s, " {:.2} Gbit/s × {}", l.gbit_per_sec.median, l.connections);
        }
        s.push('\n');
        for w in &self.results.workloads {
            for line in comparisons(w, self.results.limit_at(w.connections)) {
                let _ = writeln!(s, "{} × {}: {line}", w.title, w.connections);
            }
        }
        for i in &self.results.idle {
            let _ = writeln!(
                s,
                "(d) idle: {} {:.3} KiB per connection",
                i.name, i.kib_per_connection.median
            );
        }
        for line in self
            .results
            .director
            .iter()
            .flat_map(crate::director_scenario::console_lines)
        {
            let _ = writeln!(s, "{line}");
        }
        for c in self.results.map_solve.iter().flat_map(|m| &m.cases) {
            let _ = match &c.failure {
                Some(f) => writeln!(s, "(e) map solve, {}: failed: {f}", c.title),
                None => writeln!(
                    s,
                    "(e) map solve, {}: {} ms per solve",
                    c.title,
                    cell(&c.solve_ms, 1)
                ),
            };
        }
        if let Some(d) = &self.results.dns {
            for line in dns_lines(d) {
                let _ = writeln!(s, "(f) DNS: {line}");
            }
        }
        for line in self
            .results
            .control_capacity
            .iter()
            .flat_map(crate::capacity_report::lines)
        {
            let _ = writeln!(s, "(g) control capacity: {line}");
        }
        if let Some(j) = &self.results.jobs {
            let _ = writeln!(s, "(h) distribution job: {}", crate::job_scenario::line(j));
        }
        s
    }
}

fn idle_table(s: &mut String, r: &Results) {
    if r.idle.is_empty() {
        return;
    }
    let _ = writeln!(s, "## (d) idle keep-alive connections\n");
    let _ = writeln!(
        s,
        "| server | KiB of RSS per connection (slope) | RSS at each level (connections: MiB), first run |"
    );
    let _ = writeln!(s, "|---|---|---|");
    for i in &r.idle {
        let levels = i
            .runs
            .first()
            .map(|run| {
                run.levels
                    .iter()
                    .map(|l| format!("{}: {:.1}", l.connections, l.rss_kib as f64 / 1024.0))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default();
        let slope = match &i.failure {
            Some(f) => format!("failed: {f}"),
            None => cell(&i.kib_per_connection, 3),
        };
        let _ = writeln!(s, "| {} | {} | {} |", i.name, slope, levels);
    }
    if let (Some(strata), Some(peer)) = (
        r.idle.iter().find(|i| i.strata && i.failure.is_none()),
        r.idle.iter().find(|i| !i.strata && i.failure.is_none()),
    ) {
        let _ = writeln!(
            s,
            "\nstrata vs {}: ×{:.2} the memory per idle connection.",
            peer.name,
            ratio(strata.kib_per_connection.median, peer.kib_per_connection.median)
        );
    }
}

fn map_solve_table(s: &mut String, m: &MapSolveResult) {
    let _ = writeln!(s, "\n## (e) map solve\n");
    let _ = writeln!(
        s,
        "strata-flow's min-cost max-flow on a seeded random map: {} blocks × {} regions, {} candidate \
         regions per block; each case solved {} time(s) in the harness's process on CPU {}.\n",
        m.blocks,
        m.regions,
        m.candidates_per_block,
        m.cases.iter().map(|c| c.runs.len()).max().unwrap_or(0),
        crate::scenarios::LOAD_CPU
    );
    let _ = writeln!(
        s,
        "| case | solve ms | load carried | blocks split over regions | blocks with load unassigned |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|");
    for c in &m.cases {
        match &c.failure {
            Some(f) => {
                let _ = writeln!(s, "| {} | failed: {} ||||", c.title, f.replace('|', "/"));
            }
            None => {
                let _ = writeln!(
                    s,
                    "| {} | {} | {:.1}% | {} | {} |",
                    c.title,
                    cell(&c.solve_ms, 1),
                    c.carried_share * 100.0,
                    c.blocks_split,
                    c.blocks_short
                );
            }
        }
    }
}

fn dns_table(s: &mut String, d: &DnsResult, knot: Option<&str>) {
    let _ = writeln!(s, "\n## (f) DNS\n");
    let _ = writeln!(
        s,
        "One nameserver answering a mix of {} queries ({} distinct names) for `{}`, sent in order and \
         again from the start: {:.0}% SRV `_a{{bucket}}-{{ip}}._tcp.srv` (64 buckets; client addresses in {} \
         configured /24 blocks and outside them), the rest A `r{{region}}`; a map of {} regions × {} edges. \
         strata dns reads the map from a control plane (on CPU {}, edges kept up by heartbeats); {} \
         serves a static zone of {} records written from strata's answers to every name, with one UDP \
         worker. Load: {} over UDP with EDNS, {} sockets, at most {} queries in flight, a query \
         unanswered after {} s lost.\n",
        d.queries_in_mix,
        d.distinct_names,
        d.domain,
        d.srv_share * 100.0,
        d.blocks,
        d.regions,
        d.edges_per_region,
        crate::scenarios::LOAD_CPU,
        knot.and_then(|k| k.rsplit_once("version "))
            .map_or("Knot DNS".into(), |(_, v)| format!("Knot DNS {v}")),
        d.zone_records.map_or("-".into(), |n| n.to_string()),
        d.load_generator.as_deref().unwrap_or("dnsperf"),
        d.clients,
        d.outstanding,
        d.timeout_seconds
    );
    let _ = writeln!(
        s,
        "| server | queries/s | avg latency ms | server CPU µs/query | core busy: server, dnsperf | response bytes (avg) | sent | lost | not NOERROR |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|");
    for x in &d.servers {
        let name = if x.strata {
            format!("**{}**", x.name)
        } else {
            x.name.clone()
        };
        if let Some(f) = &x.failure {
            if x.runs.is_empty() {
                let _ = writeln!(
                    s,
                    "| {name} | did not run: {} ||||||||",
                    f.replace('|', "/").replace('\n', " ")
                );
                continue;
            }
        }
        let _ = writeln!(
            s,
            "| {name} | {} | {} | {} | {}, {} | {} | {} | {} ({:.3}%) | {} |",
            cell(&x.queries_per_sec, 0),
            cell(&x.avg_latency_ms, 2),
            cell(&x.server_cpu_us_per_query, 1),
            cell(&x.server_core_busy, 2),
            cell(&x.generator_core_busy, 2),
            cell(&x.avg_response_bytes, 0),
            x.sent,
            x.lost,
            ratio(x.lost as f64, x.sent as f64) * 100.0,
            x.not_noerror
        );
    }
    if d.heartbeat_failures > 0 {
        let _ = writeln!(
            s,
            "\n{} edge heartbeats failed during the scenario: strata's answers may have lost edges.",
            d.heartbeat_failures
        );
    }
    let _ = writeln!(
        s,
        "\nCore busy: CPU seconds over the run's seconds of the server (on CPU {}) and of dnsperf (on CPU {}); \
         the one near 1 set the pace (with both well under 1, something else on the machine did).",
        crate::scenarios::SERVER_CPU,
        crate::scenarios::LOAD_CPU
    );
    let lines = dns_lines(d);
    if !lines.is_empty() {
        let _ = writeln!(s);
        for l in lines {
            let _ = writeln!(s, "- {l}");
        }
    }
}

/// "strata dns: N queries/s, ×r of knot" for the console and the report.
fn dns_lines(d: &DnsResult) -> Vec<String> {
    let ran = |x: &&crate::dns_scenario::DnsServerResult| !x.runs.is_empty();
    let peer = d.servers.iter().filter(|x| !x.strata).find(ran);
    d.servers
        .iter()
        .filter(|x| x.strata)
        .map(|x| {
            if x.runs.is_empty() {
                return format!(
                    "{}: failed: {}",
                    x.name,
                    x.failure.as_deref().unwrap_or("no runs")
                );
            }
            let mut line = format!("{}: {} queries/s", x.name, cell(&x.queries_per_sec, 0));
            if let Some(p) = peer {
                let _ = write!(
                    line,
                    ", ×{:.2} the queries/s of {} ({}), ×{:.2} its CPU per query",
                    ratio(x.queries_per_sec.median, p.queries_per_sec.median),
                    p.name,
                    cell(&p.queries_per_sec, 0),
                    ratio(x.server_cpu_us_per_query.median, p.server_cpu_us_per_query.median)
                );
            }
            line
        })
        .collect()
}

fn cell(x: &Spread, digits: usize) -> String {
    if x.min == x.max {
        format!("{:.*}", digits, x.median)
    } else {
        format!(
            "{:.*} ({:.*}–{:.*})",
            digits, x.median, digits, x.min, digits, x.max
        )
    }
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        a / b
    } else {
        f64::NAN
    }
}

fn workload_table(s: &mut String, w: &WorkloadResult, limit: f64) {
    let hit = w.servers.iter().any(|x| x.summary.byte_hit_ratio.is_some());
    let _ = writeln!(s, "## {}, {} connections\n", w.title, w.connections);
    let _ = writeln!(
        s,
        "| server | Gbit/s | of limit | req/s | p99 ms | server CPU-s/GB | machine CPU-s/GB | peak RSS MiB | errors |{}",
        if hit { " byte hit ratio | exact LRU, same requests | cache MiB at end |" } else { "" }
    );
    let _ = writeln!(
        s,
        "|---|---|---|---|---|---|---|---|---|{}",
        if hit { "---|---|---|" } else { "" }
    );
    for x in &w.servers {
        if let Some(f) = &x.failure {
            let _ = writeln!(
                s,
                "| {} | did not run: {} |||||||{}",
                x.name,
                f.replace('|', "/").replace('\n', " "),
                if hit { "|||" } else { "" }
            );
            continue;
        }
        let m = &x.summary;
        let _ = write!(
            s,
            "| {} | {} | {:.2} | {} | {} | {} | {} | {} | {} |",
            if x.strata {
                format!("**{}**", x.name)
            } else {
                x.name.clone()
            },
            cell(&m.gbit_per_sec, 2),
            ratio(m.gbit_per_sec.median, limit),
            cell(&m.requests_per_sec, 0),
            cell(&m.p99_ms, 1),
            cell(&m.server_cpu_s_per_gb, 3),
            cell(&m.machine_cpu_s_per_gb, 3),
            cell(&m.peak_rss_mib, 1),
            m.errors
        );
        if hit {
            let _ = write!(
                s,
                " {} | {} | {} |",
                m.byte_hit_ratio.as_ref().map_or("-".into(), |h| cell(h, 2)),
                m.lru_byte_hit_ratio.as_ref().map_or("-".into(), |h| cell(h, 2)),
                m.cache_mib_at_end.as_ref().map_or("-".into(), |h| cell(h, 1))
            );
        }
        let _ = writeln!(s);
    }
    if hit {
        let _ = writeln!(
            s,
            "\nByte hit ratio: share of the bytes served that the origin did not send (fills included). \
             Exact LRU: what an LRU of the same capacity, admitting everything, would have had on the \
             very request sequence this server was sent. \
             nginx's cache manager trims to max_size lazily, so it may hold more than the capacity \
             during a run: compare \"cache MiB at end\"."
        );
    }
    let served: Vec<String> = w
        .servers
        .iter()
        .filter_map(|x| {
            let shares = &x.runs.last()?.body_paths;
            (!shares.is_empty()).then(|| {
                let parts: Vec<String> = shares
                    .iter()
                    .map(|(path, share)| format!("{path} {:.0} %", share * 100.0))
                    .collect();
                format!("{}: {}", x.name, parts.join(", "))
            })
        })
        .collect();
    if !served.is_empty() {
        let _ = writeln!(
            s,
            "\nBody paths that served (share of strata's body bytes, last run): {}.",
            served.join("; ")
        );
    }
    if let Some(note) = &w.note {
        let _ = writeln!(s, "\n{note}");
    }
    let lines = comparisons(w, limit);
    if !lines.is_empty() {
        let _ = writeln!(s);
        for l in lines {
            let _ = writeln!(s, "- {l}");
        }
    }
    let _ = writeln!(s);
}

/// The best peer's value of a figure (highest, or lowest when `lower_better`).
fn best_peer(
    w: &WorkloadResult,
    get: fn(&Summary) -> f64,
    lower_better: bool,
) -> Option<(&ServerResult, f64)> {
    w.servers
        .iter()
        .filter(|x| !x.strata && x.failure.is_none() && !x.runs.is_empty())
        .map(|x| (x, get(&x.summary)))
        .reduce(|a, b| if (b.1 < a.1) == lower_better { b } else { a })
}

/// A figure's label, how to read it, and whether lower is better.
type Figure = (&'static str, fn(&Summary) -> f64, bool);

/// "strata X: throughput ×r of best peer (name), ..." for each strata server.
fn comparisons(w: &WorkloadResult, limit: f64) -> Vec<String> {
    let mut out = Vec::new();
    for x in w
        .servers
        .iter()
        .filter(|x| x.strata && x.failure.is_none() && !x.runs.is_empty())
    {
        let m = &x.summary;
        let mut parts = vec![format!(
            "{:.2} Gbit/s = {:.2} of the limit",
            m.gbit_per_sec.median,
            ratio(m.gbit_per_sec.median, limit)
        )];
        let figures: [Figure; 4] = [
            ("throughput", |s| s.gbit_per_sec.median, false),
            ("server CPU/GB", |s| s.server_cpu_s_per_gb.median, true),
            ("machine CPU/GB", |s| s.machine_cpu_s_per_gb.median, true),
            ("p99", |s| s.p99_ms.median, true),
        ];
        for (label, get, lower) in figures {
            if let Some((peer, v)) = best_peer(w, get, lower) {
                parts.push(format!("{label} ×{:.2} of {}", ratio(get(m), v), peer.name));
            }
        }
        out.push(format!("{}: {}", x.name, parts.join(", ")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::figures::RunFigures;

    fn server(name: &str, strata: bool, gbps: f64, cpu: f64) -> ServerResult {
        let runs = vec![RunFigures {
            gbit_per_sec: gbps,
            server_cpu_s_per_gb: cpu,
            machine_cpu_s_per_gb: cpu * 2.0,
            p99_ms: 10.0,
            ..Default::default()
        }];
        ServerResult {
            name: name.into(),
            strata,
            summary: Summary::of(&runs),
            runs,
            failure: None,
        }
    }

    fn dns_server(name: &str, strata: bool, qps: f64, cpu_us: f64) -> crate::dns_scenario::DnsServerResult {
        let run = crate::dns_scenario::DnsRun {
            dnsperf: crate::dnsperf::DnsperfOut {
                queries_per_sec: qps,
                ..Default::default()
            },
            server_cpu_us_per_query: cpu_us,
            server_core_busy: 1.0,
        };
        let one = |v: f64| Spread::of(&[v]);
        crate::dns_scenario::DnsServerResult {
            name: name.into(),
            strata,
            runs: vec![run],
            queries_per_sec: one(qps),
            avg_latency_ms: one(1.0),
            server_cpu_us_per_query: one(cpu_us),
            server_core_busy: one(1.0),
            generator_core_busy: one(0.5),
            avg_response_bytes: one(300.0),
            sent: 100,
            lost: 1,
            not_noerror: 0,
            failure: None,
        }
    }

    #[test]
    fn the_dns_line_gives_strata_against_the_peer_in_queries_and_cpu_per_query() {
        let d = DnsResult {
            domain: "cdn.test".into(),
            regions: 4,
            edges_per_region: 2,
            blocks: 300,
            queries_in_mix: 2000,
            distinct_names: 1800,
            srv_share: 0.9,
            zone_records: Some(7000),
            load_generator: Some("dnsperf 2.10.0".into()),
            clients: 4,
            outstanding: 200,
            timeout_seconds: 1,
            heartbeat_failures: 0,
            servers: vec![
                dns_server("strata dns", true, 50_000.0, 20.0),
                dns_server("knot", false, 100_000.0, 10.0),
            ],
        };
        let lines = dns_lines(&d);
        assert_eq!(
            lines,
            ["strata dns: 50000 queries/s, ×0.50 the queries/s of knot (100000), ×2.00 its CPU per query"]
        );
        let mut md = String::new();
        dns_table(&mut md, &d, Some("knotd (Knot DNS), version 3.2.6"));
        assert!(
            md.contains("## (f) DNS") && md.contains("Knot DNS 3.2.6 serves"),
            "{md}"
        );
        assert!(
            md.contains("| **strata dns** | 50000 |") && md.contains("| 100 | 1 (1.000%) | 0 |"),
            "{md}"
        );
    }

    #[test]
    fn ratios_compare_with_the_best_peer_for_each_figure() {
        let w = WorkloadResult {
            scenario: "b".into(),
            title: "t".into(),
            connections: 16,
            servers: vec![
                server("strata splice", true, 8.0, 0.5),
                server("nginx", false, 4.0, 2.0),
                server("haproxy", false, 6.0, 1.0),
            ],
            note: None,
        };
        let lines = comparisons(&w, 16.0);
        assert_eq!(lines.len(), 1);
        let l = &lines[0];
        assert!(l.contains("8.00 Gbit/s = 0.50 of the limit"), "{l}");
        assert!(l.contains("throughput ×1.33 of haproxy"), "{l}");
        assert!(l.contains("server CPU/GB ×0.50 of haproxy"), "{l}");
    }
}
