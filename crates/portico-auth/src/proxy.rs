//! Proxy sign-in: a fronting proxy (Google IAP, Cloudflare Access, an OIDC-aware gateway) puts a
//! signed JWT in a request header; Portico verifies it against the proxy's published keys and
//! signs the user in from its claims. Such providers cannot mint third-party tokens.

use std::time::{Duration, Instant};

use http::HeaderMap;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation};
use serde_json::Value;
use tokio::sync::RwLock;

use crate::AuthError;
use crate::config::{ProviderConfig, SignInConfig};
use crate::keys::TokenError;
use crate::providers::Profile;
use crate::providers::oauth::profile_from_json;

/// Keys are fetched again at most this often when a token names an unknown one.
const REFETCH_AFTER: Duration = Duration::from_secs(30);

/// A JWK set published at a URL, cached.
pub struct RemoteJwks {
    url: String,
    http: reqwest::Client,
    cache: RwLock<Option<(JwkSet, Instant)>>,
}

impl RemoteJwks {
    /// Keys published at `url`.
    pub fn new(url: String, http: reqwest::Client) -> Self {
        Self {
            url,
            http,
            cache: RwLock::new(None),
        }
    }

    async fn fetch(&self) -> Result<JwkSet, TokenError> {
        let set: JwkSet = self
            .http
            .get(&self.url)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| {
                tracing::warn!(url = %self.url, error = %e.without_url(), "cannot fetch signing keys");
                TokenError::BadSignature
            })?
            .json()
            .await
            .map_err(|_| TokenError::BadSignature)?;
        Ok(set)
    }

    async fn key(&self, kid: Option<&str>) -> Result<DecodingKey, TokenError> {
        let find = |set: &JwkSet| match kid {
            Some(kid) => set.find(kid).cloned(),
            None if set.keys.len() == 1 => set.keys.first().cloned(),
            None => None,
        };
        let fresh_enough = {
            let cache = self.cache.read().await;
            if let Some((set, _)) = cache.as_ref()
                && let Some(jwk) = find(set)
            {
                return DecodingKey::from_jwk(&jwk).map_err(|_| TokenError::BadSignature);
            }
            cache
                .as_ref()
                .is_some_and(|(_, at)| at.elapsed() < REFETCH_AFTER)
        };
        if fresh_enough {
            return Err(TokenError::BadSignature);
        }
        let set = self.fetch().await?;
        let jwk = find(&set);
        *self.cache.write().await = Some((set, Instant::now()));
        DecodingKey::from_jwk(&jwk.ok_or(TokenError::BadSignature)?)
            .map_err(|_| TokenError::BadSignature)
    }

    /// Verifies `token`'s signature with the published key it names, and `validation`.
    pub async fn verify(&self, token: &str, validation: &Validation) -> Result<Value, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        let key = self.key(header.kid.as_deref()).await?;
        let mut validation = validation.clone();
        validation.algorithms = vec![header.alg];
        if !validation.algorithms.iter().all(|a| {
            matches!(
                a,
                jsonwebtoken::Algorithm::RS256
                    | jsonwebtoken::Algorithm::RS384
                    | jsonwebtoken::Algorithm::RS512
                    | jsonwebtoken::Algorithm::ES256
                    | jsonwebtoken::Algorithm::ES384
                    | jsonwebtoken::Algorithm::PS256
                    | jsonwebtoken::Algorithm::EdDSA
            )
        }) {
            return Err(TokenError::BadSignature);
        }
        Ok(jsonwebtoken::decode::<Value>(token, &key, &validation)?.claims)
    }
}

/// A proxy sign-in provider.
pub struct ProxyProvider {
    /// The id it is configured under.
    pub id: String,
    header: http::HeaderName,
    jwks: RemoteJwks,
    issuer: Option<String>,
    audience: Option<String>,
    /// How a profile becomes a Portico user.
    pub sign_in: SignInConfig,
}

impl std::fmt::Debug for ProxyProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxyProvider")
            .field("id", &self.id)
            .field("header", &self.header)
            .finish_non_exhaustive()
    }
}

impl ProxyProvider {
    /// Builds a `proxy`, `gcpIap` or `cfaccess` provider.
    pub fn from_config(
        id: &str,
        kind: &str,
        c: &ProviderConfig,
        http: reqwest::Client,
    ) -> Result<Self, AuthError> {
        let (header, jwks_url, issuer) = match kind {
            "gcpIap" => (
                "x-goog-iap-jwt-assertion".to_string(),
                "https://www.gstatic.com/iap/verify/public_key-jwk".to_string(),
                Some("https://cloud.google.com/iap".to_string()),
            ),
            "cfaccess" => {
                let team = c.team_name.as_deref().ok_or_else(|| {
                    AuthError::Config(format!("auth.providers.{id}.teamName is required"))
                })?;
                (
                    "cf-access-jwt-assertion".to_string(),
                    format!("https://{team}.cloudflareaccess.com/cdn-cgi/access/certs"),
                    Some(format!("https://{team}.cloudflareaccess.com")),
                )
            }
            _ => (
                c.header.clone().ok_or_else(|| {
                    AuthError::Config(format!(
                        "auth.providers.{id}.header is required: the request header the proxy puts its JWT in"
                    ))
                })?,
                c.jwks_url.clone().ok_or_else(|| {
                    AuthError::Config(format!(
                        "auth.providers.{id}.jwksUrl is required: where the proxy publishes its signing keys"
                    ))
                })?,
                None,
            ),
        };
        let header = c.header.clone().unwrap_or(header);
        let header = http::HeaderName::try_from(header.to_ascii_lowercase()).map_err(|_| {
            AuthError::Config(format!(
                "auth.providers.{id}.header is not a valid header name"
            ))
        })?;
        if kind == "gcpIap" && c.audience.is_none() {
            return Err(AuthError::Config(format!(
                "auth.providers.{id}.audience is required: /projects/NUMBER/global/backendServices/ID"
            )));
        }
        let sign_in = c.sign_in.clone().ok_or_else(|| {
            AuthError::Config(format!(
                "auth.providers.{id}.signIn.resolvers is required: a proxy provider only signs users in"
            ))
        })?;
        Ok(Self {
            id: id.to_string(),
            header,
            jwks: RemoteJwks::new(c.jwks_url.clone().unwrap_or(jwks_url), http),
            issuer: c.issuer.clone().or(issuer),
            audience: c.audience.clone(),
            sign_in,
        })
    }

    /// The profile in the request's proxy header, verified.
    pub async fn profile(&self, headers: &HeaderMap) -> Result<Profile, TokenError> {
        let token = headers
            .get(&self.header)
            .and_then(|v| v.to_str().ok())
            .ok_or(TokenError::Malformed)?;
        let mut validation = Validation::new(jsonwebtoken::Algorithm::RS256);
        validation.leeway = 30;
        match &self.audience {
            Some(aud) => validation.set_audience(&[aud]),
            None => validation.validate_aud = false,
        }
        if let Some(iss) = &self.issuer {
            validation.set_issuer(&[iss]);
        }
        validation.set_required_spec_claims(&["exp", "sub"]);
        let claims = self.jwks.verify(token, &validation).await?;
        Ok(profile_from_json(&claims))
    }
}
