//! The DIRECTOR part of `strata control status`: per region, each edge's load (and the bound
//! its director applies) and what its cache holds, from the state rows the edges publish.

use serde_json::Value;

/// Prints the `director` section of a status answer.
pub fn print(v: &Value) {
    println!("DIRECTOR (state tables by region)");
    let regions = v["director"].as_array().cloned().unwrap_or_default();
    if regions.is_empty() {
        println!("  no edge with a region has published a state row");
    }
    for r in regions {
        let mean = r["mean_load"].as_f64().unwrap_or(0.0);
        println!(
            "  region {}   mean load {:.3}",
            r["region"].as_str().unwrap_or_default(),
            mean
        );
        for e in r["edges"].as_array().into_iter().flatten() {
            let c = &e["contents"];
            let held = match c["kind"].as_str() {
                Some("bloom") => format!(
                    "bloom filter of {} assets ({} bits, {} hashes, fp rate {})",
                    c["items"], c["bits"], c["hashes"], c["fp_rate"]
                ),
                _ => {
                    let assets: Vec<&str> = c["assets"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                        .collect();
                    let shown: Vec<&str> = assets.iter().take(8).copied().collect();
                    let more = assets.len().saturating_sub(shown.len());
                    format!(
                        "{} assets{}{}{}",
                        assets.len(),
                        if shown.is_empty() { "" } else { ": " },
                        shown.join(", "),
                        if more > 0 {
                            format!(" (+{more} more)")
                        } else {
                            String::new()
                        }
                    )
                }
            };
            println!(
                "    {:<16} {:<22} load {:.3} ({} conns, {:.1} Mbit/s, cpu {:.2}) v{} {}",
                e["edge"].as_str().unwrap_or_default(),
                e["addr"].as_str().unwrap_or_default(),
                e["load"].as_f64().unwrap_or(0.0),
                e["connections"],
                e["egress_bps"].as_f64().unwrap_or(0.0) / 1e6,
                e["cpu"].as_f64().unwrap_or(0.0),
                e["contents_version"],
                held
            );
        }
    }
}
