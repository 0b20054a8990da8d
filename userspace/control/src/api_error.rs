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

    /// 503 if a registry error in the chain says the registry is unreachable, else 500.
    pub fn from_anyhow(e: &anyhow::Error) -> ApiError {
        let status = e
            .chain()
            .find_map(registry_in)
            .map_or(500, |r| registry_status(r, 500));
        ApiError::new(status, format!("{e:#}"))
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

/// The registry error in one link of an error chain: itself, or inside a book's error
/// (those wrap it transparently, so the chain never shows it on its own).
fn registry_in<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a RegistryError> {
    if let Some(r) = e.downcast_ref::<RegistryError>() {
        return Some(r);
    }
    match (
        e.downcast_ref::<TenantError>(),
        e.downcast_ref::<ContentError>(),
        e.downcast_ref::<ServerError>(),
        e.downcast_ref::<TokenError>(),
        e.downcast_ref::<super::regions::RegionError>(),
    ) {
        (Some(TenantError::Registry(r)), ..)
        | (_, Some(ContentError::Registry(r)), ..)
        | (_, _, Some(ServerError::Registry(r)), ..)
        | (_, _, _, Some(TokenError::Registry(r)), _)
        | (.., Some(super::regions::RegionError::Registry(r))) => Some(r),
        _ => None,
    }
}

/// 503 when the registry cannot be reached (try again), else `otherwise`.
fn registry_status(e: &RegistryError, otherwise: u16) -> u16 {
    match e {
        RegistryError::Unavailable { .. } => 503,
        _ => otherwise,
    }
}

impl From<TokenError> for ApiError {
    fn from(e: TokenError) -> ApiError {
        let status = match &e {
            TokenError::Unauthenticated => 401,
            TokenError::Forbidden { .. } => 403,
            TokenError::Registry(r) => registry_status(r, 500),
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
            TenantError::Registry(r) => registry_status(r, 500),
            TenantError::Corrupt { .. } => 500,
        };
        ApiError::new(status, e.to_string())
    }
}

impl From<ContentError> for ApiError {
    fn from(e: ContentError) -> ApiError {
        let status = match &e {
            ContentError::NoContent { .. } => 404,
            ContentError::Registry(r) => registry_status(r, 500),
            _ => 500,
        };
        ApiError::new(status, e.to_string())
    }
}

impl From<ServerError> for ApiError {
    fn from(e: ServerError) -> ApiError {
        let status = match &e {
            ServerError::BadName(_) | ServerError::NoCluster { .. } | ServerError::UnknownCluster { .. } => {
                400
            }
            ServerError::Registry(r) => registry_status(r, 500),
            _ => 500,
        };
        ApiError::new(status, e.to_string())
    }
}

impl From<RegistryError> for ApiError {
    fn from(e: RegistryError) -> ApiError {
        ApiError::new(registry_status(&e, 500), e.to_string())
    }
}

impl From<super::regions::RegionError> for ApiError {
    fn from(e: super::regions::RegionError) -> ApiError {
        use super::regions::RegionError;
        let status = match &e {
            RegionError::Name(_) | RegionError::BadPrefix(_) => 400,
            RegionError::NoRegion(_) | RegionError::NoBlock(_) => 404,
            RegionError::Registry(r) => registry_status(r, 500),
            RegionError::Corrupt { .. } => 500,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn unavailable() -> RegistryError {
        RegistryError::Unavailable {
            registry: "etcd://10.0.0.1:2379".into(),
            what: "get tokens/x".into(),
            message: "no answer within 3s".into(),
        }
    }

    #[test]
    fn an_unreachable_registry_is_503_naming_it_through_every_wrapper() {
        let answers = [
            ApiError::from(unavailable()),
            ApiError::from(TokenError::Registry(unavailable())),
            ApiError::from(TenantError::Registry(unavailable())),
            ApiError::from(ContentError::Registry(unavailable())),
            ApiError::from(ServerError::Registry(unavailable())),
            ApiError::from_anyhow(
                &anyhow::Error::new(TenantError::Registry(unavailable())).context("lookup"),
            ),
        ];
        for a in answers {
            assert_eq!(a.status, 503, "{}", a.message);
            assert!(a.message.contains("etcd://10.0.0.1:2379"), "{}", a.message);
        }
        let other = RegistryError::Corrupt {
            key: "k".into(),
            message: "bad".into(),
        };
        assert_eq!(ApiError::from(other).status, 500);
    }
}
