//! Scenario (g)'s simulated servers and the heartbeats they send, shaped like a real edge's and
//! storage server's (strata-edge's control agent): the server record, and for an edge its cache
//! table (`held`), per-asset demand since the last beat (over content really ingested), load
//! counters and per-client-block telemetry as running totals that grow from beat to beat.

use std::fmt::Write as _;
use std::net::Ipv4Addr;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// One server in ten is a storage server; the rest are edges.
pub const STORAGE_EVERY: usize = 10;
/// Regions the edges are spread over.
pub const REGIONS: usize = 8;
/// The cluster the simulated storage servers belong to (no tenant's home: nothing is placed
/// on them).
pub const SIM_CLUSTER: &str = "sim-store";
/// Files in each edge's cache table (`held`), sent with every heartbeat.
pub const HELD_PER_EDGE: usize = 200;
/// Assets an edge reports demand for per heartbeat.
pub const DEMAND_PER_BEAT: usize = 8;
/// Client /24s each edge reports telemetry for (shared within its region).
pub const BLOCKS_PER_EDGE: usize = 32;

/// A simulated server: its name, role and service token.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SimServer {
    pub index: usize,
    pub name: String,
    pub storage: bool,
    pub token: String,
}

/// What the load helpers read: the servers and the ingested assets (path, size) demand is for.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Fleet {
    pub servers: Vec<SimServer>,
    pub assets: Vec<(String, u64)>,
}

impl SimServer {
    pub fn new(index: usize, token: String) -> SimServer {
        let storage = index % STORAGE_EVERY == STORAGE_EVERY - 1;
        SimServer {
            index,
            name: format!("{}{index}", if storage { "sim-storage-" } else { "sim-edge-" }),
            storage,
            token,
        }
    }

    /// An address of its own (nobody listens there; nothing connects to it in the scenario).
    fn ip(&self) -> Ipv4Addr {
        let i = self.index as u32;
        Ipv4Addr::new(
            127,
            2 + (i / 62_500) as u8,
            ((i / 250) % 250) as u8,
            (i % 250) as u8 + 1,
        )
    }
}

/// A server's heartbeats, one after another.
pub struct Beats {
    record: String,
    held: String,
    storage: bool,
    rng: StdRng,
    region: usize,
    hits: u64,
    misses: u64,
    /// Per block: connections, bytes acked, retransmits, srtt sum (running totals).
    blocks: Vec<[u64; 4]>,
}

impl Beats {
    pub fn new(server: &SimServer) -> Beats {
        let ip = server.ip();
        let region = server.index % REGIONS;
        let record = if server.storage {
            serde_json::json!({
                "name": server.name, "role": "storage", "cluster": SIM_CLUSTER,
                "addr": format!("{ip}:8080"), "admin_addr": format!("{ip}:9080"),
            })
        } else {
            serde_json::json!({
                "name": server.name, "role": "edge", "region": format!("r{region}"),
                "capacity_bps": 10_000_000_000u64,
                "addr": format!("{ip}:8080"), "admin_addr": format!("{ip}:9080"),
            })
        };
        let mut rng = StdRng::seed_from_u64(0xbea7_0000 + server.index as u64);
        let held: Vec<(String, u64)> = (0..HELD_PER_EDGE)
            .map(|j| {
                (
                    format!("bench/library{}/seg{j}.m4s", rng.random_range(0..500)),
                    rng.random_range(500_000..4_000_000),
                )
            })
            .collect();
        Beats {
            record: record.to_string(),
            held: serde_json::to_string(&held).unwrap_or_else(|_| "[]".into()),
            storage: server.storage,
            region,
            hits: rng.random_range(0..1_000_000),
            misses: rng.random_range(0..100_000),
            blocks: vec![[0; 4]; BLOCKS_PER_EDGE],
            rng,
        }
    }

    /// The next heartbeat's JSON body; demand is drawn from `assets`.
    pub fn next(&mut self, assets: &[(String, u64)]) -> Vec<u8> {
        if self.storage {
            return format!("{{\"server\":{}}}", self.record).into_bytes();
        }
        let rng = &mut self.rng;
        self.hits += rng.random_range(500..5000);
        self.misses += rng.random_range(5..100);
        let mut s = String::with_capacity(self.held.len() + 4096);
        let _ = write!(
            s,
            "{{\"server\":{},\"edge\":{{\"capacity_bytes\":2000000000000,\"used_bytes\":{},\"held\":{},\"demand\":[",
            self.record,
            1_500_000_000_000u64 + rng.random_range(0..100_000_000_000u64),
            self.held
        );
        for k in 0..DEMAND_PER_BEAT.min(assets.len()) {
            let (path, size) = &assets[rng.random_range(0..assets.len())];
            let requests = rng.random_range(1..200u64);
            let _ = write!(
                s,
                "{}{{\"path\":\"{path}\",\"requests\":{requests},\"bytes\":{}}}",
                if k == 0 { "" } else { "," },
                requests * size
            );
        }
        let _ = write!(
            s,
            "],\"open_connections\":{},\"hits\":{},\"misses\":{},\"blocks\":[",
            rng.random_range(100..3000),
            self.hits,
            self.misses
        );
        for (j, b) in self.blocks.iter_mut().enumerate() {
            let connections = rng.random_range(0..20u64);
            b[0] += connections;
            b[1] += connections * rng.random_range(100_000..5_000_000u64);
            b[2] += rng.random_range(0..=connections);
            b[3] += connections * rng.random_range(5_000..80_000u64);
            let _ = write!(
                s,
                "{}{{\"prefix\":\"100.{}.{j}.0/24\",\"connections\":{},\"bytes_acked\":{},\"retransmits\":{},\"srtt_us_sum\":{}}}",
                if j == 0 { "" } else { "," },
                64 + self.region,
                b[0],
                b[1],
                b[2],
                b[3]
            );
        }
        s.push_str("]}}");
        s.into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_edge_heartbeat_is_the_wire_shape_with_growing_block_totals() {
        let server = SimServer::new(3, "t".into());
        assert!(!server.storage);
        let assets = vec![("bench/show0/seg0.m4s".to_string(), 4096u64)];
        let mut beats = Beats::new(&server);
        let first: serde_json::Value = serde_json::from_slice(&beats.next(&assets)).unwrap();
        let second: serde_json::Value = serde_json::from_slice(&beats.next(&assets)).unwrap();
        assert_eq!(first["server"]["name"], "sim-edge-3");
        assert_eq!(first["server"]["region"], "r3");
        assert_eq!(first["edge"]["held"].as_array().unwrap().len(), HELD_PER_EDGE);
        assert_eq!(first["edge"]["demand"][0]["path"], "bench/show0/seg0.m4s");
        assert_eq!(first["edge"]["blocks"].as_array().unwrap().len(), BLOCKS_PER_EDGE);
        let total = |v: &serde_json::Value| -> u64 {
            v["edge"]["blocks"]
                .as_array()
                .unwrap()
                .iter()
                .map(|b| b["connections"].as_u64().unwrap())
                .sum()
        };
        assert!(total(&second) >= total(&first));
        assert!(second["edge"]["hits"].as_u64() > first["edge"]["hits"].as_u64());
    }

    #[test]
    fn every_tenth_server_is_storage_in_the_simulated_cluster() {
        let server = SimServer::new(9, "t".into());
        assert!(server.storage);
        let body: serde_json::Value = serde_json::from_slice(&Beats::new(&server).next(&[])).unwrap();
        assert_eq!(body["server"]["role"], "storage");
        assert_eq!(body["server"]["cluster"], SIM_CLUSTER);
        assert!(body.get("edge").is_none());
    }
}
