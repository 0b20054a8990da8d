//! The admin listener: `/metrics` (Prometheus text), `/healthz`, and on an edge with the XDP
//! guard, `/guard` to read and change its lists at run time:
//!
//! - `GET /guard` — JSON: interface, mode, limits, allow and block lists, counters;
//! - `POST /guard/{allow|block}?prefix=P` — add a prefix; `DELETE` the same — remove it;
//!
//! and with the eBPF connection telemetry, `/telemetry/prefixes`: per client /24 (/48)
//! connections, bytes, mean smoothed RTT and delivery rate, as JSON (the director's and the
//! network map's input), and on an edge with a cache, `POST /cache/hot?path=/T/C/A`: flag an
//! asset hot so that its next miss starts a fill.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use strata_common::guard_reason;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::cache::EdgeCache;
use crate::metrics::ServerMetrics;
use strata_http::content_path::ContentPath;
use strata_kernel::conn_telemetry::ConnTelemetry;
use strata_kernel::xdp_guard::{GuardList, Prefix, XdpGuard};
use strata_kernel::KernelPrograms;

#[derive(Clone)]
struct AdminState {
    metrics: Arc<ServerMetrics>,
    guard: Option<Arc<XdpGuard>>,
    telemetry: Option<Arc<ConnTelemetry>>,
    cache: Option<Arc<EdgeCache>>,
}

/// Serves the admin endpoints until shutdown.
pub async fn serve(
    listener: TcpListener,
    metrics: Arc<ServerMetrics>,
    programs: KernelPrograms,
    cache: Option<Arc<EdgeCache>>,
    extra: Option<Router>,
    mut shutdown: watch::Receiver<bool>,
) {
    let app = Router::new()
        .route("/metrics", get(render_metrics))
        .route("/healthz", get(healthz))
        .route("/guard", get(guard_show))
        .route("/guard/{list}", post(guard_add).delete(guard_remove))
        .route("/telemetry/prefixes", get(telemetry_prefixes))
        .route("/cache/hot", post(cache_hot))
        .merge(super::process_admin::routes())
        .fallback(not_found)
        .with_state(AdminState {
            metrics,
            guard: programs.guard,
            telemetry: programs.telemetry,
            cache,
        });
    let app = match extra {
        Some(routes) => app.merge(routes),
        None => app,
    };
    let stop = async move {
        let _ = shutdown.changed().await;
    };
    if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(stop).await {
        tracing::error!(error = %e, "admin listener failed");
    }
}

async fn render_metrics(State(state): State<AdminState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    )
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn not_found() -> impl IntoResponse {
    (
        StatusCode::NOT_FOUND,
        "404 admin endpoints are /metrics, /healthz, /guard, /telemetry/prefixes and /process\n",
    )
}

fn text(status: StatusCode, message: String) -> Response {
    (status, format!("{} {message}\n", status.as_u16())).into_response()
}

/// An admin request that fails: status and a one-line reason.
struct AdminError(StatusCode, String);

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        text(self.0, self.1)
    }
}

fn guard_of(state: &AdminState) -> Result<&Arc<XdpGuard>, AdminError> {
    state.guard.as_ref().ok_or_else(|| {
        AdminError(
            StatusCode::NOT_FOUND,
            "no XDP guard on this server (set guard.interface)".into(),
        )
    })
}

async fn guard_show(State(state): State<AdminState>) -> Result<Response, AdminError> {
    let guard = guard_of(&state)?;
    let lists = (
        guard.list(GuardList::Allow),
        guard.list(GuardList::Block),
        guard.limits(),
        guard.counters(),
    );
    let (Ok(allow), Ok(block), Ok(limits), Ok(counts)) = lists else {
        return Err(AdminError(
            StatusCode::INTERNAL_SERVER_ERROR,
            "reading the guard's maps failed".into(),
        ));
    };
    let (interface, mode) = guard.attached().unwrap_or(("", ""));
    let counters: serde_json::Map<String, serde_json::Value> = guard_reason::NAMES
        .iter()
        .zip(counts.iter())
        .map(|(name, n)| (name.to_string(), serde_json::Value::from(*n)))
        .collect();
    Ok(Json(serde_json::json!({
        "interface": interface,
        "mode": mode,
        "limits": {
            "syn_rate": limits.syn_rate, "syn_burst": limits.syn_burst,
            "packet_rate": limits.packet_rate, "packet_burst": limits.packet_burst,
        },
        "allow": allow.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "block": block.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "counters": counters,
    }))
    .into_response())
}

#[derive(Deserialize)]
struct PrefixQuery {
    prefix: String,
}

fn parse_list(list: &str) -> Result<GuardList, AdminError> {
    match list {
        "allow" => Ok(GuardList::Allow),
        "block" => Ok(GuardList::Block),
        other => Err(AdminError(
            StatusCode::NOT_FOUND,
            format!("no guard list {other:?}; lists are allow and block"),
        )),
    }
}

/// The guard, the list and the prefix a change names.
fn change_target(
    state: &AdminState,
    list: &str,
    prefix: &str,
) -> Result<(Arc<XdpGuard>, GuardList, Prefix), AdminError> {
    let guard = guard_of(state)?.clone();
    let list = parse_list(list)?;
    let prefix = Prefix::parse(prefix).map_err(|e| AdminError(StatusCode::BAD_REQUEST, e.to_string()))?;
    Ok((guard, list, prefix))
}

async fn guard_add(
    State(state): State<AdminState>,
    Path(list): Path<String>,
    Query(q): Query<PrefixQuery>,
) -> Response {
    let (guard, list, prefix) = match change_target(&state, &list, &q.prefix) {
        Ok(t) => t,
        Err(e) => return e.into_response(),
    };
    match guard.add(list, prefix) {
        Ok(()) => {
            tracing::info!(?list, %prefix, "guard: prefix added");
            text(
                StatusCode::OK,
                format!("added {prefix} to the {list:?} list").to_lowercase(),
            )
        }
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn guard_remove(
    State(state): State<AdminState>,
    Path(list): Path<String>,
    Query(q): Query<PrefixQuery>,
) -> Response {
    let (guard, list, prefix) = match change_target(&state, &list, &q.prefix) {
        Ok(t) => t,
        Err(e) => return e.into_response(),
    };
    match guard.remove(list, prefix) {
        Ok(true) => {
            tracing::info!(?list, %prefix, "guard: prefix removed");
            text(
                StatusCode::OK,
                format!("removed {prefix} from the {list:?} list").to_lowercase(),
            )
        }
        Ok(false) => text(
            StatusCode::NOT_FOUND,
            format!("{prefix} is not on the {list:?} list").to_lowercase(),
        ),
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn telemetry_prefixes(State(state): State<AdminState>) -> Result<Response, AdminError> {
    let telemetry = state.telemetry.as_ref().ok_or_else(|| {
        AdminError(
            StatusCode::NOT_FOUND,
            "no eBPF connection telemetry on this server (telemetry = off?)".into(),
        )
    })?;
    let reports = telemetry
        .prefix_reports()
        .map_err(|e| AdminError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(Json(reports).into_response())
}

#[derive(Deserialize)]
struct HotQuery {
    path: String,
}

async fn cache_hot(State(state): State<AdminState>, Query(q): Query<HotQuery>) -> Response {
    let Some(cache) = &state.cache else {
        return (StatusCode::NOT_FOUND, "this server has no cache\n").into_response();
    };
    match ContentPath::parse(&q.path) {
        Ok(p) => {
            cache
                .admission
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .flag_hot(&p.relative());
            (
                StatusCode::OK,
                format!("{} flagged hot: its next miss fills the cache\n", q.path),
            )
                .into_response()
        }
        Err(e) => (StatusCode::BAD_REQUEST, format!("path {:?}: {e}\n", q.path)).into_response(),
    }
}
