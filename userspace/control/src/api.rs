//! The control plane's HTTP API (axum): everything under `/v1/` is JSON and needs a bearer
//! token (401 without a valid one, 403 outside the token's role), plus `/metrics` and
//! `/healthz`. Malformed bodies get 400 naming the field; unknown tenants, contents and ingests
//! 404 with a message.

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use futures_util::StreamExt as _;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt as _;

use super::api_common::ApiState;
use super::api_common::{blocking, manager, manager_or_archiver, ok, operator, role, ApiResult};
use super::api_error::{parse_json, ApiError};
use super::contents::{content_key, ContentBook};
use super::registry::Op;
use super::servers::ServerBook;
use super::staging::{self, IngestRequest};
use super::tenants::{Cluster, Tenant, TenantBook, TenantChange};
use super::tokens::Role;
use super::work_queue::{encode, pending};
use strata_wire::heartbeat::{Heartbeat, HeartbeatReply, ServerRole};

/// The router of the control listener.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics))
        .route("/v1/whoami", get(whoami))
        .route("/v1/status", get(status))
        .route("/v1/hot", get(hot))
        .route("/v1/clusters", get(clusters_list).post(clusters_add))
        .route("/v1/tokens", post(tokens_issue))
        .route("/v1/tenants", get(tenants_list).post(tenants_create))
        .route("/v1/tenants/{tenant}", get(tenant_show).patch(tenant_update))
        .route("/v1/tenants/{tenant}/contents", get(contents_list))
        .route("/v1/tenants/{tenant}/contents/{content}", get(content_show))
        .route(
            "/v1/tenants/{tenant}/contents/{content}/{action}",
            post(content_action),
        )
        .route("/v1/tenants/{tenant}/ingests", post(ingest_open))
        .route("/v1/ingests/{id}/files/{name}", put(ingest_upload))
        .route("/v1/ingests/{id}/commit", post(ingest_commit))
        .route("/v1/heartbeat", post(heartbeat))
        .route("/v1/lookup", get(lookup))
        .route("/v1/live", get(live_list))
        .route("/v1/repairs", post(repair_report))
        .merge(super::map_api::routes())
        .merge(super::dashboard::routes())
        .merge(super::signing_api::routes())
        .merge(super::delivery_api::routes())
        .merge(super::jobs::api::routes())
        .fallback(|| async { ApiError::new(404, "no such endpoint; see /v1/status") })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            count_responses,
        ))
        .with_state(state)
}

async fn count_responses(
    State(state): State<ApiState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let resp = next.run(req).await;
    state.metrics.response(resp.status().as_u16());
    resp
}

async fn metrics(State(state): State<ApiState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(&state.plane),
    )
}

async fn whoami(State(state): State<ApiState>, headers: HeaderMap) -> ApiResult {
    let r = role(&state, &headers)?;
    ok(serde_json::to_value(r).unwrap_or_default())
}

async fn status(State(state): State<ApiState>, headers: HeaderMap) -> ApiResult {
    operator(&state, &headers, "read the control plane's status")?;
    let plane = state.plane.clone();
    let v = blocking(move || super::status_report::build(&plane)).await?;
    ok(v)
}

async fn hot(State(state): State<ApiState>, headers: HeaderMap) -> ApiResult {
    operator(&state, &headers, "read syncd's ranking")?;
    let edges: Vec<Value> = state
        .plane
        .syncd
        .views()
        .into_iter()
        .map(|(name, v)| json!({"edge": name, "capacity_bytes": v.capacity_bytes, "used_bytes": v.used_bytes, "pushes": v.pushes, "wanted": v.wanted, "ranking": v.ranking}))
        .collect();
    ok(json!({ "edges": edges }))
}

async fn clusters_list(State(state): State<ApiState>, headers: HeaderMap) -> ApiResult {
    operator(&state, &headers, "list clusters")?;
    ok(serde_json::to_value(state.plane.tenants().clusters()?).unwrap_or_default())
}

async fn clusters_add(State(state): State<ApiState>, headers: HeaderMap, body: Bytes) -> ApiResult {
    operator(&state, &headers, "register clusters")?;
    let c: Cluster = parse_json(&body)?;
    state.plane.tenants().add_cluster(&c)?;
    tracing::info!(cluster = %c.name, tier = ?c.tier, "cluster registered");
    Ok((StatusCode::CREATED, Json(c)).into_response())
}

async fn tokens_issue(State(state): State<ApiState>, headers: HeaderMap, body: Bytes) -> ApiResult {
    operator(&state, &headers, "issue tokens")?;
    let r: Role = parse_json(&body)?;
    if let Role::Tenant { tenant } = &r {
        state.plane.tenants().get(tenant)?;
    }
    let token = state.plane.tokens().issue(&r)?;
    Ok((StatusCode::CREATED, Json(json!({ "token": token, "role": r }))).into_response())
}

async fn tenants_list(State(state): State<ApiState>, headers: HeaderMap) -> ApiResult {
    operator(&state, &headers, "list tenants")?;
    ok(serde_json::to_value(state.plane.tenants().list()?).unwrap_or_default())
}

async fn tenants_create(State(state): State<ApiState>, headers: HeaderMap, body: Bytes) -> ApiResult {
    operator(&state, &headers, "create tenants")?;
    let t: Tenant = parse_json(&body)?;
    state.plane.tenants().create(&t)?;
    tracing::info!(tenant = %t.name, home = %t.home_cluster, "tenant created");
    Ok((StatusCode::CREATED, Json(t)).into_response())
}

async fn tenant_show(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(tenant): Path<String>,
) -> ApiResult {
    manager(&state, &headers, &tenant)?;
    let store = state.plane.store();
    let t = TenantBook { store }.get(&tenant)?;
    let used = ContentBook { store }.usage(&tenant)?;
    ok(json!({ "tenant": t, "used_bytes": used }))
}

async fn tenant_update(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(tenant): Path<String>,
    body: Bytes,
) -> ApiResult {
    operator(&state, &headers, "change tenants' rules")?;
    let change: TenantChange = parse_json(&body)?;
    let t = state.plane.tenants().update(&tenant, &change)?;
    ok(serde_json::to_value(t).unwrap_or_default())
}

async fn contents_list(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(tenant): Path<String>,
) -> ApiResult {
    manager(&state, &headers, &tenant)?;
    let store = state.plane.store();
    TenantBook { store }.get(&tenant)?;
    let list: Vec<Value> = ContentBook { store }
        .list(Some(&tenant))?
        .into_iter()
        .map(|c| json!({"content": c.content, "state": c.state, "assets": c.assets.len(), "bytes": c.bytes(), "hot": c.hot, "placed": c.placed}))
        .collect();
    ok(json!(list))
}

async fn content_show(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path((tenant, content)): Path<(String, String)>,
) -> ApiResult {
    manager_or_archiver(&state, &headers, &tenant)?;
    let plane = state.plane.clone();
    let v = blocking(move || {
        let store = plane.store();
        TenantBook { store }.get(&tenant)?;
        let record = ContentBook { store }.get(&tenant, &content)?;
        let servers = ServerBook::all(store)?;
        let placed: Vec<Value> = servers
            .iter()
            .filter(|s| record.placed.contains(&s.record.name))
            .map(|s| json!({"server": s.record.name, "cluster": s.record.cluster, "addr": s.record.addr, "up": s.up}))
            .collect();
        let work: Vec<Value> = pending(store)?
            .into_iter()
            .filter(|(w, _)| w.tenant == tenant && w.content == content)
            .map(|(w, _)| serde_json::to_value(w).unwrap_or_default())
            .collect();
        let edges: Vec<Value> = record
            .assets
            .iter()
            .map(|a| {
                let path = format!("{tenant}/{content}/{}", a.decl.name);
                json!({"asset": a.decl.name, "edges": plane.syncd.holders(&path)})
            })
            .collect();
        Ok(json!({
            "record": record,
            "where": {"servers": placed, "archive": record.placed.contains("archive"), "edges": edges},
            "work": work,
        }))
    })
    .await?;
    ok(v)
}

async fn content_action(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path((tenant, content, action)): Path<(String, String, String)>,
) -> ApiResult {
    manager(&state, &headers, &tenant)?;
    let plane = state.plane.clone();
    let v = blocking(move || {
        let store = plane.store();
        TenantBook { store }.get(&tenant)?;
        let entry_key = content_key(&tenant, &content);
        match action.as_str() {
            "hot" | "evict" => {
                for _ in 0..8 {
                    let entry = store
                        .get(&entry_key)?
                        .ok_or_else(|| ApiError::new(404, format!("no content {content} of tenant {tenant}")))?;
                    let mut record: super::contents::ContentRecord = serde_json::from_slice(&entry.value)
                        .map_err(|e| ApiError::internal(format!("record {entry_key}: {e}")))?;
                    let paths: Vec<String> = record.assets.iter().map(|a| format!("{tenant}/{content}/{}", a.decl.name)).collect();
                    if action == "hot" {
                        let t = TenantBook { store }.get(&tenant)?;
                        record.hot = true;
                        record.hot_edges = staging::hot_edges(store, t.hot_edges.max(1), &|e| plane.syncd.free_bytes(e))?;
                    } else {
                        record.hot = false;
                        record.hot_edges.clear();
                    }
                    let put = Op::Put { key: entry_key.clone(), value: encode(&record), lease: None };
                    if store.commit(&[super::registry::Guard::At(entry_key.clone(), entry.revision)], &[put])?.is_some() {
                        if action == "evict" {
                            plane.syncd.evict(&paths);
                        }
                        // Hot and placed: out to the hot edges as a job now (still placing:
                        // the ingestor creates it when the placement completes).
                        let job = match (action.as_str(), &record.state, record.hot_edges.is_empty()) {
                            ("hot", super::contents::ContentState::Ready, false) => {
                                let job = super::jobs::store::hot_job(store, &record, format!("job-{}", super::work_queue::new_id()))?;
                                if !store.create(&job.key(), encode(&job))? {
                                    return Err(ApiError::new(409, format!("job {} exists", job.id)));
                                }
                                Some(job.id)
                            }
                            _ => None,
                        };
                        tracing::info!(tenant = %tenant, content = %content, action = %action, edges = ?record.hot_edges, job = ?job, "content updated");
                        return Ok(json!({"content": content, "hot": record.hot, "hot_edges": record.hot_edges, "job": job, "evicting": if action == "evict" { paths } else { vec![] }}));
                    }
                }
                Err(ApiError::new(409, format!("content {tenant}/{content} kept changing; try again")))
            }
            "repair" => {
                let (checked, restoring) = super::repair::check_content(&plane, &tenant, &content)?;
                Ok(json!({"checked": checked, "restoring": restoring}))
            }
            other => Err(ApiError::new(404, format!("no content action {other:?} (hot, evict, repair)"))),
        }
    })
    .await?;
    ok(v)
}

async fn ingest_open(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(tenant): Path<String>,
    body: Bytes,
) -> ApiResult {
    manager_or_archiver(&state, &headers, &tenant)?;
    let req: IngestRequest = parse_json(&body)?;
    let plane = state.plane.clone();
    let session = blocking(move || staging::open(plane.store(), &plane.staging_root, &tenant, req)).await?;
    tracing::info!(ingest = %session.id, tenant = %session.tenant, content = %session.request.content, files = session.request.assets.len(), "ingest opened");
    Ok((StatusCode::CREATED, Json(json!({"id": session.id}))).into_response())
}

async fn ingest_upload(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path((id, name)): Path<(String, String)>,
    body: Body,
) -> ApiResult {
    let (session, _) = staging::session(state.plane.store(), &id)?;
    manager_or_archiver(&state, &headers, &session.tenant)?;
    let (part, dest, declared) = staging::upload_paths(&state.plane.staging_root, &session, &name)?;
    let werr = |e: std::io::Error| ApiError::internal(format!("writing {}: {e}", part.display()));
    let mut file = tokio::fs::File::create(&part).await.map_err(werr)?;
    let mut stream = body.into_data_stream();
    let mut written = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::bad_request(format!("upload of {name} broke off after {written} bytes: {e}"))
        })?;
        written += chunk.len() as u64;
        if written > declared {
            let _ = tokio::fs::remove_file(&part).await;
            return Err(ApiError::bad_request(format!(
                "file {name}: more than the {declared} bytes declared"
            )));
        }
        file.write_all(&chunk).await.map_err(werr)?;
    }
    if written != declared {
        let _ = tokio::fs::remove_file(&part).await;
        return Err(ApiError::bad_request(format!(
            "file {name}: {written} bytes arrived, {declared} were declared"
        )));
    }
    file.sync_all().await.map_err(werr)?;
    tokio::fs::rename(&part, &dest).await.map_err(werr)?;
    Ok((StatusCode::CREATED, Json(json!({"file": name, "bytes": written}))).into_response())
}

async fn ingest_commit(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult {
    let (session, _) = staging::session(state.plane.store(), &id)?;
    manager_or_archiver(&state, &headers, &session.tenant)?;
    let plane = state.plane.clone();
    let (record, item) = blocking(move || {
        let syncd_free = |e: &str| plane.syncd.free_bytes(e);
        staging::commit(plane.store(), &plane.staging_root, &id, &syncd_free)
    })
    .await?;
    state.plane.ingestor.wake();
    tracing::info!(work = %item.id, tenant = %record.tenant, content = %record.content, bytes = record.bytes(), targets = item.targets.len(), "ingest committed; placement queued");
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"work": item.id, "record": record})),
    )
        .into_response())
}

async fn heartbeat(State(state): State<ApiState>, headers: HeaderMap, body: Bytes) -> ApiResult {
    let r = role(&state, &headers)?;
    let hb: Heartbeat = parse_json(&body)?;
    match &r {
        Role::Service { server } if *server == hb.server.name => {}
        Role::Service { server } => {
            return Err(ApiError::new(
                403,
                format!("this token belongs to server {server}, not {}", hb.server.name),
            ))
        }
        _ => return Err(ApiError::new(403, "only service tokens send heartbeats")),
    }
    let plane = state.plane.clone();
    let reply = blocking(move || {
        plane.servers.heartbeat(plane.store(), &hb.server)?;
        let lookup_etag = plane.lookup_table().map_err(|e| ApiError::from_anyhow(&e))?.etag;
        let mut reply = HeartbeatReply {
            lookup_etag,
            map_version: plane.map.current().version,
            ..Default::default()
        };
        match hb.server.role {
            ServerRole::Storage => reply.placement_key = Some(plane.placement_key.clone()),
            ServerRole::Live => plane
                .live
                .observe(&hb.server, hb.live.unwrap_or_default().streams),
            ServerRole::Edge => {
                let report = hb.edge.unwrap_or_default();
                if let Some(region) = &hb.server.region {
                    plane
                        .regions()
                        .ensure(region)
                        .map_err(|e| ApiError::bad_request(format!("field server.region: {e}")))?;
                }
                plane
                    .map
                    .observe_edge(&hb.server.name, hb.server.region.as_deref(), &report);
                let (desired, evict) = plane
                    .syncd
                    .on_report(&hb.server.name, &report, &|p| plane.asset_size(p));
                reply.desired = desired;
                reply.evict = evict;
                let lease = plane.servers.lease_of(&hb.server.name);
                match super::state_table::on_edge_report(plane.store(), lease, &hb.server, &report) {
                    Ok(table) => reply.region_table = table,
                    Err(e) => tracing::warn!(edge = %hb.server.name, error = %e, "publishing the edge's state row failed"),
                }
            }
        }
        Ok(reply)
    })
    .await?;
    ok(serde_json::to_value(reply).unwrap_or_default())
}

async fn lookup(State(state): State<ApiState>, headers: HeaderMap) -> ApiResult {
    match role(&state, &headers)? {
        Role::Service { .. } | Role::Operator => {}
        Role::Tenant { .. } => return Err(ApiError::new(403, "this token may not read the name lookup")),
    }
    let plane = state.plane.clone();
    let table = blocking(move || plane.lookup_table().map_err(|e| ApiError::from_anyhow(&e))).await?;
    ok(serde_json::to_value(table).unwrap_or_default())
}

async fn live_list(State(state): State<ApiState>, headers: HeaderMap) -> ApiResult {
    operator(&state, &headers, "list live streams")?;
    let plane = state.plane.clone();
    let streams = blocking(move || {
        let servers = ServerBook::all(plane.store())?;
        Ok(plane.live_streams(&servers))
    })
    .await?;
    ok(json!({ "streams": streams }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FailedRead {
    path: String,
    server: std::net::SocketAddr,
}

async fn repair_report(State(state): State<ApiState>, headers: HeaderMap, body: Bytes) -> ApiResult {
    let Role::Service { .. } = role(&state, &headers)? else {
        return Err(ApiError::new(403, "only edges report failed reads"));
    };
    let report: FailedRead = parse_json(&body)?;
    let plane = state.plane.clone();
    let queued = blocking(move || super::repair::on_failed_read(&plane, &report.path, report.server)).await?;
    ok(json!({ "restore_queued": queued }))
}
