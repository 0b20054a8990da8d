//! What every handler of the `/v1/` API shares: the state (the plane and the API's metrics),
//! the result type, bearer-token roles and the off-thread runner for blocking registry work.

use std::sync::Arc;

use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::Value;

use super::api_error::ApiError;
use super::control_metrics::ControlMetrics;
use super::plane::ControlPlane;
use super::tokens::Role;

#[derive(Clone)]
pub struct ApiState {
    pub plane: Arc<ControlPlane>,
    pub metrics: Arc<ControlMetrics>,
}

pub type ApiResult = Result<Response, ApiError>;

pub fn ok(v: Value) -> ApiResult {
    Ok(Json(v).into_response())
}

/// The role of the request's bearer token.
pub fn role(state: &ApiState, headers: &HeaderMap) -> Result<Role, ApiError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    Ok(state.plane.tokens().authenticate(token)?)
}

pub fn operator(state: &ApiState, headers: &HeaderMap, action: &str) -> Result<(), ApiError> {
    Ok(role(state, headers)?.may_operate(action)?)
}

pub fn manager(state: &ApiState, headers: &HeaderMap, tenant: &str) -> Result<(), ApiError> {
    Ok(role(state, headers)?.may_manage(tenant)?)
}

/// A tenant's manager, or a live ingest server archiving a recording into the tenant (its
/// service token, registered with role `live`).
pub fn manager_or_archiver(state: &ApiState, headers: &HeaderMap, tenant: &str) -> Result<(), ApiError> {
    let r = role(state, headers)?;
    if let Role::Service { server } = &r {
        let record = state.plane.store().get(&format!("servers/{server}"))?;
        let is_live = record
            .and_then(|e| serde_json::from_slice::<strata_wire::heartbeat::ServerRecord>(&e.value).ok())
            .is_some_and(|rec| rec.role == strata_wire::heartbeat::ServerRole::Live);
        if is_live {
            return Ok(());
        }
    }
    Ok(r.may_manage(tenant)?)
}

/// Runs blocking registry or file work off the async threads.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(format!("worker failed: {e}")))?
}
