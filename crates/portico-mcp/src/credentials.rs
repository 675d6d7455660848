//! Credentials arrive through a small trait, per user and server: nothing, or one header
//! value. The client sends them only to the origin of the server's selected remote.

use std::future::Future;
use std::pin::Pin;

use http::HeaderName;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

/// One credential: a header and its secret value (for a Bearer token, `Authorization` and
/// `Bearer <token>`). Its `Debug` never shows the value.
#[derive(Clone)]
pub struct Credential {
    header: HeaderName,
    value: SecretString,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("header", &self.header)
            .field("value", &"[redacted]")
            .finish()
    }
}

/// Why a credential could not be built or fetched.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CredentialError {
    /// The header name or value cannot go in an HTTP header.
    #[error("the credential is not a valid HTTP header")]
    InvalidHeader,
    /// The user has to sign in to the server's provider first; `login_url` starts it.
    #[error("sign in to {provider} first ({reason}): {login_url}")]
    SignInRequired {
        /// The provider id.
        provider: String,
        /// Why, in words.
        reason: String,
        /// The URL that starts the sign-in.
        login_url: String,
    },
    /// The credential store failed.
    #[error("the credential store failed: {0}")]
    Store(String),
}

impl Credential {
    /// `Authorization: Bearer <token>`.
    pub fn bearer(token: impl Into<String>) -> Result<Self, CredentialError> {
        Self::header(
            http::header::AUTHORIZATION,
            format!("Bearer {}", token.into()),
        )
    }

    /// Any header with a secret value.
    pub fn header(header: HeaderName, value: impl Into<String>) -> Result<Self, CredentialError> {
        let value = value.into();
        if http::HeaderValue::from_str(&value).is_err() {
            return Err(CredentialError::InvalidHeader);
        }
        Ok(Self {
            header,
            value: SecretString::from(value),
        })
    }

    /// The header this credential goes in.
    pub fn header_name(&self) -> &HeaderName {
        &self.header
    }

    /// A stable, non-reversible identity of this credential (for pool keys), never the value.
    pub fn identity(&self) -> String {
        let mut h = Sha256::new();
        h.update(self.header.as_str().as_bytes());
        h.update([0]);
        h.update(self.value.expose_secret().as_bytes());
        let digest = h.finalize();
        digest[..12].iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The header value, marked sensitive so HTTP layers do not print it.
    pub(crate) fn header_value(&self) -> Result<http::HeaderValue, CredentialError> {
        let mut v = http::HeaderValue::from_str(self.value.expose_secret())
            .map_err(|_| CredentialError::InvalidHeader)?;
        v.set_sensitive(true);
        Ok(v)
    }

    /// For `Authorization: Bearer x`, the token `x` (rmcp's streamable client wants it bare).
    pub(crate) fn bearer_token(&self) -> Option<&str> {
        if self.header != http::header::AUTHORIZATION {
            return None;
        }
        let v = self.value.expose_secret();
        let (scheme, token) = v.split_once(' ')?;
        scheme
            .eq_ignore_ascii_case("bearer")
            .then_some(token.trim())
    }

    /// The secret, for redacting it from messages.
    pub(crate) fn secret(&self) -> &str {
        self.value.expose_secret()
    }
}

/// A boxed future, so the trait stays object-safe.
pub type CredentialFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Option<Credential>, CredentialError>> + Send + 'a>>;

/// Where the pool gets credentials from: per user and server, nothing or one header value.
pub trait Credentials: Send + Sync {
    /// The credential `user` has for `server` (an entity ref), or `None` when it needs none.
    fn credential<'a>(&'a self, user: &'a str, server: &'a str) -> CredentialFuture<'a>;
}

/// No credentials for anyone.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoCredentials;

impl Credentials for NoCredentials {
    fn credential<'a>(&'a self, _user: &'a str, _server: &'a str) -> CredentialFuture<'a> {
        Box::pin(async { Ok(None) })
    }
}

/// Removes every occurrence of the credential's secret (and its bare token) from `text`.
pub(crate) fn redact(text: String, credential: Option<&Credential>) -> String {
    let Some(c) = credential else { return text };
    let mut out = text;
    for secret in [Some(c.secret()), c.bearer_token()].into_iter().flatten() {
        if secret.len() >= 4 && out.contains(secret) {
            out = out.replace(secret, "[redacted]");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_identity_hide_the_value() {
        let c = Credential::bearer("s3cret-token").unwrap();
        assert!(!format!("{c:?}").contains("s3cret"));
        assert!(!c.identity().contains("s3cret"));
        assert_eq!(c.bearer_token(), Some("s3cret-token"));
        assert_eq!(
            redact("oops s3cret-token here".into(), Some(&c)),
            "oops [redacted] here"
        );
    }
}
