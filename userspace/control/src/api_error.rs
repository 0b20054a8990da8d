//! The control plane API's errors: an HTTP status and a message that says what failed and with
//! which input, answered as `{"error": "..."}`. Each library error maps to its status here.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::contents::ContentError;
use super::registry::RegistryError;
use super::servers::ServerError;
use super::tenants::TenantError;
use super::tokens::TokenError;

#[derive(Debug)]
pub struct ApiError {
    pub status: u16,
    pub message: String,
}

impl ApiError {
    pub fn new(status: u16, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(400, message)
    }

    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(500, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if status.is_server_error() {
            tracing::error!(status = self.status, error = %self.message, "control API");
        }
        let mut resp = (status, Json(serde_json::json!({ "error": self.message }))).into_response();
        if self.status == 401 {
            resp.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer realm=\"strata\""),
            );
        }
        resp
    }
}

impl From<TokenError> for ApiError {
    fn from(e: TokenError) -> ApiError {
        let status = match e {
            TokenError::Unauthenticated => 401,
            TokenError::Forbidden { .. } => 403,
            _ => 500,
        };
        ApiError::new(status, e.to_string())
    }
}

impl From<TenantError> for ApiError {
    fn from(e: TenantError) -> ApiError {
        let status = match &e {
            TenantError::BadName(_) | TenantError::ReplicaIsHome { .. } => 400,
            TenantError::NoTenant(_) => 404,
            TenantError::NoCluster { .. } => 400,
            TenantError::Exists(_)
            | TenantError::ClusterExists(_)
            | TenantError::HomeIsFixed { .. }
            | TenantError::Conflict(_) => 409,
            TenantError::Corrupt { .. } | TenantError::Registry(_) => 500,
        };
        ApiError::new(status, e.to_string())
    }
}

impl From<ContentError> for ApiError {
    fn from(e: ContentError) -> ApiError {
        let status = match e {
            ContentError::NoContent { .. } => 404,
            _ => 500,
        };
        ApiError::new(status, e.to_string())
    }
}

impl From<ServerError> for ApiError {
    fn from(e: ServerError) -> ApiError {
        let status = match e {
            ServerError::BadName(_) | ServerError::NoCluster { .. } | ServerError::UnknownCluster { .. } => {
                400
            }
            _ => 500,
        };
        ApiError::new(status, e.to_string())
    }
}

impl From<RegistryError> for ApiError {
    fn from(e: RegistryError) -> ApiError {
        ApiError::internal(e.to_string())
    }
}

impl From<super::regions::RegionError> for ApiError {
    fn from(e: super::regions::RegionError) -> ApiError {
        use super::regions::RegionError;
        let status = match e {
            RegionError::Name(_) | RegionError::BadPrefix(_) => 400,
            RegionError::NoRegion(_) | RegionError::NoBlock(_) => 404,
            RegionError::Registry(_) | RegionError::Corrupt { .. } => 500,
        };
        ApiError::new(status, e.to_string())
    }
}

impl From<super::names::BadName> for ApiError {
    fn from(e: super::names::BadName) -> ApiError {
        ApiError::bad_request(e.to_string())
    }
}

/// Parses a JSON body, naming the field that is wrong (`field quota_bytes: invalid type ...`).
pub fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." || path.is_empty() {
            ApiError::bad_request(format!("request body: {inner}"))
        } else {
            ApiError::bad_request(format!("field {path}: {inner}"))
        }
    })
}
