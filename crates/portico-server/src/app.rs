//! The whole HTTP application as one `Router`, so tests can drive it without sockets.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::middleware::{self, Next};
use axum::response::Response;
use metrics_exporter_prometheus::PrometheusHandle;
use portico_catalog::service::Catalog;

use crate::error::error_body;
use crate::routes;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The catalog service.
    pub catalog: Catalog,
    /// Identity and credentials.
    pub auth: portico_auth::Auth,
    /// Renders `/metrics`; absent in tests that do not install a recorder.
    pub metrics: Option<Arc<PrometheusHandle>>,
}

/// The application: API routes under `/api`, operations routes at the root.
pub fn app(state: AppState) -> Router {
    Router::new()
        .nest("/api/catalog", routes::catalog::routes())
        .nest("/api/auth", routes::auth::routes())
        .merge(routes::auth::plugin_jwks_route())
        .merge(routes::ops::routes())
        .layer(middleware::from_fn(error_body))
        .layer(middleware::from_fn(record_metrics))
        .with_state(state)
}

/// Counts requests and their durations per route and status.
async fn record_metrics(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let method = request.method().to_string();
    let started = Instant::now();
    let response = next.run(request).await;
    let labels = [
        ("method", method),
        ("route", route),
        ("status", response.status().as_u16().to_string()),
    ];
    metrics::counter!("portico_http_requests_total", &labels).increment(1);
    metrics::histogram!("portico_http_request_duration_seconds", &labels)
        .record(started.elapsed().as_secs_f64());
    response
}
