//! The ingest server's two listeners: the stream listener (publish and serve under
//! `/{tenant}/{stream}/{file}`, one handler that dispatches on the method after the path fence)
//! and the admin listener (`/metrics`, `/healthz`, `/v1/streams`).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use strata_http::content_path::{ContentPath, PathError};

use crate::context::LiveContext;
use crate::live_metrics::StatusLabels;
use crate::publish::publish;
use crate::publish_error::PublishError;
use crate::viewer;

/// The stream listener's router.
pub fn streams(ctx: Arc<LiveContext>) -> Router {
    Router::new().fallback(handle).with_state(ctx)
}

/// Serves the stream listener until `stop` changes. Encoders (ffmpeg) close their side right
/// after a body's last chunk without waiting for the answer, so connections are served with
/// HTTP/1 half-close on: an EOF after a complete request must not cancel its handler (hyper's
/// default would drop it mid-write and the segment would never land).
pub async fn serve_streams(
    listener: tokio::net::TcpListener,
    router: Router,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.changed() => return,
        };
        let (socket, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                continue;
            }
        };
        let service = hyper_util::service::TowerToHyperService::new(router.clone());
        tokio::spawn(async move {
            let served = hyper::server::conn::http1::Builder::new()
                .half_close(true)
                .serve_connection(hyper_util::rt::TokioIo::new(socket), service)
                .await;
            if let Err(e) = served {
                tracing::debug!(%peer, error = %e, "publish connection ended with an error");
            }
        });
    }
}

/// The admin listener's router.
pub fn admin(ctx: Arc<LiveContext>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/metrics",
            get(|State(ctx): State<Arc<LiveContext>>| async move {
                (
                    [(
                        "content-type",
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )],
                    ctx.metrics.encode(),
                )
            }),
        )
        .route(
            "/v1/streams",
            get(|State(ctx): State<Arc<LiveContext>>| async move {
                axum::Json(serde_json::json!({ "streams": ctx.streams.report().await }))
            }),
        )
        .with_state(ctx)
}

async fn handle(
    State(ctx): State<Arc<LiveContext>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let result = dispatch(&ctx, &method, &uri, &headers, body).await;
    match result {
        Ok(r) => r,
        Err(e) => {
            if method != Method::GET && method != Method::HEAD {
                ctx.metrics
                    .refused
                    .get_or_create(&StatusLabels { status: e.status })
                    .inc();
                tracing::warn!(method = %method, path = %uri.path(), status = e.status, error = %e.message, "publish refused");
            }
            e.into_response()
        }
    }
}

async fn dispatch(
    ctx: &Arc<LiveContext>,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, PublishError> {
    let path = ContentPath::parse(uri.path()).map_err(|e| match e {
        PathError::Bad(_) => PublishError::new(400, format!("{}: {e}", uri.path())),
        PathError::NotContent => PublishError::new(
            404,
            format!(
                "{}: streams publish and play under /{{tenant}}/{{stream}}/{{file}}",
                uri.path()
            ),
        ),
    })?;
    match *method {
        Method::GET | Method::HEAD => {
            viewer::serve(ctx, method == Method::HEAD, &path, uri.query(), headers).await
        }
        Method::PUT | Method::POST | Method::DELETE => {
            publish(ctx, method.as_str(), &path, headers, body).await
        }
        _ => Err(PublishError::new(
            405,
            format!("method {method} not allowed; publish with PUT, POST or DELETE, play with GET or HEAD"),
        )),
    }
}
