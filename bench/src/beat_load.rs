//! `bench beat`, scenario (g)'s load helper process: simulates a slice of the fleet (servers
//! read from the fleet file), each server with its own keep-alive connection heartbeating every
//! interval at its own random phase, like a real server's control agent. Latency counts from when
//! a beat was due (so a control plane that falls behind is charged for the wait, not hidden by
//! fewer beats); beats due in the warm-up are not counted. Prints its figures as JSON on stdout.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::api_conn::ApiConn;
use crate::sim_heartbeat::{Beats, Fleet, SimServer};

#[derive(Args)]
pub struct BeatArgs {
    /// The control plane's API address.
    #[arg(long)]
    pub control: SocketAddr,
    /// The fleet file (JSON: servers with their tokens, ingested assets).
    #[arg(long)]
    pub fleet: PathBuf,
    /// First server (index into the fleet) this helper simulates.
    #[arg(long)]
    pub from: usize,
    /// How many servers it simulates.
    #[arg(long)]
    pub count: usize,
    /// Loopback address to connect from.
    #[arg(long)]
    pub source: Ipv4Addr,
    /// Beats due before this many milliseconds are not counted.
    #[arg(long)]
    pub warmup_ms: u64,
    /// Beats due in this many milliseconds after the warm-up are counted.
    #[arg(long)]
    pub measure_ms: u64,
    /// Each server heartbeats this often.
    #[arg(long, default_value_t = 1000)]
    pub interval_ms: u64,
    /// A beat not answered this long after it was due fails (the control plane's default server
    /// time to live: the server would be down).
    #[arg(long, default_value_t = 5000)]
    pub timeout_ms: u64,
}

/// One helper's figures over the counted beats.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct BeatOutcome {
    pub servers: usize,
    /// Beats due in the counted window.
    pub due: u64,
    pub answered: u64,
    pub failed: u64,
    pub first_error: Option<String>,
    /// Every counted beat's latency (answered or failed), microseconds.
    pub latencies_us: Vec<u64>,
    /// The bytes of the heartbeat bodies sent in the window.
    pub body_bytes: u64,
}

/// `bench beat`.
pub fn run(args: &BeatArgs) -> anyhow::Result<()> {
    let text = std::fs::read(&args.fleet).with_context(|| format!("reading {}", args.fleet.display()))?;
    let fleet: Fleet =
        serde_json::from_slice(&text).with_context(|| format!("parsing {}", args.fleet.display()))?;
    let servers: Vec<SimServer> = fleet
        .servers
        .get(args.from..args.from + args.count)
        .with_context(|| {
            format!(
                "servers {}..{} are not in the fleet of {}",
                args.from,
                args.from + args.count,
                fleet.servers.len()
            )
        })?
        .to_vec();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let outcome = runtime.block_on(simulate(args, servers, Arc::new(fleet.assets)));
    println!("{}", serde_json::to_string(&outcome)?);
    Ok(())
}

async fn simulate(args: &BeatArgs, servers: Vec<SimServer>, assets: Arc<Vec<(String, u64)>>) -> BeatOutcome {
    let start = Instant::now();
    let window = Window {
        counted_from: start + Duration::from_millis(args.warmup_ms),
        end: start + Duration::from_millis(args.warmup_ms + args.measure_ms),
        interval: Duration::from_millis(args.interval_ms),
        timeout: Duration::from_millis(args.timeout_ms),
    };
    let mut tasks = tokio::task::JoinSet::new();
    let mut rng = rand::rngs::StdRng::seed_from_u64(args.from as u64);
    for server in servers {
        let phase = Duration::from_micros(rng.random_range(0..window.interval.as_micros() as u64));
        let (assets, control, source) = (assets.clone(), args.control, args.source);
        tasks.spawn(async move { one_server(server, start + phase, window, control, source, &assets).await });
    }
    let mut total = BeatOutcome {
        servers: args.count,
        ..Default::default()
    };
    while let Some(done) = tasks.join_next().await {
        let Ok(o) = done else { continue };
        total.due += o.due;
        total.answered += o.answered;
        total.failed += o.failed;
        total.body_bytes += o.body_bytes;
        if total.first_error.is_none() {
            total.first_error = o.first_error;
        }
        total.latencies_us.extend(o.latencies_us);
    }
    total
}

#[derive(Clone, Copy)]
struct Window {
    counted_from: Instant,
    end: Instant,
    interval: Duration,
    timeout: Duration,
}

async fn one_server(
    server: SimServer,
    first: Instant,
    w: Window,
    control: SocketAddr,
    source: Ipv4Addr,
    assets: &[(String, u64)],
) -> BeatOutcome {
    let mut beats = Beats::new(&server);
    let mut conn: Option<ApiConn> = None;
    let mut out = BeatOutcome::default();
    let mut due = first;
    while due < w.end {
        tokio::time::sleep_until(due).await;
        let body = beats.next(assets);
        let sent = tokio::time::timeout_at(due + w.timeout, async {
            if conn.is_none() {
                conn = Some(ApiConn::connect(control, Some(source)).await?);
            }
            match conn.as_mut() {
                Some(c) => c.request("POST", "/v1/heartbeat", &server.token, &body).await,
                None => anyhow::bail!("no connection"),
            }
        })
        .await;
        let latency = due.elapsed();
        let error = match sent {
            Ok(Ok(a)) if a.status == 200 => None,
            Ok(Ok(a)) => Some(format!(
                "{}: status {}: {}",
                server.name,
                a.status,
                String::from_utf8_lossy(&a.body)
            )),
            Ok(Err(e)) => Some(format!("{}: {e:#}", server.name)),
            Err(_) => Some(format!(
                "{}: no answer within {} ms of the beat being due",
                server.name,
                w.timeout.as_millis()
            )),
        };
        if error.is_some() {
            conn = None;
        }
        if due >= w.counted_from {
            out.due += 1;
            out.body_bytes += body.len() as u64;
            out.latencies_us.push(latency.as_micros() as u64);
            match error {
                None => out.answered += 1,
                Some(e) => {
                    out.failed += 1;
                    out.first_error.get_or_insert(e);
                }
            }
        }
        due += w.interval;
    }
    out
}
