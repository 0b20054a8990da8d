//! A refused request: its HTTP status and a message naming what failed and with which input,
//! sent as JSON `{"error": …}` (what every strata API answers).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{status} {message}")]
pub struct PublishError {
    pub status: u16,
    pub message: String,
}

impl PublishError {
    pub fn new(status: u16, message: impl Into<String>) -> PublishError {
        PublishError {
            status,
            message: message.into(),
        }
    }
}

impl IntoResponse for PublishError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, axum::Json(serde_json::json!({ "error": self.message }))).into_response()
    }
}
