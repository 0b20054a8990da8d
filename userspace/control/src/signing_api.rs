//! The API of tenants' viewer access rules (operator, or the tenant's own token):
//! `GET|PUT /v1/tenants/{t}/access` (`{"access": "public"|"signed"}`),
//! `POST /v1/tenants/{t}/signing-keys` (rotate: answers the new key once, for the tenant's own
//! URL signer), and `POST /v1/tenants/{t}/signed-urls` (`{"path", "prefix"?, "ttl_secs",
//! "ip"?}` → the signed URL, signed here with the newest key).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use serde_json::json;

use super::api_common::{blocking, manager, ok, ApiResult, ApiState};
use super::api_error::{parse_json, ApiError};
use super::signing::{Access, SigningBook, SigningError};

/// Longest validity a signed URL may be given here (a week).
const MAX_TTL_SECS: u64 = 7 * 24 * 3600;

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/v1/tenants/{tenant}/access", get(access_show).put(access_set))
        .route("/v1/tenants/{tenant}/signing-keys", post(rotate))
        .route("/v1/tenants/{tenant}/signed-urls", post(sign))
}

impl From<SigningError> for ApiError {
    fn from(e: SigningError) -> ApiError {
        match e {
            SigningError::Tenant(t) => t.into(),
            SigningError::NoKey(_) => ApiError::new(409, e.to_string()),
            SigningError::Conflict(_) => ApiError::new(409, e.to_string()),
            SigningError::Registry(r) => r.into(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AccessBody {
    access: Access,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignBody {
    /// The URL path to sign, e.g. /acme/show/video.mp4 (must be the tenant's).
    path: String,
    /// Sign this prefix of the path instead (HLS: the playlist's directory).
    prefix: Option<String>,
    ttl_secs: u64,
    ip: Option<std::net::IpAddr>,
}

async fn access_show(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(tenant): Path<String>,
) -> ApiResult {
    manager(&state, &headers, &tenant)?;
    let plane = state.plane.clone();
    let s = blocking(move || Ok(SigningBook { store: plane.store() }.get(&tenant)?)).await?;
    ok(json!({"access": s.access, "valid_keys": s.keys.len()}))
}

async fn access_set(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(tenant): Path<String>,
    body: Bytes,
) -> ApiResult {
    manager(&state, &headers, &tenant)?;
    let body: AccessBody = parse_json(&body)?;
    let plane = state.plane.clone();
    let t = tenant.clone();
    let s = blocking(move || Ok(SigningBook { store: plane.store() }.set_access(&t, body.access)?)).await?;
    tracing::info!(tenant = %tenant, access = ?s.access, "tenant access rule set");
    ok(json!({"access": s.access, "valid_keys": s.keys.len()}))
}

async fn rotate(State(state): State<ApiState>, headers: HeaderMap, Path(tenant): Path<String>) -> ApiResult {
    manager(&state, &headers, &tenant)?;
    let plane = state.plane.clone();
    let t = tenant.clone();
    let s = blocking(move || Ok(SigningBook { store: plane.store() }.rotate(&t)?)).await?;
    tracing::info!(tenant = %tenant, "signing key rotated; the previous one stays valid");
    ok(json!({"key": s.keys.first(), "valid_keys": s.keys.len()}))
}

async fn sign(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(tenant): Path<String>,
    body: Bytes,
) -> ApiResult {
    manager(&state, &headers, &tenant)?;
    let b: SignBody = parse_json(&body)?;
    let own = format!("/{tenant}/");
    if !b.path.starts_with(&own) {
        return Err(ApiError::bad_request(format!(
            "path {:?} is not under {own}",
            b.path
        )));
    }
    if let Some(prefix) = &b.prefix {
        if !prefix.starts_with(&own) || !b.path.starts_with(prefix.as_str()) {
            return Err(ApiError::bad_request(format!(
                "prefix {prefix:?} must be under {own} and begin the path {:?}",
                b.path
            )));
        }
    }
    if b.ttl_secs == 0 || b.ttl_secs > MAX_TTL_SECS {
        return Err(ApiError::bad_request(format!(
            "ttl_secs {} must be between 1 and {MAX_TTL_SECS}",
            b.ttl_secs
        )));
    }
    let expires = super::staging::now_unix() + b.ttl_secs;
    let plane = state.plane.clone();
    let (path, prefix, ip) = (b.path.clone(), b.prefix.clone(), b.ip);
    let query = blocking(move || {
        Ok(SigningBook { store: plane.store() }.sign(&tenant, &path, prefix.as_deref(), expires, ip)?)
    })
    .await?;
    ok(json!({"path_and_query": format!("{}?{query}", b.path), "expires_unix": expires}))
}
