//! The API of tenants' delivery settings (operator, or the tenant's own token):
//! `GET|PUT /v1/tenants/{t}/delivery` with `{"cache_control_vod"?, "cache_control_live_playlist"?,
//! "cache_control_error"?, "cors_origins"?: [..]}`; PUT replaces the whole record (a field left
//! out returns to the edge's default). Edges get it with the next lookup table.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::get;
use axum::Router;
use strata_wire::delivery::TenantDelivery;

use super::api_common::{blocking, manager, ok, ApiResult, ApiState};
use super::api_error::{parse_json, ApiError};
use super::delivery::{DeliveryBook, DeliveryBookError};

pub fn routes() -> Router<ApiState> {
    Router::new().route("/v1/tenants/{tenant}/delivery", get(show).put(set))
}

impl From<DeliveryBookError> for ApiError {
    fn from(e: DeliveryBookError) -> ApiError {
        match e {
            DeliveryBookError::Tenant(t) => t.into(),
            DeliveryBookError::Invalid(_) => ApiError::bad_request(e.to_string()),
            DeliveryBookError::Conflict(_) => ApiError::new(409, e.to_string()),
            DeliveryBookError::Registry(r) => r.into(),
        }
    }
}

async fn show(State(state): State<ApiState>, headers: HeaderMap, Path(tenant): Path<String>) -> ApiResult {
    manager(&state, &headers, &tenant)?;
    let plane = state.plane.clone();
    let d = blocking(move || Ok(DeliveryBook { store: plane.store() }.get(&tenant)?)).await?;
    ok(serde_json::to_value(d).unwrap_or_default())
}

async fn set(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(tenant): Path<String>,
    body: Bytes,
) -> ApiResult {
    manager(&state, &headers, &tenant)?;
    let settings: TenantDelivery = parse_json(&body)?;
    let plane = state.plane.clone();
    let t = tenant.clone();
    let d = blocking(move || Ok(DeliveryBook { store: plane.store() }.set(&t, settings)?)).await?;
    tracing::info!(tenant = %tenant, settings = ?d, "tenant delivery settings set");
    ok(serde_json::to_value(d).unwrap_or_default())
}
