//! Scenario (g)'s control plane and what it needs before the ramp: `strata control serve` on
//! either registry, the clusters and tenants, one real storage server, content really ingested
//! (the edges' demand is for it), service tokens for the simulated servers, and the API-write
//! measurement (writers PATCHing their own tenants).

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use serde_json::json;

use crate::api_conn::ApiConn;
use crate::control_capacity::{
    percentile_ms, WriteFigures, ASSETS_PER_CONTENT, ASSET_BYTES, CONTENTS, HOME_CLUSTER, WRITERS,
};
use crate::scenarios::{RunContext, LOAD_CPU, SERVER_CPU};
use crate::servers::{free_addr, ServerProcess};
use crate::sim_heartbeat::{SimServer, SIM_CLUSTER};

/// `strata control serve` with its defaults (server TTL 5 s, map every 10 s) on the server CPU.
pub fn start_control(
    cx: &RunContext,
    data_dir: &Path,
    registry: Option<String>,
) -> anyhow::Result<ServerProcess> {
    let addr = free_addr()?;
    let mut cmd = Command::new(&cx.env.strata);
    cmd.args(["control", "serve", "--data-dir"])
        .arg(data_dir)
        .arg("--listen")
        .arg(addr.to_string())
        .env("RUST_LOG", "warn");
    let name = match &registry {
        Some(url) => {
            cmd.arg("--registry").arg(url);
            "capacity-control-etcd"
        }
        None => "capacity-control-redb",
    };
    ServerProcess::spawn(name, cmd, addr, None, SERVER_CPU, &cx.env.logs)
}

/// The control plane's address and the operator's token.
pub struct Api {
    pub addr: SocketAddr,
    pub operator: String,
}

impl Api {
    async fn call(
        &self,
        conn: &mut ApiConn,
        method: &str,
        path: &str,
        body: &serde_json::Value,
    ) -> anyhow::Result<serde_json::Value> {
        conn.request(method, path, &self.operator, body.to_string().as_bytes())
            .await?
            .json(&format!("{method} {path}"))
    }
}

/// Clusters (the real storage server's and the simulated ones'), the tenant whose content the
/// edges ask for, and the tenants the writers update.
pub async fn setup(api: &Api) -> anyhow::Result<()> {
    let mut c = ApiConn::connect(api.addr, None).await?;
    for cluster in [HOME_CLUSTER, SIM_CLUSTER] {
        api.call(
            &mut c,
            "POST",
            "/v1/clusters",
            &json!({"name": cluster, "tier": "storage"}),
        )
        .await?;
    }
    for tenant in std::iter::once("bench".to_string()).chain((0..WRITERS).map(|i| format!("writer{i}"))) {
        api.call(
            &mut c,
            "POST",
            "/v1/tenants",
            &json!({"name": tenant, "home_cluster": HOME_CLUSTER}),
        )
        .await?;
    }
    Ok(())
}

/// A real `strata storage` in the home cluster (ingested content is placed on it), on the load
/// CPU, once the control plane has it up.
pub fn start_storage(
    cx: &RunContext,
    api: &Api,
    dir: &Path,
    rt: &tokio::runtime::Runtime,
) -> anyhow::Result<ServerProcess> {
    let token = rt.block_on(async {
        let mut c = ApiConn::connect(api.addr, None).await?;
        let v = api
            .call(
                &mut c,
                "POST",
                "/v1/tokens",
                &json!({"role": "service", "server": "store-1"}),
            )
            .await?;
        v["token"]
            .as_str()
            .map(str::to_string)
            .context("no token in the answer")
    })?;
    let token_file = dir.join("store-1.token");
    std::fs::write(&token_file, token).with_context(|| format!("writing {}", token_file.display()))?;
    let root = dir.join("store-1");
    std::fs::create_dir_all(&root).with_context(|| format!("creating {}", root.display()))?;
    let (addr, admin) = (free_addr()?, free_addr()?);
    let mut cmd = Command::new(&cx.env.strata);
    cmd.arg("storage")
        .arg("--listen")
        .arg(addr.to_string())
        .arg("--admin-listen")
        .arg(admin.to_string())
        .arg("--root")
        .arg(&root)
        .args([
            "--telemetry",
            "off",
            "--cluster",
            HOME_CLUSTER,
            "--name",
            "store-1",
        ])
        .arg("--control")
        .arg(format!("http://{}", api.addr))
        .arg("--control-token-file")
        .arg(&token_file)
        .env("RUST_LOG", "warn");
    let storage = ServerProcess::spawn("capacity-storage", cmd, addr, Some(admin), LOAD_CPU, &cx.env.logs)?;
    Ok(storage)
}

/// Ingests `CONTENTS` contents for tenant `bench` (retrying the first while the storage server
/// registers); returns every asset's path and size.
pub async fn ingest(api: &Api) -> anyhow::Result<Vec<(String, u64)>> {
    let mut c = ApiConn::connect(api.addr, None).await?;
    let mut assets = Vec::new();
    let body = vec![b'x'; ASSET_BYTES];
    for n in 0..CONTENTS {
        let content = format!("show{n}");
        let decls: Vec<serde_json::Value> = (0..ASSETS_PER_CONTENT)
            .map(|a| json!({"name": format!("seg{a}.m4s"), "size": ASSET_BYTES}))
            .collect();
        let id = api
            .call(
                &mut c,
                "POST",
                "/v1/tenants/bench/ingests",
                &json!({"content": content, "assets": decls}),
            )
            .await?["id"]
            .as_str()
            .map(str::to_string)
            .context("no ingest id in the answer")?;
        for a in 0..ASSETS_PER_CONTENT {
            let path = format!("/v1/ingests/{id}/files/seg{a}.m4s");
            let answer = c.request("PUT", &path, &api.operator, &body).await?;
            answer.json(&format!("PUT {path}"))?;
            assets.push((format!("bench/{content}/seg{a}.m4s"), ASSET_BYTES as u64));
        }
        let began = Instant::now();
        loop {
            // 409 while the home cluster has no registered server yet (the storage server's
            // first heartbeat).
            let path = format!("/v1/ingests/{id}/commit");
            let answer = c.request("POST", &path, &api.operator, b"{}").await?;
            if answer.status == 409 && began.elapsed() < Duration::from_secs(20) {
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
            answer.json(&format!("POST {path}"))?;
            break;
        }
    }
    Ok(assets)
}

/// `WRITERS` clients each PATCHing its own tenant's quota back to back for `time`.
pub async fn tenant_writes(api: &Api, time: Duration) -> WriteFigures {
    let until = tokio::time::Instant::now() + time;
    let began = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..WRITERS {
        let (addr, token) = (api.addr, api.operator.clone());
        tasks.spawn(async move {
            let mut latencies = Vec::new();
            let mut failed = 0u64;
            let mut first_error = None;
            let mut conn = None;
            let mut quota = 1u64 << 40;
            while tokio::time::Instant::now() < until {
                quota += 1;
                let body = json!({ "quota_bytes": quota }).to_string();
                let path = format!("/v1/tenants/writer{w}");
                let t0 = Instant::now();
                let result = async {
                    if conn.is_none() {
                        conn = Some(ApiConn::connect(addr, None).await?);
                    }
                    match conn.as_mut() {
                        Some(c) => c
                            .request("PATCH", &path, &token, body.as_bytes())
                            .await?
                            .json(&format!("PATCH {path}")),
                        None => bail!("no connection"),
                    }
                }
                .await;
                latencies.push(t0.elapsed().as_micros() as u64);
                if let Err(e) = result {
                    failed += 1;
                    first_error.get_or_insert(format!("{e:#}"));
                    conn = None;
                }
            }
            (latencies, failed, first_error)
        });
    }
    let mut all = Vec::new();
    let mut figures = WriteFigures {
        what: "PATCH /v1/tenants/T (a tenant's quota)".into(),
        writers: WRITERS,
        ..Default::default()
    };
    while let Some(Ok((latencies, failed, first_error))) = tasks.join_next().await {
        all.extend(latencies);
        figures.failed += failed;
        if figures.first_error.is_none() {
            figures.first_error = first_error;
        }
    }
    let seconds = began.elapsed().as_secs_f64();
    figures.writes = all.len() as u64 - figures.failed;
    figures.per_sec = figures.writes as f64 / seconds.max(1e-9);
    all.sort_unstable();
    figures.p50_ms = percentile_ms(&all, 0.5);
    figures.p99_ms = percentile_ms(&all, 0.99);
    figures
}

/// Service tokens for servers `from..to`, issued by `WRITERS` concurrent clients.
pub async fn issue_tokens(api: &Api, from: usize, to: usize) -> anyhow::Result<Vec<String>> {
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..WRITERS {
        let (addr, token) = (api.addr, api.operator.clone());
        tasks.spawn(async move {
            let mut c = ApiConn::connect(addr, None).await?;
            let mut out = Vec::new();
            for i in (from + w..to).step_by(WRITERS) {
                let name = SimServer::new(i, String::new()).name;
                let body = json!({"role": "service", "server": name}).to_string();
                let v = c
                    .request("POST", "/v1/tokens", &token, body.as_bytes())
                    .await?
                    .json(&format!("issuing a service token for {name}"))?;
                let t = v["token"].as_str().context("no token in the answer")?;
                out.push((i, t.to_string()));
            }
            anyhow::Ok(out)
        });
    }
    let mut all = Vec::new();
    while let Some(done) = tasks.join_next().await {
        all.extend(done.context("a token task failed")??);
    }
    all.sort_unstable_by_key(|(i, _)| *i);
    Ok(all.into_iter().map(|(_, t)| t).collect())
}
