//! The assistant's API under `/api/assistant`: the servers a user can enable, conversations,
//! runs and their events over Server-Sent Events (resumable with `Last-Event-ID`), approvals,
//! cancellation and the audit trail. Everything is the caller's own: other users' ids are 404.

use std::convert::Infallible;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures::Stream;
use portico_assistant::AssistantError;
use portico_assistant::enablement::servers_json;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::app::AppState;
use crate::auth::Principal;
use crate::error::ApiError;

/// Routes under `/api/assistant`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/model", get(model))
        .route("/servers", get(servers))
        .route(
            "/servers/{*path}",
            axum::routing::put(set_enabled).delete(set_enabled),
        )
        .route(
            "/conversations",
            get(list_conversations).post(create_conversation),
        )
        .route(
            "/conversations/{id}",
            get(conversation).delete(delete_conversation),
        )
        .route("/conversations/{id}/messages", post(send_message))
        .route("/runs/{id}", get(run))
        .route("/runs/{id}/events", get(events))
        .route("/runs/{id}/approvals/{call_id}", post(approve))
        .route("/runs/{id}/cancel", post(cancel))
        .route("/audit", get(audit))
}

impl From<AssistantError> for ApiError {
    fn from(e: AssistantError) -> Self {
        match e {
            AssistantError::NotFound(m) => ApiError::not_found(m),
            AssistantError::Input(m) => ApiError::input(m),
            AssistantError::Catalog(c) => c.into(),
            other => {
                tracing::error!(error = %other, "assistant failed");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Error",
                    "The assistant failed; see the server log",
                )
            }
        }
    }
}

/// Which model answers: `{model}` with its short name, or `{model: null, hint}` saying how to
/// set one up.
async fn model(State(state): State<AppState>, _principal: Principal) -> Json<Value> {
    Json(match state.assistant.runs.model_name() {
        Some(name) => json!({"model": name}),
        None => json!({"model": null, "hint": portico_assistant::run::NO_MODEL}),
    })
}

async fn servers(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<Value>, ApiError> {
    let servers = state
        .assistant
        .enablement
        .servers(&principal.subject)
        .await?;
    Ok(Json(servers_json(&servers)))
}

/// `{entityRef}/enabled`, the ref possibly written with its slash.
fn server_ref(path: &str) -> Result<String, ApiError> {
    path.strip_suffix("/enabled")
        .filter(|r| !r.is_empty())
        .map(str::to_string)
        .ok_or_else(|| ApiError::not_found("use /api/assistant/servers/{entityRef}/enabled"))
}

/// `PUT` turns the server on, `DELETE` off.
async fn set_enabled(
    State(state): State<AppState>,
    method: axum::http::Method,
    principal: Principal,
    Path(path): Path<String>,
) -> Result<StatusCode, ApiError> {
    let server = server_ref(&path)?;
    let enabled = method == axum::http::Method::PUT;
    state
        .assistant
        .enablement
        .set(&principal.subject, &server, enabled)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_conversations(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<Value>, ApiError> {
    let items = state
        .assistant
        .conversations
        .list(&principal.subject)
        .await?;
    Ok(Json(json!({ "items": items })))
}

#[derive(Deserialize, Default)]
struct NewConversation {
    #[serde(default)]
    title: Option<String>,
}

async fn create_conversation(
    State(state): State<AppState>,
    principal: Principal,
    body: Option<Json<NewConversation>>,
) -> Result<Response, ApiError> {
    let body = body.map(|Json(b)| b).unwrap_or_default();
    let title = body.title.unwrap_or_else(|| "New conversation".into());
    let conversation = state
        .assistant
        .conversations
        .create(&principal.subject, &title)
        .await?;
    Ok((StatusCode::CREATED, Json(conversation)).into_response())
}

async fn conversation(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let conversation = state
        .assistant
        .conversations
        .get(&principal.subject, &id)
        .await?;
    let messages = state.assistant.conversations.messages(&id).await?;
    let runs = state
        .assistant
        .runs
        .of_conversation(&principal.subject, &id)
        .await?;
    Ok(Json(
        json!({ "conversation": conversation, "messages": messages, "runs": runs }),
    ))
}

async fn delete_conversation(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state
        .assistant
        .conversations
        .delete(&principal.subject, &id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct NewMessage {
    text: String,
}

async fn send_message(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    body: Result<Json<NewMessage>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(body) = body?;
    let run = state
        .assistant
        .runs
        .start(&principal.subject, &id, &body.text)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(run)).into_response())
}

async fn run(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!(
        state.assistant.runs.get(&principal.subject, &id).await?
    )))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct EventsQuery {
    #[serde(default)]
    after: Option<i64>,
}

/// The run's events as SSE: everything after `Last-Event-ID` (or `?after=`), then new ones as
/// they are stored — by this replica (woken at once) or another (seen within a quarter second)
/// — until the run ends.
async fn events(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    Query(query): Query<EventsQuery>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    state.assistant.runs.get(&principal.subject, &id).await?;
    let after = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok())
        .or(query.after)
        .unwrap_or(0);
    let log = state.assistant.runs.events().clone();
    let stream = async_stream(log, id, after);
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// Where an event stream stands: the run, the last id sent, whether the run ended, and events
/// read but not yet sent.
struct Cursor {
    log: portico_assistant::events::EventLog,
    run_id: String,
    after: i64,
    ended: bool,
    queue: std::collections::VecDeque<portico_assistant::StoredEvent>,
}

fn async_stream(
    log: portico_assistant::events::EventLog,
    run_id: String,
    after: i64,
) -> impl Stream<Item = Result<Event, Infallible>> {
    let cursor = Cursor {
        log,
        run_id,
        after,
        ended: false,
        queue: Default::default(),
    };
    futures::stream::unfold(cursor, |mut c| async move {
        loop {
            if let Some(stored) = c.queue.pop_front() {
                c.after = stored.seq;
                c.ended |= stored.event.is_terminal();
                let event = Event::default()
                    .id(stored.seq.to_string())
                    .event(stored.event.kind())
                    .data(serde_json::to_string(&stored.event).unwrap_or_default());
                return Some((Ok(event), c));
            }
            if c.ended {
                return None;
            }
            // Listen before reading, so an event stored in between still wakes us.
            let mut changed = std::pin::pin!(c.log.changed(&c.run_id));
            changed.as_mut().enable();
            match c.log.after(&c.run_id, c.after).await {
                Ok(events) if !events.is_empty() => c.queue.extend(events),
                Ok(_) => {
                    tokio::select! {
                        _ = changed => {}
                        _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                    }
                }
                Err(e) => {
                    tracing::warn!(run = %c.run_id, error = %e, "reading run events failed");
                    return None;
                }
            }
        }
    })
}

#[derive(Deserialize)]
struct Approval {
    approve: bool,
    #[serde(default)]
    remember: bool,
}

async fn approve(
    State(state): State<AppState>,
    principal: Principal,
    Path((id, call_id)): Path<(String, String)>,
    body: Result<Json<Approval>, axum::extract::rejection::JsonRejection>,
) -> Result<StatusCode, ApiError> {
    let Json(body) = body?;
    state
        .assistant
        .runs
        .decide(
            &principal.subject,
            &id,
            &call_id,
            body.approve,
            body.remember,
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn cancel(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.assistant.runs.cancel(&principal.subject, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, Default)]
struct AuditQuery {
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    limit: Option<i64>,
}

/// The audit trail, for `catalog.admins`.
async fn audit(
    State(state): State<AppState>,
    principal: Principal,
    Query(query): Query<AuditQuery>,
) -> Result<Json<Value>, ApiError> {
    let admins = &state.catalog.options().admins;
    let is_admin = std::iter::once(&principal.subject)
        .chain(principal.ownership_refs.iter())
        .any(|r| admins.iter().any(|a| a.eq_ignore_ascii_case(r)));
    if !is_admin {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "NotAllowedError",
            "the audit trail is for catalog.admins",
        ));
    }
    let items = state
        .assistant
        .audit
        .list(
            query.user.as_deref(),
            query.limit.unwrap_or(100).clamp(1, 1000),
        )
        .await?;
    Ok(Json(json!({ "items": items })))
}
