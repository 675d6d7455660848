//! Who is calling: every API request must carry a bearer token that the auth service accepts —
//! a Portico user token, a plugin token addressed to the plugin the route belongs to, or a
//! static external-access token.

use axum::extract::{FromRequestParts, OriginalUri};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};

use crate::app::AppState;
use crate::error::ApiError;

pub use portico_auth::Principal;

/// The token of an `Authorization: Bearer …` header.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
        .filter(|t| !t.is_empty())
}

/// The plugin a request path belongs to: `catalog` for `/api/catalog/...`.
pub fn plugin_of(path: &str) -> &str {
    path.strip_prefix("/api/")
        .and_then(|rest| rest.split('/').next())
        .unwrap_or("")
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer(&parts.headers).ok_or_else(ApiError::unauthenticated)?;
        let path = parts
            .extensions
            .get::<OriginalUri>()
            .map_or_else(|| parts.uri.path().to_string(), |u| u.path().to_string());
        state
            .auth
            .authenticate(token, plugin_of(&path))
            .await
            .ok_or_else(ApiError::unauthenticated)
    }
}

/// The caller as the catalog sees it.
pub fn actor(principal: &Principal) -> portico_catalog::service::Actor {
    portico_catalog::service::Actor {
        user_ref: principal.subject.clone(),
        ownership_refs: principal.ownership_refs.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_and_plugin_are_read_from_the_request() {
        let mut headers = HeaderMap::new();
        assert!(bearer(&headers).is_none());
        headers.insert(header::AUTHORIZATION, "bearer  abc ".parse().unwrap());
        assert_eq!(bearer(&headers), Some("abc"));
        headers.insert(header::AUTHORIZATION, "Basic abc".parse().unwrap());
        assert!(bearer(&headers).is_none());
        assert_eq!(plugin_of("/api/mcp-actions/v1"), "mcp-actions");
        assert_eq!(plugin_of("/api/catalog/entities"), "catalog");
        assert_eq!(plugin_of("/healthz"), "");
    }
}
