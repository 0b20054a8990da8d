//! `strata job ...`: creates distribution jobs, shows their targets, watches them with progress
//! bars (one per target, plus the job's total), cancels, repairs and appends commands.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{bail, Context as _};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use serde_json::{json, Value};

use crate::job_cli::{JobArgs, JobCommand};
use strata_wire::client::ServiceClient;
use strata_wire::jobs::{CommandKind, JobRequest};

pub fn run(args: JobArgs) -> anyhow::Result<()> {
    let client = args.client.client(Duration::from_secs(60))?;
    let what = |v: Result<Value, strata_wire::client::ClientError>| v.context("strata job");
    match args.command {
        JobCommand::Create {
            tenant,
            content,
            to,
            assets,
            fanout,
            timeout,
            notify,
            commands,
            no_wait,
        } => {
            let commands = commands
                .iter()
                .map(|c| {
                    CommandKind::parse(c.trim())
                        .with_context(|| format!("--commands: {c:?} is not fetch, pin, unpin or delete"))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let req = JobRequest {
                tenant,
                content,
                assets,
                to,
                fanout,
                timeout_secs: timeout,
                notify_url: notify,
                commands,
            };
            let v = what(client.post("/v1/jobs", &req))?;
            let id = v["id"].as_str().unwrap_or_default().to_string();
            println!(
                "job {id}: {}/{} ({} bytes) to {} targets, fanout {}",
                v["tenant"].as_str().unwrap_or_default(),
                v["content"].as_str().unwrap_or_default(),
                v["bytes"],
                v["summary"]["targets"],
                v["fanout"]
            );
            if !no_wait {
                watch(&client, &id)?;
            }
        }
        JobCommand::Status { id: None, json } => {
            let v = what(client.get("/v1/jobs"))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&v)?);
                return Ok(());
            }
            for j in v.as_array().into_iter().flatten() {
                println!(
                    "{:<32} {:<10} {}/{} {}/{} done",
                    j["id"].as_str().unwrap_or_default(),
                    j["state"].as_str().unwrap_or_default(),
                    j["tenant"].as_str().unwrap_or_default(),
                    j["content"].as_str().unwrap_or_default(),
                    j["done"],
                    j["targets"]
                );
            }
        }
        JobCommand::Status { id: Some(id), json } => {
            let v = what(client.get(&format!("/v1/jobs/{id}")))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                print_status(&v);
            }
        }
        JobCommand::Watch { id } => watch(&client, &id)?,
        JobCommand::Cancel { id } => {
            let v = what(client.post(&format!("/v1/jobs/{id}/cancel"), &json!({})))?;
            println!("job {id}: {}", v["state"].as_str().unwrap_or_default());
        }
        JobCommand::Repair { id } => {
            let v = what(client.post(&format!("/v1/jobs/{id}/repair"), &json!({})))?;
            println!(
                "job {id}: {} targets re-queued; {}",
                v["requeued"],
                v["state"].as_str().unwrap_or_default()
            );
        }
        JobCommand::Command { id, command } => {
            if CommandKind::parse(&command).is_none() {
                bail!("command {command:?} is not fetch, pin, unpin or delete");
            }
            let v = what(client.post(&format!("/v1/jobs/{id}/commands"), &json!({ "command": command })))?;
            println!("job {id}: commands now {}", v["commands"]);
        }
    }
    Ok(())
}

fn mib(b: u64) -> f64 {
    b as f64 / (1 << 20) as f64
}

fn print_status(v: &Value) {
    println!(
        "job {}  {}/{}  {}  {:.1} MiB  fanout {}  commands {}",
        v["id"].as_str().unwrap_or_default(),
        v["tenant"].as_str().unwrap_or_default(),
        v["content"].as_str().unwrap_or_default(),
        v["state"].as_str().unwrap_or_default(),
        mib(v["bytes"].as_u64().unwrap_or(0)),
        v["fanout"],
        v["commands"]
    );
    if let (Some(c), Some(f)) = (v["created_ms"].as_u64(), v["finished_ms"].as_u64()) {
        println!("took {:.1} s", (f.saturating_sub(c)) as f64 / 1000.0);
    }
    println!(
        "{:<16} {:<8} {:<13} {:<20} {:>10} {:>12}  error",
        "target", "command", "state", "source", "MiB", "rate MiB/s"
    );
    for t in v["targets"].as_array().into_iter().flatten() {
        println!(
            "{:<16} {:<8} {:<13} {:<20} {:>10.1} {:>12.1}  {}",
            t["server"].as_str().unwrap_or_default(),
            t["command"].as_str().unwrap_or_default(),
            t["state"].as_str().unwrap_or_default(),
            t["source"].as_str().unwrap_or("-"),
            mib(t["offset"].as_u64().unwrap_or(0)),
            mib(t["rate_bps"].as_u64().unwrap_or(0)),
            t["error"].as_str().unwrap_or("")
        );
    }
    let s = &v["summary"];
    println!(
        "{} of {} targets done, {} transferring, {} failed, {} timed out, {} cancelled",
        s["done"], s["targets"], s["transferring"], s["failed"], s["timed_out"], s["cancelled"]
    );
}

/// Progress bars (one per target and the total) until the job ends; fails if it did not end done.
fn watch(client: &ServiceClient, id: &str) -> anyhow::Result<()> {
    let multi = MultiProgress::new();
    let style = ProgressStyle::with_template("{prefix:>14} [{bar:30}] {bytes:>10}/{total_bytes:<10} {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    let mut bars: HashMap<String, ProgressBar> = HashMap::new();
    let total_bar = multi.add(ProgressBar::new(0));
    total_bar.set_style(style.clone());
    total_bar.set_prefix("job");
    loop {
        let v: Value = client
            .get(&format!("/v1/jobs/{id}"))
            .context("strata job watch")?;
        let total = v["bytes"].as_u64().unwrap_or(0);
        let mut sum = 0;
        let targets = v["targets"].as_array().cloned().unwrap_or_default();
        for t in &targets {
            let name = t["server"].as_str().unwrap_or_default().to_string();
            let bar = bars.entry(name.clone()).or_insert_with(|| {
                let b = multi.add(ProgressBar::new(total));
                b.set_style(style.clone());
                b.set_prefix(name.clone());
                b
            });
            let offset = t["offset"].as_u64().unwrap_or(0).min(total);
            sum += offset;
            bar.set_position(offset);
            bar.set_message(format!(
                "{} {} {}{}",
                t["state"].as_str().unwrap_or_default(),
                t["command"].as_str().unwrap_or_default(),
                t["source"]
                    .as_str()
                    .map(|s| format!("from {s}"))
                    .unwrap_or_default(),
                match t["rate_bps"].as_u64() {
                    Some(r) if r > 0 => format!(" {:.1} MiB/s", mib(r)),
                    _ => String::new(),
                }
            ));
        }
        total_bar.set_length(total * targets.len() as u64);
        total_bar.set_position(sum);
        total_bar.set_message(v["state"].as_str().unwrap_or_default().to_string());
        let state = v["state"].as_str().unwrap_or_default().to_string();
        if state != "running" {
            for b in bars.values() {
                b.finish();
            }
            total_bar.finish();
            let _ = multi.clear();
            print_status(&v);
            if state != "done" {
                bail!("job {id} ended {state}");
            }
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}
