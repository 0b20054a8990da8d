//! The admin listener's process endpoints: `GET /process` (this process's id and binary) and
//! `POST /process/reload` / `POST /process/upgrade`, which ask the role's supervisor (the
//! `strata storage` / `strata edge` main loop) for a handover and answer once it is done or
//! refused: 200 with the successor's id, 422 for an invalid configuration, 409 while another
//! handover runs, 500 when the successor failed to start (the old process keeps serving).

use std::sync::OnceLock;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use tokio::sync::{mpsc, oneshot};

use super::handover::{self, HandoverError, Started, Successor};

/// A handover asked for through the admin listener.
pub struct ProcessRequest {
    pub which: Successor,
    pub reply: oneshot::Sender<Result<Started, HandoverError>>,
}

static REQUESTS: OnceLock<mpsc::Sender<ProcessRequest>> = OnceLock::new();

/// Makes this process's supervisor the receiver of handover requests (once per process; a
/// process running several servers, such as `strata pop`, installs none).
pub fn install() -> Option<mpsc::Receiver<ProcessRequest>> {
    let (tx, rx) = mpsc::channel(4);
    REQUESTS.set(tx).ok().map(|()| rx)
}

/// The `/process` routes.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/process", get(show))
        .route("/process/reload", post(|| ask(Successor::SameBinary)))
        .route("/process/upgrade", post(|| ask(Successor::OnDisk)))
}

async fn show() -> Response {
    Json(serde_json::json!({
        "pid": std::process::id(),
        "reload_runs": handover::describe(Successor::SameBinary),
        "upgrade_runs": handover::describe(Successor::OnDisk),
        "handover": REQUESTS.get().is_some(),
    }))
    .into_response()
}

async fn ask(which: Successor) -> Response {
    let Some(tx) = REQUESTS.get() else {
        return (
            StatusCode::NOT_IMPLEMENTED,
            "501 this process cannot hand over (only `strata edge` and `strata storage` do)\n",
        )
            .into_response();
    };
    let (reply, answer) = oneshot::channel();
    if tx.send(ProcessRequest { which, reply }).await.is_err() {
        return text(StatusCode::CONFLICT, HandoverError::Busy.to_string());
    }
    match answer.await {
        Ok(Ok(started)) => text(
            StatusCode::OK,
            format!(
                "pid {} handed its listeners to pid {} ({}); pid {} drains its connections and exits",
                std::process::id(),
                started.pid,
                started.binary.display(),
                std::process::id()
            ),
        ),
        Ok(Err(e)) => {
            let status = match e {
                HandoverError::Config(_) => StatusCode::UNPROCESSABLE_ENTITY,
                HandoverError::Busy => StatusCode::CONFLICT,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            };
            text(status, e.to_string())
        }
        Err(_) => text(StatusCode::CONFLICT, HandoverError::Busy.to_string()),
    }
}

fn text(status: StatusCode, message: String) -> Response {
    (status, format!("{} {message}\n", status.as_u16())).into_response()
}
