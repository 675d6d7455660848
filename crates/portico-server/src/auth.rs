//! Who is calling: every API request must carry credentials that an [`Authenticator`] accepts.
//! Today that is a static external-access token from config; user sign-in plugs in behind the same
//! trait later.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};

use crate::error::ApiError;

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// `user:default/jane` for users, `external:<subject>` for static tokens.
    pub subject: String,
    /// References that count as this caller for ownership.
    pub ownership_refs: Vec<String>,
}

impl Principal {
    /// The caller as the catalog sees it.
    pub fn actor(&self) -> portico_catalog::service::Actor {
        portico_catalog::service::Actor {
            user_ref: self.subject.clone(),
            ownership_refs: self.ownership_refs.clone(),
        }
    }
}

/// Turns request credentials into a [`Principal`].
pub trait Authenticator: Send + Sync + 'static {
    /// The caller, or `None` when the credentials are missing or not accepted.
    fn authenticate(&self, headers: &HeaderMap) -> Option<Principal>;
}

/// Static bearer tokens from `backend.auth.externalAccess`.
#[derive(Debug, Default)]
pub struct StaticTokens {
    tokens: Vec<(String, String)>,
}

impl StaticTokens {
    /// Accepts each `(token, subject)` pair.
    pub fn new(tokens: Vec<(String, String)>) -> Self {
        Self { tokens }
    }
}

impl Authenticator for StaticTokens {
    fn authenticate(&self, headers: &HeaderMap) -> Option<Principal> {
        let token = bearer(headers)?;
        self.tokens
            .iter()
            .find(|(t, _)| constant_time_eq(t.as_bytes(), token.as_bytes()))
            .map(|(_, subject)| Principal {
                subject: format!("external:{subject}"),
                ownership_refs: Vec::new(),
            })
    }
}

/// The token of an `Authorization: Bearer …` header.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
        .filter(|t| !t.is_empty())
}

/// Compares secrets without leaking where they differ through timing.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The authenticator shared by every request.
pub type SharedAuthenticator = Arc<dyn Authenticator>;

impl<S> FromRequestParts<S> for Principal
where
    S: Send + Sync,
    SharedAuthenticator: axum::extract::FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let authenticator = <SharedAuthenticator as axum::extract::FromRef<S>>::from_ref(state);
        authenticator
            .authenticate(&parts.headers)
            .ok_or_else(ApiError::unauthenticated)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_token_is_accepted() {
        let auth = StaticTokens::new(vec![("s3cret-token".into(), "ci".into())]);
        let mut headers = HeaderMap::new();
        assert!(auth.authenticate(&headers).is_none());
        headers.insert(
            header::AUTHORIZATION,
            "Bearer s3cret-tokeN".parse().unwrap(),
        );
        assert!(auth.authenticate(&headers).is_none());
        headers.insert(
            header::AUTHORIZATION,
            "bearer s3cret-token".parse().unwrap(),
        );
        assert_eq!(auth.authenticate(&headers).unwrap().subject, "external:ci");
    }
}
