//! The catalog API, Backstage-compatible (`/api/catalog/...`), plus Portico's managed entities,
//! overlays and MCP registry view. Each handler parses input, calls one catalog method, and maps
//! the result.

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::HeaderValue;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use portico_catalog::service::filter::{EntityFilter, Fields};
use portico_catalog::service::query::{EntitiesRequest, QueryRequest};
use portico_catalog::service::{LocationOrigin, Overlay};
use portico_catalog::{ValidationError, validate_entity};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::app::AppState;
use crate::auth::Principal;
use crate::error::ApiError;

/// The catalog routes, to nest under `/api/catalog`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/entities", get(entities))
        .route("/entities/by-query", get(by_query))
        .route("/entity-facets", get(facets))
        .route("/entities/by-name/{kind}/{namespace}/{name}", get(by_name))
        .route("/entities/by-uid/{uid}", get(by_uid).delete(delete_by_uid))
        .route("/entities/by-refs", post(by_refs))
        .route("/validate-entity", post(validate))
        .route("/refresh", post(refresh))
        .route("/locations", get(locations).post(add_location))
        .route("/locations/{id}", get(location).delete(remove_location))
        .route("/managed", post(create_managed))
        .route(
            "/managed/{kind}/{namespace}/{name}",
            axum::routing::put(update_managed).delete(delete_managed),
        )
        .route(
            "/overlays/{kind}/{namespace}/{name}",
            get(get_overlay).put(put_overlay).delete(delete_overlay),
        )
        .route("/mcp-servers", get(mcp_servers))
}

/// The decoded `name=value` pairs of a query string.
fn query_pairs(raw: Option<&str>) -> Vec<(String, String)> {
    url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

fn pairs_ref(pairs: &[(String, String)]) -> impl Iterator<Item = (&str, &str)> {
    pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))
}

/// `GET /entities`: Backstage's list, a JSON array; a `Link: <…>; rel="next"` header when limited.
async fn entities(
    State(state): State<AppState>,
    _: Principal,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let pairs = query_pairs(raw.as_deref());
    let request = EntitiesRequest::from_query(pairs_ref(&pairs))?;
    let page = state.catalog.entities_page(&request).await?;
    let mut response = Json(Value::Array(page.items)).into_response();
    if let Some(after) = page.next_after {
        let link = format!(
            "</api/catalog/entities?after={}>; rel=\"next\"",
            url::form_urlencoded::byte_serialize(after.as_bytes()).collect::<String>()
        );
        if let Ok(value) = HeaderValue::from_str(&link) {
            response
                .headers_mut()
                .insert(axum::http::header::LINK, value);
        }
    }
    Ok(response)
}

/// `GET /entities/by-query`: `{items, totalItems, pageInfo}` with stable cursors.
async fn by_query(
    State(state): State<AppState>,
    _: Principal,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let pairs = query_pairs(raw.as_deref());
    let request = QueryRequest::from_query(pairs_ref(&pairs))?;
    let page = state.catalog.query_entities(&request).await?;
    Ok(Json(json!(page)))
}

/// `GET /entity-facets?facet=…&filter=…`: `{facets: {<facet>: [{value, count}]}}`.
async fn facets(
    State(state): State<AppState>,
    _: Principal,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let pairs = query_pairs(raw.as_deref());
    let facets: Vec<String> = pairs
        .iter()
        .filter(|(k, _)| k == "facet")
        .map(|(_, v)| v.clone())
        .collect();
    if facets.is_empty() {
        return Err(ApiError::input(
            "at least one facet parameter is required, e.g. ?facet=kind",
        ));
    }
    let filters: Vec<&str> = pairs
        .iter()
        .filter(|(k, _)| k == "filter")
        .map(|(_, v)| v.as_str())
        .collect();
    let filter = EntityFilter::parse(&filters)?;
    Ok(Json(json!(state.catalog.facets(&facets, &filter).await?)))
}

fn entity_ref(kind: &str, namespace: &str, name: &str) -> String {
    format!("{kind}:{namespace}/{name}").to_lowercase()
}

async fn by_name(
    State(state): State<AppState>,
    _: Principal,
    Path((kind, namespace, name)): Path<(String, String, String)>,
) -> Result<Json<Value>, ApiError> {
    let r = entity_ref(&kind, &namespace, &name);
    let entity = state.catalog.entity_by_ref(&r).await?;
    entity.map(Json).ok_or_else(|| {
        ApiError::not_found(format!(
            "No entity named '{name}' found, with kind '{kind}' in namespace '{namespace}'"
        ))
    })
}

async fn by_uid(
    State(state): State<AppState>,
    _: Principal,
    Path(uid): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let entity = state.catalog.entity_by_uid(&uid).await?;
    entity
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("No entity with uid {uid}")))
}

async fn delete_by_uid(
    State(state): State<AppState>,
    _: Principal,
    Path(uid): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.catalog.delete_by_uid(&uid).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ByRefs {
    entity_refs: Vec<String>,
    #[serde(default)]
    fields: Option<Vec<String>>,
}

async fn by_refs(
    State(state): State<AppState>,
    _: Principal,
    body: Result<Json<ByRefs>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Json(body) = body?;
    let items = state.catalog.entities_by_refs(&body.entity_refs).await?;
    let fields = Fields::parse(&body.fields.unwrap_or_default())?;
    let items: Vec<Value> = items
        .into_iter()
        .map(|e| e.map_or(Value::Null, |e| fields.apply(e)))
        .collect();
    Ok(Json(json!({ "items": items })))
}

#[derive(Deserialize)]
struct ValidateBody {
    #[serde(default)]
    #[allow(dead_code)]
    location: Option<String>,
    entity: Value,
}

async fn validate(
    State(state): State<AppState>,
    _: Principal,
    body: Result<Json<ValidateBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(body) = body?;
    let report = validate_entity(&body.entity, &state.catalog.options().validate);
    if report.errors.is_empty() {
        return Ok(StatusCode::OK.into_response());
    }
    let errors: Vec<&ValidationError> = report.errors.iter().collect();
    Ok((StatusCode::BAD_REQUEST, Json(json!({ "errors": errors }))).into_response())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RefreshBody {
    entity_ref: String,
}

async fn refresh(
    State(state): State<AppState>,
    _: Principal,
    body: Result<Json<RefreshBody>, axum::extract::rejection::JsonRejection>,
) -> Result<StatusCode, ApiError> {
    let Json(body) = body?;
    state.catalog.refresh_entity(&body.entity_ref).await?;
    Ok(StatusCode::OK)
}

fn location_json(location: &portico_catalog::service::Location) -> Value {
    json!({"id": location.id, "type": location.kind, "target": location.target})
}

async fn locations(State(state): State<AppState>, _: Principal) -> Result<Json<Value>, ApiError> {
    let locations = state.catalog.locations().await?;
    Ok(Json(Value::Array(
        locations
            .iter()
            .map(|l| json!({ "data": location_json(l) }))
            .collect(),
    )))
}

async fn location(
    State(state): State<AppState>,
    _: Principal,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let location = state
        .catalog
        .location(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("Found no location with ID {id}")))?;
    let mut body = location_json(&location);
    body["problems"] = json!(location.problems);
    Ok(Json(body))
}

#[derive(Deserialize)]
struct AddLocation {
    #[serde(rename = "type")]
    kind: String,
    target: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AddLocationQuery {
    #[serde(default)]
    dry_run: bool,
}

async fn add_location(
    State(state): State<AppState>,
    _: Principal,
    query: Result<Query<AddLocationQuery>, axum::extract::rejection::QueryRejection>,
    body: Result<Json<AddLocation>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query?;
    let Json(body) = body?;
    if query.dry_run {
        return Err(ApiError::input(
            "dryRun is not supported by Portico; register the location, then remove it if unwanted",
        ));
    }
    let (location, created) = state
        .catalog
        .add_location(&body.kind, &body.target, LocationOrigin::Api)
        .await?;
    if !created {
        return Err(portico_catalog::service::CatalogError::Conflict(format!(
            "Location {}:{} already exists",
            body.kind, body.target
        ))
        .into());
    }
    let report = state.catalog.refresh_location(&location.id).await?;
    let entities = state.catalog.entities_by_refs(&report.entity_refs).await?;
    let entities: Vec<Value> = entities.into_iter().flatten().collect();
    Ok((StatusCode::CREATED, Json(json!({ "location": location_json(&location), "entities": entities, "problems": report.problems }))).into_response())
}

async fn remove_location(
    State(state): State<AppState>,
    _: Principal,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.catalog.remove_location(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn create_managed(
    State(state): State<AppState>,
    _: Principal,
    body: Result<Json<Value>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(entity) = body?;
    let stored = state.catalog.create_managed(entity).await?;
    Ok((StatusCode::CREATED, Json(stored)).into_response())
}

async fn update_managed(
    State(state): State<AppState>,
    _: Principal,
    Path((kind, namespace, name)): Path<(String, String, String)>,
    body: Result<Json<Value>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Json(entity) = body?;
    Ok(Json(
        state
            .catalog
            .update_managed(&entity_ref(&kind, &namespace, &name), entity)
            .await?,
    ))
}

async fn delete_managed(
    State(state): State<AppState>,
    _: Principal,
    Path((kind, namespace, name)): Path<(String, String, String)>,
) -> Result<StatusCode, ApiError> {
    state
        .catalog
        .delete_managed(&entity_ref(&kind, &namespace, &name))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn get_overlay(
    State(state): State<AppState>,
    _: Principal,
    Path((kind, namespace, name)): Path<(String, String, String)>,
) -> Result<Json<Overlay>, ApiError> {
    let r = entity_ref(&kind, &namespace, &name);
    state
        .catalog
        .overlay(&r)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("Entity {r} has no overlay")))
}

async fn put_overlay(
    State(state): State<AppState>,
    principal: Principal,
    Path((kind, namespace, name)): Path<(String, String, String)>,
    body: Result<Json<Overlay>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Json(overlay) = body?;
    let r = entity_ref(&kind, &namespace, &name);
    Ok(Json(
        state
            .catalog
            .put_overlay(&r, overlay, &crate::auth::actor(&principal))
            .await?,
    ))
}

async fn delete_overlay(
    State(state): State<AppState>,
    principal: Principal,
    Path((kind, namespace, name)): Path<(String, String, String)>,
) -> Result<Json<Value>, ApiError> {
    let r = entity_ref(&kind, &namespace, &name);
    Ok(Json(
        state
            .catalog
            .delete_overlay(&r, &crate::auth::actor(&principal))
            .await?,
    ))
}

async fn mcp_servers(State(state): State<AppState>, _: Principal) -> Result<Json<Value>, ApiError> {
    let items = state.catalog.mcp_servers().await?;
    Ok(Json(json!({ "items": items })))
}
