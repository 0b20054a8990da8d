//! The admin listener: `/metrics` (Prometheus text) and `/healthz`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::metrics::ServerMetrics;

/// Serves the admin endpoints until shutdown.
pub async fn serve(listener: TcpListener, metrics: Arc<ServerMetrics>, mut shutdown: watch::Receiver<bool>) {
    let app = Router::new()
        .route("/metrics", get(render_metrics))
        .route("/healthz", get(healthz))
        .fallback(not_found)
        .with_state(metrics);
    let stop = async move {
        let _ = shutdown.changed().await;
    };
    if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(stop).await {
        tracing::error!(error = %e, "admin listener failed");
    }
}

async fn render_metrics(State(metrics): State<Arc<ServerMetrics>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        metrics.render(),
    )
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn not_found() -> impl IntoResponse {
    (
        StatusCode::NOT_FOUND,
        "404 admin endpoints are /metrics and /healthz\n",
    )
}
