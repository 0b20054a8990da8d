//! `strata control ...`: runs the control plane (`serve`) or one operator command against a
//! running one, printing a readable summary (or JSON with `status --json`).

use std::time::Duration;

use anyhow::Context as _;
use serde_json::{json, Value};

use crate::control_cli::{ControlArgs, ControlCommand, TenantCommand};

/// Runs the command.
pub fn run(args: ControlArgs) -> anyhow::Result<()> {
    if let ControlCommand::Serve(s) = &args.command {
        let settings = s.settings()?;
        if s.print_config {
            print!("{}", crate::config::to_toml(&settings));
            return Ok(());
        }
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .context("starting the tokio runtime")?;
        return rt.block_on(super::control::serve(settings));
    }
    super::cli_output::exit_quietly_on_closed_stdout();
    let client = args.client.client(Duration::from_secs(600))?;
    let what = |v: Result<Value, strata_wire::client::ClientError>| v.context("strata control");
    match args.command {
        ControlCommand::Serve(_) => unreachable!("handled above"),
        ControlCommand::Status { json } => {
            let v = what(client.get("/v1/status"))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                print_status(&v);
            }
        }
        ControlCommand::Cluster { name, tier } => {
            what(client.post("/v1/clusters", &json!({"name": name, "tier": tier})))?;
            println!("cluster {name} ({tier}) registered");
        }
        ControlCommand::Tenant(t) => tenant(&client, t)?,
        ControlCommand::Region(r) => super::map_admin::region(&client, r)?,
        ControlCommand::Block(b) => super::map_admin::block(&client, b)?,
        ControlCommand::Map { json } => super::map_admin::map(&client, json)?,
        ControlCommand::Sign {
            path,
            ttl,
            prefix,
            ip,
            base,
        } => {
            let tenant = path
                .trim_start_matches('/')
                .split('/')
                .next()
                .unwrap_or_default()
                .to_string();
            let v = what(client.post(
                &format!("/v1/tenants/{tenant}/signed-urls"),
                &json!({"path": path, "prefix": prefix, "ttl_secs": ttl.as_secs().max(1), "ip": ip}),
            ))?;
            let signed = v["path_and_query"].as_str().unwrap_or_default();
            match base {
                Some(b) => println!("{}{signed}", b.trim_end_matches('/')),
                None => println!("{signed}"),
            }
        }
        ControlCommand::Token { role, tenant, server } => {
            let body = match role.as_str() {
                "tenant" => {
                    json!({"role": "tenant", "tenant": tenant.context("--role tenant needs --tenant")?})
                }
                "service" => {
                    json!({"role": "service", "server": server.context("--role service needs --server")?})
                }
                other => json!({"role": other}),
            };
            let v = what(client.post("/v1/tokens", &body))?;
            println!("{}", v["token"].as_str().unwrap_or_default());
        }
        ControlCommand::Contents { tenant } => {
            let v = what(client.get(&format!("/v1/tenants/{tenant}/contents")))?;
            for c in v.as_array().into_iter().flatten() {
                println!(
                    "{:<32} {:<8} {:>3} assets {:>14} bytes {}{}",
                    c["content"].as_str().unwrap_or_default(),
                    c["state"].as_str().unwrap_or_default(),
                    c["assets"],
                    c["bytes"],
                    if c["hot"] == true { "hot " } else { "" },
                    list(&c["placed"]),
                );
            }
        }
        ControlCommand::Where { tenant, content } => {
            let v = what(client.get(&format!("/v1/tenants/{tenant}/contents/{content}")))?;
            println!("{}", serde_json::to_string_pretty(&v["where"])?);
            for a in v["record"]["assets"].as_array().into_iter().flatten() {
                println!(
                    "  {:<28} {:<9} {:>12} bytes etag {}",
                    a["name"].as_str().unwrap_or_default(),
                    a["kind"].as_str().unwrap_or_default(),
                    a["size"],
                    a["etag"].as_str().unwrap_or_default()
                );
            }
            for w in v["work"].as_array().into_iter().flatten() {
                println!(
                    "  queued work {}: {}",
                    w["id"].as_str().unwrap_or_default(),
                    w["targets"]
                );
            }
        }
        ControlCommand::Hot { tenant, content } => {
            let v = what(client.post(
                &format!("/v1/tenants/{tenant}/contents/{content}/hot"),
                &json!({}),
            ))?;
            println!("{tenant}/{content} is hot on {}", list(&v["hot_edges"]));
        }
        ControlCommand::Evict { tenant, content } => {
            let v = what(client.post(
                &format!("/v1/tenants/{tenant}/contents/{content}/evict"),
                &json!({}),
            ))?;
            println!("evicting from every edge: {}", list(&v["evicting"]));
        }
        ControlCommand::Repair { tenant, content } => {
            let v = what(client.post(
                &format!("/v1/tenants/{tenant}/contents/{content}/repair"),
                &json!({}),
            ))?;
            println!(
                "checked {} copies; restoring: {}",
                v["checked"],
                list(&v["restoring"])
            );
        }
        ControlCommand::HotList => {
            let v = what(client.get("/v1/hot"))?;
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
    }
    Ok(())
}

fn tenant(client: &strata_wire::client::ServiceClient, cmd: TenantCommand) -> anyhow::Result<()> {
    let what = |v: Result<Value, strata_wire::client::ClientError>| v.context("strata control tenant");
    match cmd {
        TenantCommand::Create {
            name,
            home,
            replicas,
            quota,
            hot_edges,
            idle_archive,
        } => {
            what(client.post(
                "/v1/tenants",
                &json!({"name": name, "home_cluster": home, "replica_clusters": replicas, "quota_bytes": quota, "hot_edges": hot_edges, "idle_archive_secs": idle_archive.as_secs()}),
            ))?;
            println!("tenant {name} created (home cluster {home})");
        }
        TenantCommand::Show { name } => println!(
            "{}",
            serde_json::to_string_pretty(&what(client.get(&format!("/v1/tenants/{name}")))?)?
        ),
        TenantCommand::List => println!(
            "{}",
            serde_json::to_string_pretty(&what(client.get("/v1/tenants"))?)?
        ),
        TenantCommand::Access { name, access } => {
            let path = format!("/v1/tenants/{name}/access");
            let v = match access {
                Some(a) => what(client.put_json(&path, &json!({ "access": a })))?,
                None => what(client.get(&path))?,
            };
            println!(
                "tenant {name}: access {} ({} valid signing keys)",
                v["access"], v["valid_keys"]
            );
        }
        TenantCommand::Delivery {
            name,
            cache_control_vod,
            cache_control_live_playlist,
            cache_control_error,
            cors_origins,
            cors_any,
        } => {
            let path = format!("/v1/tenants/{name}/delivery");
            let mut v = what(client.get(&path))?;
            let mut changed = false;
            for (field, value) in [
                ("cache_control_vod", cache_control_vod),
                ("cache_control_live_playlist", cache_control_live_playlist),
                ("cache_control_error", cache_control_error),
            ] {
                if let Some(value) = value {
                    v[field] = if value == "default" {
                        Value::Null
                    } else {
                        json!(value)
                    };
                    changed = true;
                }
            }
            if cors_any {
                v["cors_origins"] = Value::Null;
                changed = true;
            } else if !cors_origins.is_empty() {
                v["cors_origins"] = json!(cors_origins);
                changed = true;
            }
            if changed {
                if let Some(fields) = v.as_object_mut() {
                    fields.retain(|_, value| !value.is_null());
                }
                v = what(client.put_json(&path, &v))?;
            }
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
        TenantCommand::Keys { name } => {
            let v = what(client.post(&format!("/v1/tenants/{name}/signing-keys"), &json!({})))?;
            println!("tenant {name}: new signing key (shown once; the previous one stays valid)");
            println!("{}", v["key"].as_str().unwrap_or_default());
        }
        TenantCommand::Set {
            name,
            home,
            replicas,
            quota,
            hot_edges,
        } => {
            let v = what(client.patch(
                &format!("/v1/tenants/{name}"),
                &json!({"home_cluster": home, "replica_clusters": replicas, "quota_bytes": quota, "hot_edges": hot_edges}),
            ))?;
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
    }
    Ok(())
}

fn list(v: &Value) -> String {
    let items: Vec<String> = v
        .as_array()
        .into_iter()
        .flatten()
        .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_string))
        .collect();
    if items.is_empty() {
        "-".into()
    } else {
        items.join(", ")
    }
}

fn mib(v: &Value) -> String {
    format!("{:.1} MiB", v.as_f64().unwrap_or(0.0) / 1048576.0)
}

/// The status as text.
/// The status's live streams: tenant/stream, ingest cluster and servers, phase, recording.
fn print_live(v: &Value) {
    println!("LIVE");
    for l in v["live"].as_array().into_iter().flatten() {
        let servers: Vec<&str> = l["servers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        println!(
            "  {:<32} {:<9} on {} ({}) — {} segments, {}, {} kbit/s, last publish {}{}",
            format!(
                "{}/{}",
                l["tenant"].as_str().unwrap_or_default(),
                l["stream"].as_str().unwrap_or_default()
            ),
            l["phase"].as_str().unwrap_or_default(),
            l["cluster"].as_str().unwrap_or_default(),
            servers.join(", "),
            l["segments"],
            mib(&l["bytes"]),
            l["bitrate_bps"].as_u64().unwrap_or(0) / 1000,
            l["last_publish_unix"],
            l["archive_content"]
                .as_str()
                .map(|c| format!(", archived as {c}"))
                .unwrap_or_default(),
        );
    }
}

fn print_status(v: &Value) {
    let c = &v["control"];
    println!(
        "CONTROL\n  leader {}   (answered by {})",
        c["leader"].as_str().unwrap_or("NONE"),
        c["instance"].as_str().unwrap_or_default()
    );
    println!("TIERS");
    for c in v["tiers"]["clusters"].as_array().into_iter().flatten() {
        println!(
            "  cluster {} ({})",
            c["name"].as_str().unwrap_or_default(),
            c["tier"].as_str().unwrap_or_default()
        );
        for s in c["servers"].as_array().into_iter().flatten() {
            println!(
                "    {:<20} {:<22} {}",
                s["name"].as_str().unwrap_or_default(),
                s["addr"].as_str().unwrap_or_default(),
                if s["up"] == true { "up" } else { "DOWN" }
            );
        }
    }
    let a = &v["tiers"]["archive"];
    println!(
        "  archive {} — {} contents, {}",
        a["dir"].as_str().unwrap_or_default(),
        a["contents"],
        mib(&a["bytes"])
    );
    println!("EDGES");
    for e in v["edges"].as_array().into_iter().flatten() {
        println!(
            "  {:<20} {:<22} {:<4} cache {} of {} in {} files, {} connections, hits {} misses {}, syncd wants {} (pushes {})",
            e["name"].as_str().unwrap_or_default(),
            e["addr"].as_str().unwrap_or_default(),
            if e["up"] == true { "up" } else { "DOWN" },
            mib(&e["used_bytes"]),
            mib(&e["capacity_bytes"]),
            e["held_files"],
            e["open_connections"],
            e["hits"],
            e["misses"],
            e["wanted"],
            e["pushes"],
        );
        for r in e["top"].as_array().into_iter().flatten().take(5) {
            println!(
                "      {:<48} score {:<8} {}{}",
                r["path"].as_str().unwrap_or_default(),
                r["score"],
                if r["held"] == true { "held " } else { "" },
                if r["wanted"] == true { "wanted" } else { "" }
            );
        }
    }
    print_live(v);
    super::director_status::print(v);
    println!("TENANTS");
    for t in v["tenants"].as_array().into_iter().flatten() {
        println!(
            "  {:<16} home {:<10} replicas {:<16} {} contents, {} used of quota {}",
            t["name"].as_str().unwrap_or_default(),
            t["home_cluster"].as_str().unwrap_or_default(),
            list(&t["replica_clusters"]),
            t["contents"],
            mib(&t["used_bytes"]),
            if t["quota_bytes"] == 0 {
                "none".to_string()
            } else {
                mib(&t["quota_bytes"])
            },
        );
    }
    println!("HOT CONTENT");
    for h in v["hot"].as_array().into_iter().flatten() {
        println!(
            "  {}/{} on {}",
            h["tenant"].as_str().unwrap_or_default(),
            h["content"].as_str().unwrap_or_default(),
            list(&h["edges"])
        );
    }
    println!("WORK QUEUE");
    let work = v["work"].as_array().cloned().unwrap_or_default();
    if work.is_empty() {
        println!("  empty");
    }
    for w in work {
        println!(
            "  {} {}/{} {}/{} targets done",
            w["id"].as_str().unwrap_or_default(),
            w["tenant"].as_str().unwrap_or_default(),
            w["content"].as_str().unwrap_or_default(),
            w["targets_done"],
            w["targets"]
        );
        for t in w["waiting"].as_array().into_iter().flatten() {
            println!(
                "    waiting on {} ({} attempts): {}",
                t["target"].as_str().unwrap_or_default(),
                t["attempts"],
                t["error"].as_str().unwrap_or_default()
            );
        }
    }
}
