//! strata's benchmark harness (`cargo xtask bench` runs `bench run`): strata against nginx,
//! HAProxy and the machine's own limit, side by side in one run, the network map's solve
//! time, strata's nameserver against Knot DNS, and the control plane's capacity per registry
//! backend, written up as markdown, JSON and PNG plots. `bench load` is the load generator on its
//! own; `bench hold` and `bench beat` are the idle and capacity scenarios' helper processes.

mod api_conn;
mod beat_load;
mod body_sink;
mod capacity_fixture;
mod capacity_report;
mod capacity_step;
mod contenders;
mod control_api;
mod control_capacity;
mod corpus;
mod director_scenario;
mod dns_fixture;
mod dns_mix;
mod dns_scenario;
mod dns_servers;
mod dns_wire;
mod dns_zone;
mod dnsperf;
mod exact_lru;
mod figures;
mod goals;
mod h2load;
mod http_get;
mod idle_hold;
mod job_lan;
mod job_scenario;
mod load;
mod map_solve;
mod peer_configs;
mod physical_limit;
mod plots;
mod proc_stats;
mod report;
mod scenarios;
mod servers;
mod sim_heartbeat;
mod tally;
mod tls_load;
mod url_mix;
mod veth_origin;

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(name = "bench", about = "strata benchmark harness")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Every scenario against strata, its peers and the machine's limit; writes the report.
    Run(RunArgs),
    /// Keep-alive load against a list of URLs for a fixed time.
    Load(load::LoadArgs),
    /// (helper) Open connections, request once on each, hold them until stdin closes.
    Hold(idle_hold::HoldArgs),
    /// (helper) Simulated servers heartbeating to a control plane (scenario g).
    Beat(beat_load::BeatArgs),
}

#[derive(Args)]
struct RunArgs {
    /// Smoke check: one run each, fewer workloads, short runs (under two minutes).
    #[arg(long)]
    quick: bool,
    /// Measure strata only (no nginx, HAProxy or Knot DNS).
    #[arg(long)]
    no_peers: bool,
    /// Directory for report.md, report.json, the plots and the servers' logs.
    #[arg(long, default_value = "bench/results")]
    out: PathBuf,
    /// The strata binary to measure.
    #[arg(long, default_value = "target/release/strata")]
    strata: PathBuf,
    /// Run only these scenarios (a local hit, b proxied miss, c Zipf with admission, d idle
    /// connections, e map solve, f DNS queries per second, g control-plane capacity per registry
    /// backend, h distribution job to 12 edges in network namespaces, root needed, i director off vs on, j local hits over HTTPS); comma-separated. The limit probe
    /// always runs. Without a, b, c, d, f, g or h no server runs: neither the strata binary nor the
    /// peers are needed.
    #[arg(long, value_delimiter = ',', value_parser = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"])]
    only: Vec<String>,
    /// Scratch directory for the served files and caches (removed afterwards).
    #[arg(long)]
    work: Option<PathBuf>,
}

fn run(args: &RunArgs) -> anyhow::Result<()> {
    let peers = !args.no_peers;
    let mut settings = scenarios::Settings::new(args.quick, peers);
    settings.only.clone_from(&args.only);
    let strata = match std::fs::canonicalize(&args.strata) {
        Ok(path) => path,
        // Only the map solve and the limit probe: no server to start.
        Err(_) if !settings.runs_servers() => args.strata.clone(),
        Err(e) => {
            return Err(e).with_context(|| {
                format!(
                    "no strata binary at {} (build it: cargo build --release -p strata)",
                    args.strata.display()
                )
            })
        }
    };
    if settings.runs_http_peers() {
        for program in ["nginx", "haproxy"] {
            anyhow::ensure!(
                servers::installed(program),
                "{program} is not installed; `cargo xtask bench` installs it (apt-get install nginx haproxy), or pass --no-peers"
            );
        }
    }
    if settings.wants("f") {
        anyhow::ensure!(
            servers::installed("dnsperf"),
            "dnsperf (scenario f's load generator) is not installed; `cargo xtask bench` installs it (apt-get install dnsperf)"
        );
        anyhow::ensure!(
            !peers || servers::installed("knotd"),
            "knotd is not installed; `cargo xtask bench` installs it (apt-get install knot), or pass --no-peers"
        );
    }
    std::fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    let out = std::fs::canonicalize(&args.out)?;
    let work = args
        .work
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join(format!("strata-bench-{}", std::process::id())));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    let exe = std::env::current_exe().context("finding the bench executable")?;
    let cx = scenarios::RunContext::new(&strata, &exe, &work, &out.join("logs"));
    eprintln!(
        "bench: {} run(s) per figure, {} s each; servers on CPU {}, load on CPU {}; report in {}",
        settings.reps,
        settings.duration.as_secs(),
        scenarios::SERVER_CPU,
        scenarios::LOAD_CPU,
        out.display()
    );
    let results = scenarios::run_all(&cx, &settings);
    let _ = std::fs::remove_dir_all(&work);
    let report = report::Report::new(&settings, report::Machine::describe(&strata), results?);
    report.write(&out)?;
    plots::write_all(&out, &report.results)?;
    print!("{}", report.console_summary());
    println!(
        "report: {}/report.md (and report.json, throughput.png, p99.png, idle_rss.png)",
        out.display()
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Cmd::Run(args) => run(&args),
        Cmd::Load(args) => load::run(&args),
        Cmd::Hold(args) => idle_hold::hold(&args),
        Cmd::Beat(args) => beat_load::run(&args),
    }
}
