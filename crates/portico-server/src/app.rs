//! The whole HTTP application as one `Router`, so tests can drive it without sockets.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::middleware::{self, Next};
use axum::response::Response;
use metrics_exporter_prometheus::PrometheusHandle;
use portico_catalog::service::Catalog;
use portico_mcp::actions::{ActionsRegistry, RegistryError, SubsetConfig};

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
    /// The Portal Actions.
    pub actions: Arc<ActionsRegistry>,
    /// Named subsets of the actions served at `/api/mcp-actions/v1/{key}`.
    pub action_servers: Arc<BTreeMap<String, SubsetConfig>>,
    /// The assistant.
    pub assistant: portico_assistant::Assistant,
}

/// Why the application state could not be built.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// An action could not be registered (a bug).
    #[error("actions: {0}")]
    Actions(#[from] RegistryError),
    /// The assistant could not be set up.
    #[error("assistant: {0}")]
    Assistant(#[from] crate::assistant::AssistantSetupError),
}

impl AppState {
    /// State over `catalog` and `auth` with every action registered and the assistant set up by
    /// `assistant`; no subsets, no metrics.
    pub fn with_assistant(
        catalog: Catalog,
        auth: portico_auth::Auth,
        assistant: portico_assistant::AssistantConfig,
    ) -> Result<Self, StateError> {
        Ok(Self {
            actions: crate::actions::registry(&catalog)?,
            assistant: crate::assistant::assistant_service(&catalog, &auth, assistant)?,
            catalog,
            auth,
            metrics: None,
            action_servers: Arc::default(),
        })
    }

    /// [`AppState::with_assistant`] with the default assistant settings (no model).
    pub fn new(catalog: Catalog, auth: portico_auth::Auth) -> Result<Self, StateError> {
        Self::with_assistant(catalog, auth, portico_assistant::AssistantConfig::default())
    }
}

/// The application: API routes under `/api` (each plugin under its own prefix, with its actions
/// and token keys), operations routes at the root, and the web UI for every other path.
pub fn app(state: AppState) -> Router {
    let plugin = || routes::auth::plugin_jwks_route().merge(routes::actions::plugin_routes());
    let mcp = routes::actions::mcp_routes(&state, &state.action_servers);
    Router::new()
        .nest("/api/catalog", routes::catalog::routes().merge(plugin()))
        .nest("/api/auth", routes::auth::routes().merge(plugin()))
        .nest("/api/mcp-actions", mcp.merge(plugin()))
        .nest(
            "/api/assistant",
            routes::assistant::routes().merge(plugin()),
        )
        .nest("/api/{plugin}", plugin())
        .merge(routes::ops::routes())
        .fallback(routes::ui::fallback)
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
