//! Auth routes, as Backstage serves them: the provider flow (`start`, `handler/frame`,
//! `refresh`, `logout`), the user-token JWKS, and each plugin's JWKS for plugin tokens; plus
//! Portico's `providers` listing for the web UI's sign-in page.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use portico_auth::flow::{FlowError, HandlerQuery, HandlerReply, StartQuery};

use crate::app::AppState;
use crate::error::ApiError;

/// Routes under `/api/auth`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/.well-known/jwks.json", get(jwks))
        .route("/providers", get(providers))
        .route("/{provider}/start", get(start))
        .route("/{provider}/handler/frame", get(handler))
        .route("/{provider}/refresh", get(refresh).post(refresh))
        .route("/{provider}/logout", post(logout))
}

/// `/.backstage/auth/v1/jwks.json` under a plugin's prefix: the keys plugin tokens are signed
/// with (one set for every plugin Portico hosts).
pub fn plugin_jwks_route() -> Router<AppState> {
    Router::new().route("/.backstage/auth/v1/jwks.json", get(jwks))
}

impl From<FlowError> for ApiError {
    fn from(e: FlowError) -> Self {
        match e {
            FlowError::Input(m) => ApiError::input(m),
            FlowError::Authentication(m) => {
                ApiError::new(StatusCode::UNAUTHORIZED, "AuthenticationError", m)
            }
            FlowError::NotFound(m) => ApiError::not_found(m),
            FlowError::Internal(e) => {
                tracing::error!(error = %e, "auth flow failed");
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "Error", e.to_string())
            }
        }
    }
}

fn with_cookies(mut response: Response, cookies: Vec<String>) -> Response {
    for c in cookies {
        if let Ok(v) = HeaderValue::from_str(&c) {
            response.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn redirect(location: &str) -> Result<Response, ApiError> {
    let value = HeaderValue::from_str(location)
        .map_err(|_| ApiError::input("the redirect URL is not a valid header value"))?;
    let mut response = StatusCode::FOUND.into_response();
    response.headers_mut().insert(header::LOCATION, value);
    Ok(response)
}

/// Refresh and logout change state from script: Backstage asks for this header so that a plain
/// cross-site form or link cannot trigger them.
fn require_xhr(headers: &HeaderMap) -> Result<(), ApiError> {
    match headers
        .get("x-requested-with")
        .and_then(|v| v.to_str().ok())
    {
        Some("XMLHttpRequest") => Ok(()),
        _ => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "AuthenticationError",
            "Invalid X-Requested-With header: send X-Requested-With: XMLHttpRequest",
        )),
    }
}

async fn jwks(State(state): State<AppState>) -> Result<Response, ApiError> {
    let keys = state.auth.jwks().await.map_err(|e| {
        tracing::error!(error = %e, "cannot read signing keys");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Error",
            "cannot read the signing keys",
        )
    })?;
    Ok(axum::Json(keys).into_response())
}

/// The configured providers (ids and kinds only), open without credentials so a sign-in page
/// can offer them.
async fn providers(State(state): State<AppState>) -> Response {
    let mut response =
        axum::Json(serde_json::json!({ "items": state.auth.providers().list() })).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn start(
    State(state): State<AppState>,
    Path(provider): Path<String>,
    Query(query): Query<StartQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let reply = state.auth.start(&provider, &query, &headers).await?;
    Ok(with_cookies(redirect(&reply.location)?, reply.cookies))
}

async fn handler(
    State(state): State<AppState>,
    Path(provider): Path<String>,
    Query(query): Query<HandlerQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (reply, granted_to) = state
        .auth
        .handle_callback(&provider, &query, &headers)
        .await?;
    if let Some(user) = granted_to {
        // Runs that waited for this sign-in go on, here.
        if let Err(e) = state.assistant.runs.resume_after_login(&user).await {
            tracing::warn!(error = %e, "runs waiting for a sign-in could not be resumed");
        }
    }
    match reply {
        HandlerReply::Popup { html, cookies } => {
            Ok(with_cookies(Html(html).into_response(), cookies))
        }
        HandlerReply::Redirect(r) => Ok(with_cookies(redirect(&r.location)?, r.cookies)),
    }
}

async fn refresh(
    State(state): State<AppState>,
    Path(provider): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    require_xhr(&headers)?;
    let (session, cookies) = state.auth.refresh_session(&provider, &headers).await?;
    Ok(with_cookies(axum::Json(session).into_response(), cookies))
}

async fn logout(
    State(state): State<AppState>,
    Path(provider): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    require_xhr(&headers)?;
    let cookies = state.auth.logout(&provider, &headers).await?;
    Ok(with_cookies(StatusCode::OK.into_response(), cookies))
}
