//! Portal Actions over HTTP: the MCP server at `/api/mcp-actions/v1` (and each configured subset
//! at `/api/mcp-actions/v1/{key}`), stateless streamable HTTP behind bearer authentication; and
//! each plugin's actions list and invoke endpoints under `/.backstage/actions`.

use std::collections::BTreeMap;

use axum::Json;
use axum::Router;
use axum::extract::{OriginalUri, Path, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, post_service};
use portico_mcp::actions::{
    ActionError, ActionSpec, ActionsServer, Caller, SubsetConfig, mcp_service,
};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::app::AppState;
use crate::auth::{Principal, bearer, plugin_of};
use crate::error::ApiError;

/// The plugin id of the built-in actions server.
pub const PLUGIN_ID: &str = "mcp-actions";

fn caller(principal: Principal) -> Caller {
    Caller {
        subject: principal.subject,
        ownership_refs: principal.ownership_refs,
    }
}

/// `Host` values the MCP endpoint accepts: loopback names and Portico's own host.
fn allowed_hosts(base_url: &str) -> Vec<String> {
    let mut hosts: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
    if let Ok(url) = url::Url::parse(base_url)
        && let Some(host) = url.host_str()
    {
        hosts.push(host.trim_matches(['[', ']']).to_string());
    }
    hosts.dedup();
    hosts
}

/// Routes under `/api/mcp-actions`: the MCP endpoints.
pub fn mcp_routes(state: &AppState, subsets: &BTreeMap<String, SubsetConfig>) -> Router<AppState> {
    let hosts = allowed_hosts(state.auth.base_url());
    let mut router = Router::new();
    let servers = std::iter::once(("/v1".to_string(), None)).chain(
        subsets
            .iter()
            .map(|(key, subset)| (format!("/v1/{key}"), Some(subset.clone()))),
    );
    for (path, subset) in servers {
        let service = mcp_service(
            ActionsServer::new(state.actions.clone(), subset),
            hosts.clone(),
        );
        router = router.route(
            &path,
            post_service(service)
                .get(method_not_allowed)
                .delete(method_not_allowed),
        );
    }
    router.route_layer(middleware::from_fn_with_state(
        state.clone(),
        require_caller,
    ))
}

/// Streamable HTTP here is stateless: no session streams to open or close.
async fn method_not_allowed() -> Response {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        Json(json!({"jsonrpc": "2.0", "error": {"code": -32000, "message": "Method not allowed."}, "id": null})),
    )
        .into_response()
}

/// Lets a request through to the MCP server only with a token meant for `mcp-actions`, and
/// hands the caller on in the request's extensions.
async fn require_caller(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let principal = match bearer(request.headers()) {
        Some(token) => state.auth.authenticate(token, PLUGIN_ID).await,
        None => None,
    };
    match principal {
        Some(p) => {
            request.extensions_mut().insert(caller(p));
            next.run(request).await
        }
        None => ApiError::unauthenticated().into_response(),
    }
}

/// Routes every plugin serves under its own prefix: its actions and its token keys.
pub fn plugin_routes() -> Router<AppState> {
    Router::new()
        .route("/.backstage/actions/v1/actions", get(list))
        .route("/.backstage/actions/v2/actions/{id}/invoke", post(invoke))
}

/// The actions a plugin serves: its own, or every one for `mcp-actions`.
fn serves(plugin: &str, spec: &ActionSpec) -> bool {
    plugin == PLUGIN_ID || spec.plugin_id == plugin
}

async fn list(
    State(state): State<AppState>,
    OriginalUri(uri): OriginalUri,
    principal: Principal,
) -> Json<Value> {
    let plugin = plugin_of(uri.path()).to_string();
    let caller = caller(principal);
    let actions: Vec<Value> = state
        .actions
        .list(&caller)
        .into_iter()
        .filter(|spec| serves(&plugin, spec))
        .map(|spec| {
            json!({
                "id": spec.id(),
                "name": spec.name,
                "title": spec.title,
                "description": spec.description,
                "attributes": spec.attributes,
                "schema": {"input": spec.input_schema, "output": spec.output_schema},
            })
        })
        .collect();
    Json(json!({ "actions": actions }))
}

#[derive(Deserialize)]
struct InvokeBody {
    #[serde(default)]
    input: Value,
}

async fn invoke(
    State(state): State<AppState>,
    OriginalUri(uri): OriginalUri,
    Path(id): Path<String>,
    principal: Principal,
    body: Result<Json<InvokeBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Json(body) = body?;
    let plugin = plugin_of(uri.path()).to_string();
    let caller = caller(principal);
    let visible = state
        .actions
        .spec_for(&caller, &id)
        .is_some_and(|spec| serves(&plugin, spec));
    if !visible {
        return Err(ApiError::not_found(format!("Action \"{id}\" not found")));
    }
    let input = if body.input.is_null() {
        json!({})
    } else {
        body.input
    };
    let output = state
        .actions
        .invoke(&caller, &id, input)
        .await
        .map_err(api_error)?;
    Ok(Json(json!({ "output": output })))
}

fn api_error(e: ActionError) -> ApiError {
    let status = match e.name {
        "InputError" => StatusCode::BAD_REQUEST,
        "NotFoundError" => StatusCode::NOT_FOUND,
        "ConflictError" => StatusCode::CONFLICT,
        "NotAllowedError" => StatusCode::FORBIDDEN,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    ApiError::new(status, e.name, e.message)
}
