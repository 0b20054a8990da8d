//! What a nameserver needs in scenario (f): a control plane with a realistic map. Regions of
//! edges (registered by heartbeats the harness sends as each edge, every second while the
//! fixture lives, so no edge goes down), configured client blocks, and the nameserver's service
//! token in a file.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use serde_json::json;

use crate::control_api::ControlApi;
use crate::servers::{ServerEnv, ServerProcess};

/// Regions and their base costs (different, so SRV answers rank them).
pub const REGIONS: [(&str, u64); 4] = [("east", 0), ("west", 10), ("north", 20), ("south", 30)];
pub const EDGES_PER_REGION: usize = 2;
/// Configured client blocks: /24s from 100.64.0.0 up.
pub const BLOCKS: usize = 300;
const EDGE_CAPACITY_BPS: u64 = 10_000_000_000;

/// A control plane with its map, kept alive (and its edges up) until dropped.
pub struct ControlFixture {
    pub api: ControlApi,
    /// The nameserver's service token, in a file.
    pub dns_token_file: PathBuf,
    pub regions: Vec<String>,
    pub blocks: Vec<Ipv4Addr>,
    /// Heartbeats the control plane refused or did not answer.
    pub heartbeat_failures: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    beats: Option<JoinHandle<()>>,
    _process: ServerProcess,
}

/// One edge as it heartbeats.
struct Edge {
    api: ControlApi,
    body: serde_json::Value,
}

impl ControlFixture {
    /// Starts the control plane on `cpu` over `dir`, fills in its map and waits until the map
    /// holds every region (with its edges up) and every block.
    pub fn start(env: &ServerEnv, dir: &Path, cpu: usize) -> anyhow::Result<ControlFixture> {
        let process = env.strata_control("dns-control", &dir.join("control"), cpu)?;
        let token_path = dir.join("control").join("operator.token");
        let operator = std::fs::read_to_string(&token_path)
            .with_context(|| format!("reading {}", token_path.display()))?;
        let api = ControlApi {
            addr: process.addr,
            token: operator.trim().to_string(),
        };
        let dns_token_file = dir.join("dns.token");
        std::fs::write(&dns_token_file, issue(&api, "dns-1")?)
            .with_context(|| format!("writing {}", dns_token_file.display()))?;
        for (name, base_cost) in REGIONS {
            api.post("/v1/regions", &json!({ "name": name, "base_cost": base_cost }))?;
        }
        let blocks: Vec<Ipv4Addr> = (0..BLOCKS)
            .map(|i| Ipv4Addr::from(u32::from(Ipv4Addr::new(100, 64, 0, 0)) + ((i as u32) << 8)))
            .collect();
        for b in &blocks {
            api.post("/v1/blocks", &json!({ "prefix": format!("{b}/24") }))?;
        }
        let mut edges = Vec::new();
        for (r, (region, _)) in REGIONS.iter().enumerate() {
            for i in 0..EDGES_PER_REGION {
                let name = format!("{region}{}", i + 1);
                // Loopback addresses nobody listens on: nothing connects to them here.
                let ip = Ipv4Addr::new(127, 0, r as u8 + 1, i as u8 + 1);
                edges.push(Edge {
                    api: api.as_token(&issue(&api, &name)?),
                    body: json!({ "server": {
                        "name": name, "role": "edge", "region": region,
                        "capacity_bps": EDGE_CAPACITY_BPS,
                        "addr": format!("{ip}:8080"), "admin_addr": format!("{ip}:9080"),
                    }}),
                });
            }
        }
        for e in &edges {
            e.api.post("/v1/heartbeat", &e.body).context("first heartbeat")?;
        }
        let stop = Arc::new(AtomicBool::new(false));
        let heartbeat_failures = Arc::new(AtomicU64::new(0));
        let beats = {
            let (stop, failures) = (stop.clone(), heartbeat_failures.clone());
            std::thread::Builder::new()
                .name("dns-heartbeats".into())
                .spawn(move || heartbeat_loop(&edges, &stop, &failures))
                .context("starting the heartbeat thread")?
        };
        let fixture = ControlFixture {
            api,
            dns_token_file,
            regions: REGIONS.iter().map(|(r, _)| r.to_string()).collect(),
            blocks,
            heartbeat_failures,
            stop,
            beats: Some(beats),
            _process: process,
        };
        fixture.wait_for_map()?;
        Ok(fixture)
    }

    /// Waits until GET /v1/map has every block and every region with all its edges.
    fn wait_for_map(&self) -> anyhow::Result<()> {
        let began = Instant::now();
        let mut last = String::new();
        while began.elapsed() < Duration::from_secs(20) {
            let map = self.api.get("/v1/map")?;
            let blocks = map["blocks"].as_array().map_or(0, Vec::len);
            let servers = map["regions"].as_array().map_or(0, |rs| {
                rs.iter()
                    .filter_map(|r| r["servers"].as_array())
                    .map(Vec::len)
                    .sum()
            });
            if blocks >= BLOCKS && servers == REGIONS.len() * EDGES_PER_REGION {
                return Ok(());
            }
            last = format!("{blocks} blocks, {servers} edges");
            std::thread::sleep(Duration::from_millis(200));
        }
        bail!(
            "the control plane's map did not fill within 20 s (last: {last}; want {BLOCKS} blocks, {} edges)",
            REGIONS.len() * EDGES_PER_REGION
        )
    }
}

impl Drop for ControlFixture {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.beats.take() {
            let _ = t.join();
        }
    }
}

/// A service token for `server`.
fn issue(api: &ControlApi, server: &str) -> anyhow::Result<String> {
    let answer = api
        .post("/v1/tokens", &json!({ "role": "service", "server": server }))
        .with_context(|| format!("issuing a service token for {server}"))?;
    answer["token"]
        .as_str()
        .map(str::to_string)
        .with_context(|| format!("no token in {answer}"))
}

fn heartbeat_loop(edges: &[Edge], stop: &AtomicBool, failures: &AtomicU64) {
    while !stop.load(Ordering::Relaxed) {
        for e in edges {
            if e.api.post("/v1/heartbeat", &e.body).is_err() {
                failures.fetch_add(1, Ordering::Relaxed);
            }
        }
        for _ in 0..10 {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
