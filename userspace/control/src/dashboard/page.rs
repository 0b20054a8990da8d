//! The status page's routes: `GET /` (the page itself, no data in it) and `GET /v1/dashboard`
//! (the plots' points and each edge's latest readings; operator token).

use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use axum::Router;
use serde_json::json;

use crate::api_common::{ok, operator, ApiResult, ApiState};

/// The page, compiled into the binary.
const PAGE: &str = include_str!("status_page.html");

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/", get(page))
        .route("/v1/dashboard", get(dashboard))
}

async fn page() -> impl IntoResponse {
    ([(header::CACHE_CONTROL, "no-store")], Html(PAGE))
}

async fn dashboard(State(state): State<ApiState>, headers: HeaderMap) -> ApiResult {
    operator(&state, &headers, "read the status page's series")?;
    let series = state.plane.dashboard.series();
    ok(json!({
        "every_s": state.plane.dashboard.every().as_secs_f64(),
        "points": series.points(),
        "edges": series.edges(),
    }))
}
