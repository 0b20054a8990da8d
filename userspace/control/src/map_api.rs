//! The network map's part of the `/v1/` API: regions and configured blocks (operator), the
//! solved map (operator and service tokens: nameservers read it), the query counts nameservers
//! report, and the timings clients report without a token — bounded in size and rate per
//! source address, validated, never trusted beyond what they say about one server.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use strata_wire::network_map::{ClientReport, DnsQueryReport};

use super::api_common::{blocking, ok, operator, role, ApiResult, ApiState};
use super::api_error::{parse_json, ApiError};
use super::regions::{Block, Region};
use super::tokens::Role;

/// Largest client report accepted.
pub const MAX_REPORT_BYTES: usize = 16 * 1024;
/// Most servers one client report may name.
pub const MAX_REPORT_TIMINGS: usize = 64;
/// Client reports per second a source address may send (and the burst it may save up).
const REPORTS_PER_SECOND: f64 = 5.0;
const REPORT_BURST: f64 = 20.0;
/// Source addresses the rate limiter remembers; the oldest go first past this.
const RATE_TABLE_MAX: usize = 65_536;

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/v1/regions", get(regions_list).post(regions_put))
        .route(
            "/v1/blocks",
            get(blocks_list).post(blocks_add).delete(blocks_remove),
        )
        .route("/v1/map", get(map))
        .route("/v1/dns/queries", post(dns_queries))
        .route("/v1/reports", post(client_report))
}

async fn regions_list(State(state): State<ApiState>, headers: HeaderMap) -> ApiResult {
    operator(&state, &headers, "list regions")?;
    ok(serde_json::to_value(state.plane.regions().list()?).unwrap_or_default())
}

async fn regions_put(State(state): State<ApiState>, headers: HeaderMap, body: Bytes) -> ApiResult {
    operator(&state, &headers, "configure regions")?;
    let r: Region = parse_json(&body)?;
    state.plane.regions().put(&r)?;
    tracing::info!(region = %r.name, capacity_bps = ?r.capacity_bps, base_cost = r.base_cost, "region configured");
    Ok((StatusCode::CREATED, Json(r)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PrefixBody {
    prefix: String,
}

async fn blocks_list(State(state): State<ApiState>, headers: HeaderMap) -> ApiResult {
    operator(&state, &headers, "list blocks")?;
    let blocks: Vec<String> = state
        .plane
        .regions()
        .blocks()?
        .iter()
        .map(Block::to_string)
        .collect();
    ok(json!(blocks))
}

async fn blocks_add(State(state): State<ApiState>, headers: HeaderMap, body: Bytes) -> ApiResult {
    operator(&state, &headers, "configure blocks")?;
    let b: PrefixBody = parse_json(&body)?;
    let block = Block::parse(&b.prefix).map_err(|e| ApiError::bad_request(format!("field prefix: {e}")))?;
    let created = state.plane.regions().add_block(block)?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(json!({ "prefix": block.to_string(), "created": created })),
    )
        .into_response())
}

async fn blocks_remove(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Query(q): Query<PrefixBody>,
) -> ApiResult {
    operator(&state, &headers, "configure blocks")?;
    let block = Block::parse(&q.prefix).map_err(|e| ApiError::bad_request(format!("query prefix: {e}")))?;
    state.plane.regions().remove_block(block)?;
    ok(json!({ "removed": block.to_string() }))
}

async fn map(State(state): State<ApiState>, headers: HeaderMap) -> ApiResult {
    match role(&state, &headers)? {
        Role::Operator | Role::Service { .. } => {}
        Role::Tenant { .. } => return Err(ApiError::new(403, "this token may not read the network map")),
    }
    ok(serde_json::to_value(state.plane.map.current().as_ref()).unwrap_or_default())
}

async fn dns_queries(State(state): State<ApiState>, headers: HeaderMap, body: Bytes) -> ApiResult {
    match role(&state, &headers)? {
        Role::Operator | Role::Service { .. } => {}
        Role::Tenant { .. } => return Err(ApiError::new(403, "only nameservers report queries")),
    }
    let report: DnsQueryReport = parse_json(&body)?;
    let mut counted = 0u64;
    for (i, (prefix, n)) in report.blocks.iter().enumerate() {
        let block =
            Block::parse(prefix).map_err(|e| ApiError::bad_request(format!("field blocks[{i}]: {e}")))?;
        state.plane.map.observe_queries(&block.to_string(), *n);
        counted += n;
    }
    ok(json!({ "counted": counted }))
}

/// Per-source token buckets for client reports.
fn allow_report(source: IpAddr) -> bool {
    static TABLE: OnceLock<Mutex<HashMap<IpAddr, (f64, Instant)>>> = OnceLock::new();
    let mut table = TABLE
        .get_or_init(|| Mutex::new(HashMap::new()))
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let now = Instant::now();
    if table.len() >= RATE_TABLE_MAX && !table.contains_key(&source) {
        let oldest = table.iter().min_by_key(|(_, (_, t))| *t).map(|(k, _)| *k);
        if let Some(k) = oldest {
            table.remove(&k);
        }
    }
    let (tokens, last) = table.entry(source).or_insert((REPORT_BURST, now));
    *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * REPORTS_PER_SECOND).min(REPORT_BURST);
    *last = now;
    if *tokens < 1.0 {
        return false;
    }
    *tokens -= 1.0;
    true
}

async fn client_report(
    State(state): State<ApiState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    if body.len() > MAX_REPORT_BYTES {
        return Err(ApiError::new(
            413,
            format!(
                "a client report holds at most {MAX_REPORT_BYTES} bytes; this one has {}",
                body.len()
            ),
        ));
    }
    if !allow_report(peer.ip()) {
        return Err(ApiError::new(
            429,
            format!(
                "at most {REPORTS_PER_SECOND} client reports per second from {}",
                peer.ip()
            ),
        ));
    }
    let report: ClientReport = parse_json(&body)?;
    if report.timings.len() > MAX_REPORT_TIMINGS {
        return Err(ApiError::bad_request(format!(
            "field timings: at most {MAX_REPORT_TIMINGS} servers per report, got {}",
            report.timings.len()
        )));
    }
    for (i, t) in report.timings.iter().enumerate() {
        if t.bytes > 0 && t.ms == 0 {
            return Err(ApiError::bad_request(format!(
                "field timings[{i}].ms: {} bytes cannot take 0 ms",
                t.bytes
            )));
        }
        if t.ms > 3_600_000 || t.errors > 1_000_000 {
            return Err(ApiError::bad_request(format!(
                "field timings[{i}]: ms at most 3600000 and errors at most 1000000"
            )));
        }
    }
    // A server may report for a client (edges forward what players send); nobody else may.
    let client = match report.client {
        None => peer.ip(),
        Some(ip) => match role(&state, &headers)? {
            Role::Service { .. } | Role::Operator => ip,
            Role::Tenant { .. } => {
                return Err(ApiError::new(
                    403,
                    "field client: only servers report for another client",
                ))
            }
        },
    };
    let plane = state.plane.clone();
    let (used, unknown) = blocking(move || {
        let mut used = 0;
        let mut unknown = Vec::new();
        for t in &report.timings {
            if plane
                .map
                .observe_client(client, t.server, t.bytes, t.ms, t.errors)
            {
                used += 1;
            } else {
                unknown.push(t.server.to_string());
            }
        }
        Ok((used, unknown))
    })
    .await?;
    state
        .plane
        .map
        .counters
        .client_reports
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    ok(json!({ "used": used, "unknown_servers": unknown }))
}
