//! `strata control region|block|map`: regions of edges, configured client blocks, and the
//! network map as a table (block, load, regions in order with their cost, unassigned load).

use anyhow::Context as _;
use serde_json::{json, Value};
use strata_wire::client::{ClientError, ServiceClient};
use strata_wire::network_map::NetworkMap;

use crate::control_cli::{BlockCommand, RegionCommand};

fn what(v: Result<Value, ClientError>) -> anyhow::Result<Value> {
    v.context("strata control")
}

/// Bits per second, readable.
pub fn rate(bps: u64) -> String {
    match bps {
        b if b >= 1_000_000_000 => format!("{:.1} Gbit/s", b as f64 / 1e9),
        b if b >= 1_000_000 => format!("{:.1} Mbit/s", b as f64 / 1e6),
        b if b >= 1_000 => format!("{:.1} kbit/s", b as f64 / 1e3),
        b => format!("{b} bit/s"),
    }
}

pub fn region(client: &ServiceClient, cmd: RegionCommand) -> anyhow::Result<()> {
    match cmd {
        RegionCommand::Set {
            name,
            capacity_bps,
            base_cost,
        } => {
            let body = json!({"name": name, "capacity_bps": capacity_bps, "base_cost": base_cost});
            what(client.post("/v1/regions", &body))?;
            let capacity = capacity_bps.map_or("its servers' sum".to_string(), rate);
            println!("region {name}: capacity {capacity}, base cost {base_cost}");
        }
        RegionCommand::List => {
            let v = what(client.get("/v1/regions"))?;
            println!("{:<16} {:>16} {:>10}", "REGION", "CAPACITY", "BASE COST");
            for r in v.as_array().into_iter().flatten() {
                let capacity = r["capacity_bps"].as_u64().map_or("servers".to_string(), rate);
                println!(
                    "{:<16} {:>16} {:>10}",
                    r["name"].as_str().unwrap_or("?"),
                    capacity,
                    r["base_cost"].as_u64().unwrap_or(0)
                );
            }
        }
    }
    Ok(())
}

pub fn block(client: &ServiceClient, cmd: BlockCommand) -> anyhow::Result<()> {
    match cmd {
        BlockCommand::Add { prefix } => {
            let v = what(client.post("/v1/blocks", &json!({ "prefix": prefix })))?;
            let added = v["prefix"].as_str().unwrap_or(&prefix).to_string();
            if v["created"].as_bool() == Some(false) {
                println!("block {added} was already configured");
            } else {
                println!("block {added} added; the next map covers it");
            }
        }
        BlockCommand::Del { prefix } => {
            let q: String =
                percent_encoding::utf8_percent_encode(&prefix, percent_encoding::NON_ALPHANUMERIC)
                    .to_string();
            what(client.delete(&format!("/v1/blocks?prefix={q}")))?;
            println!("block {prefix} removed");
        }
        BlockCommand::List => {
            let v = what(client.get("/v1/blocks"))?;
            for b in v.as_array().into_iter().flatten() {
                println!("{}", b.as_str().unwrap_or("?"));
            }
        }
    }
    Ok(())
}

pub fn map(client: &ServiceClient, json_out: bool) -> anyhow::Result<()> {
    let v = what(client.get("/v1/map"))?;
    if json_out {
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    let map: NetworkMap = serde_json::from_value(v).context("strata control map: reading the map")?;
    println!(
        "map version {} ({} blocks, {} regions, solved in {:.1} ms)",
        map.version,
        map.blocks.len(),
        map.regions.len(),
        map.solve_ms
    );
    println!();
    println!(
        "{:<12} {:>16} {:>16} {:>4}  SERVERS UP",
        "REGION", "CAPACITY", "SPARE", "UP"
    );
    for r in &map.regions {
        let servers: Vec<String> = r
            .servers
            .iter()
            .map(|s| format!("{} {}", s.name, s.addr))
            .collect();
        println!(
            "{:<12} {:>16} {:>16} {:>4}  {}",
            r.name,
            rate(r.capacity_bps),
            rate(r.spare_bps),
            r.servers.len(),
            servers.join(", ")
        );
    }
    println!();
    println!("{:<22} {:>14}  REGIONS IN ORDER (cost; carried)", "BLOCK", "LOAD");
    for b in &map.blocks {
        let order: Vec<String> = b
            .regions
            .iter()
            .zip(&b.costs)
            .map(|(r, c)| match b.assigned.iter().find(|(a, _)| a == r) {
                Some((_, carried)) => format!("{r} ({c}; {})", rate(*carried)),
                None => format!("{r} ({c})"),
            })
            .collect();
        let unassigned = if b.unassigned_bps > 0 {
            format!("  UNASSIGNED {}", rate(b.unassigned_bps))
        } else {
            String::new()
        };
        println!(
            "{:<22} {:>14}  {}{}",
            b.prefix,
            rate(b.load_bps),
            order.join(" > "),
            unassigned
        );
    }
    println!();
    println!("other clients: {}", map.default_order.join(" > "));
    if map.unassigned_bps > 0 {
        println!("load that fits in no region: {}", rate(map.unassigned_bps));
    }
    Ok(())
}
