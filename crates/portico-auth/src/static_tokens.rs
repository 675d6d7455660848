//! Static external-access tokens from `backend.auth.externalAccess`, for scripts and services.

use crate::crypto::constant_time_eq;
use crate::identity::Principal;

/// Fixed bearer tokens, each acting as `external:<subject>`.
#[derive(Default)]
pub struct StaticTokens {
    tokens: Vec<(secrecy::SecretString, String)>,
}

impl std::fmt::Debug for StaticTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaticTokens")
            .field("count", &self.tokens.len())
            .finish()
    }
}

impl StaticTokens {
    /// Accepts each `(token, subject)` pair.
    pub fn new(tokens: Vec<(String, String)>) -> Self {
        Self {
            tokens: tokens
                .into_iter()
                .map(|(t, s)| (secrecy::SecretString::from(t), s))
                .collect(),
        }
    }

    /// The caller a token stands for.
    pub fn authenticate(&self, token: &str) -> Option<Principal> {
        use secrecy::ExposeSecret;
        self.tokens
            .iter()
            .find(|(t, _)| constant_time_eq(t.expose_secret().as_bytes(), token.as_bytes()))
            .map(|(_, subject)| Principal {
                subject: format!("external:{subject}"),
                ownership_refs: Vec::new(),
                via_plugin: None,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_token_is_accepted() {
        let auth = StaticTokens::new(vec![("s3cret-token".into(), "ci".into())]);
        assert!(auth.authenticate("s3cret-tokeN").is_none());
        assert!(auth.authenticate("s3cret-toke").is_none());
        assert_eq!(
            auth.authenticate("s3cret-token").unwrap().subject,
            "external:ci"
        );
        assert!(!format!("{auth:?}").contains("s3cret"));
    }
}
