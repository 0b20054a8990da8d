//! Scenario (f)'s load generator: Debian's `dnsperf`, run for a bounded time against one
//! nameserver over UDP with EDNS (as resolvers ask), on the harness's own CPU (it inherits the
//! harness's pinning), its closing statistics read back, and the CPU time it used (from the
//! harness's waited-for children: dnsperf is the only one that ends during a run).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use anyhow::{ensure, Context as _};
use serde::Serialize;

/// Sockets dnsperf sends from.
pub const CLIENTS: usize = 4;
/// Queries in flight at most.
pub const OUTSTANDING: usize = 200;
/// A query unanswered this long counts as lost.
pub const TIMEOUT_SECONDS: u64 = 1;

/// One run's plan.
pub struct DnsperfPlan {
    pub server: SocketAddr,
    pub datafile: PathBuf,
    pub duration: Duration,
}

/// dnsperf's statistics of one run.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct DnsperfOut {
    pub queries_per_sec: f64,
    pub sent: u64,
    pub completed: u64,
    pub lost: u64,
    /// Answers with an rcode other than NOERROR.
    pub not_noerror: u64,
    pub avg_request_bytes: f64,
    pub avg_response_bytes: f64,
    pub avg_latency_ms: f64,
    pub max_latency_ms: f64,
    pub seconds: f64,
    /// dnsperf's own CPU seconds over the run's seconds (near 1: the generator set the pace).
    pub generator_core_busy: f64,
    /// dnsperf's version line.
    pub version: Option<String>,
}

/// Runs dnsperf to the end of `plan.duration` (whole seconds, at least one) and reads its report.
pub fn run(plan: &DnsperfPlan) -> anyhow::Result<DnsperfOut> {
    let seconds = plan.duration.as_secs().max(1);
    let mut cmd = Command::new("dnsperf");
    cmd.arg("-s")
        .arg(plan.server.ip().to_string())
        .arg("-p")
        .arg(plan.server.port().to_string())
        .arg("-d")
        .arg(&plan.datafile)
        .args(["-l", &seconds.to_string()])
        .args(["-c", &CLIENTS.to_string()])
        .args(["-q", &OUTSTANDING.to_string()])
        .args(["-t", &TIMEOUT_SECONDS.to_string()])
        .arg("-e");
    let cpu0 = children_cpu_seconds();
    let out = cmd
        .output()
        .context("running dnsperf (Debian package dnsperf; `cargo xtask bench` installs it)")?;
    let cpu = children_cpu_seconds() - cpu0;
    let stdout = String::from_utf8_lossy(&out.stdout);
    ensure!(
        out.status.success(),
        "dnsperf against {} failed ({}): {}{}",
        plan.server,
        out.status,
        String::from_utf8_lossy(&out.stderr),
        tail(&stdout)
    );
    let mut report =
        parse(&stdout).with_context(|| format!("reading dnsperf's report:\n{}", tail(&stdout)))?;
    report.generator_core_busy = cpu / report.seconds.max(1e-9);
    Ok(report)
}

/// User and system CPU seconds of this process's children that have ended and been waited for.
fn children_cpu_seconds() -> f64 {
    // SAFETY: getrusage fills the struct it is given; a zeroed rusage is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a valid, writable rusage.
    if unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) } != 0 {
        return 0.0;
    }
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.starts_with("[Timeout]")).collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// Reads dnsperf's closing statistics.
pub fn parse(text: &str) -> anyhow::Result<DnsperfOut> {
    let field = |label: &str| -> anyhow::Result<&str> {
        text.lines()
            .find_map(|l| l.trim_start().strip_prefix(label))
            .map(str::trim)
            .with_context(|| format!("no line {label:?}"))
    };
    let first_number = |label: &str| -> anyhow::Result<f64> {
        let v = field(label)?;
        v.split_whitespace()
            .next()
            .and_then(|n| n.parse::<f64>().ok())
            .with_context(|| format!("{label} {v:?} is not a number"))
    };
    let count = |label: &str| first_number(label).map(|n| n as u64);
    let completed = count("Queries completed:")?;
    let codes = field("Response codes:").unwrap_or_default();
    let noerror = codes
        .split(',')
        .find_map(|c| c.trim().strip_prefix("NOERROR "))
        .and_then(|c| c.split_whitespace().next()?.parse::<u64>().ok())
        .unwrap_or(0);
    let sizes = field("Average packet size:")?;
    let size = |label: &str| -> anyhow::Result<f64> {
        sizes
            .split(',')
            .find_map(|p| p.trim().strip_prefix(label))
            .and_then(|n| n.trim().parse::<f64>().ok())
            .with_context(|| format!("no {label} size in {sizes:?}"))
    };
    let latency = field("Average Latency (s):")?;
    let max_latency = latency
        .split_once("max ")
        .and_then(|(_, m)| m.trim_end_matches(')').trim().parse::<f64>().ok())
        .unwrap_or(0.0);
    Ok(DnsperfOut {
        queries_per_sec: first_number("Queries per second:")?,
        sent: count("Queries sent:")?,
        completed,
        lost: count("Queries lost:")?,
        not_noerror: completed.saturating_sub(noerror),
        avg_request_bytes: size("request")?,
        avg_response_bytes: size("response")?,
        avg_latency_ms: first_number("Average Latency (s):")? * 1000.0,
        max_latency_ms: max_latency * 1000.0,
        seconds: first_number("Run time (s):")?,
        generator_core_busy: 0.0,
        version: text
            .lines()
            .find(|l| l.starts_with("Version "))
            .map(|l| format!("dnsperf {}", l.trim_start_matches("Version ").trim())),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPORT: &str = "DNS Performance Testing Tool
Version 2.10.0

[Status] Command line: dnsperf -s 127.0.0.1 -p 19153 -d q.txt -l 1 -e -c 4 -q 200 -t 1
[Timeout] Query timed out: msg id 56372
[Status] Testing complete (time limit)

Statistics:

  Queries sent:         48861
  Queries completed:    48854 (99.99%)
  Queries lost:         7 (0.01%)

  Response codes:       NOERROR 48850 (99.99%), NXDOMAIN 4 (0.01%)
  Average packet size:  request 59, response 188
  Run time (s):         1.001343
  Queries per second:   48788.477075

  Average Latency (s):  0.003865 (min 0.000019, max 0.017932)
  Latency StdDev (s):   0.003943
";

    #[test]
    fn the_closing_statistics_read_back() {
        let o = parse(REPORT).expect("parse");
        assert_eq!((o.sent, o.completed, o.lost, o.not_noerror), (48861, 48854, 7, 4));
        assert!((o.queries_per_sec - 48788.477075).abs() < 1e-6);
        assert_eq!((o.avg_request_bytes, o.avg_response_bytes), (59.0, 188.0));
        assert!((o.avg_latency_ms - 3.865).abs() < 1e-9);
        assert!((o.max_latency_ms - 17.932).abs() < 1e-9);
        assert!((o.seconds - 1.001343).abs() < 1e-9);
        assert_eq!(o.version.as_deref(), Some("dnsperf 2.10.0"));
    }

    #[test]
    fn a_report_without_statistics_is_an_error() {
        assert!(parse("DNS Performance Testing Tool\nVersion 2.10.0\n").is_err());
    }
}
