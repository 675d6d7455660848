//! The OAuth 2.0 conversations with a provider: the authorization URL (with PKCE S256), code
//! exchange, refresh, revocation (RFC 7009), the profile, and OIDC discovery. Token values are
//! never put in errors or logs.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::Value;
use url::Url;

use super::presets::{Endpoints, ProfileSource};
use super::{ClientAuth, OAuthProvider, Profile};
use crate::AuthError;

/// The HTTP client for provider calls: no redirects followed, bounded time.
pub fn http_client() -> Result<reqwest::Client, AuthError> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(15))
        .connect_timeout(Duration::from_secs(5))
        .user_agent(concat!("portico/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| AuthError::Provider(format!("cannot build the HTTP client: {e}")))
}

/// A successful token response.
#[derive(Clone)]
pub struct Tokens {
    /// The access token.
    pub access_token: SecretString,
    /// A refresh token, when issued (providers that rotate issue a new one each time).
    pub refresh_token: Option<SecretString>,
    /// Seconds until the access token expires, when said.
    pub expires_in: Option<i64>,
    /// Scopes granted, when said (else the ones asked for).
    pub scope: Option<Vec<String>>,
    /// The OIDC ID token, when issued.
    pub id_token: Option<SecretString>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("expires_in", &self.expires_in)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

/// Why a token request failed.
#[derive(Debug, thiserror::Error)]
pub enum TokenRequestError {
    /// The grant is no longer valid (revoked, expired, rotated away): the user must sign in again.
    #[error("the provider says the grant is no longer valid ({0})")]
    InvalidGrant(String),
    /// Any other failure; the message is safe to show.
    #[error("{0}")]
    Other(String),
}

#[derive(Deserialize)]
struct RawTokens {
    access_token: Option<String>,
    refresh_token: Option<String>,
    expires_in: Option<Value>,
    scope: Option<String>,
    id_token: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// Splits a scope string (space- or comma-separated, as GitHub answers).
pub fn split_scopes(s: &str) -> Vec<String> {
    s.split([' ', ','])
        .filter(|x| !x.is_empty())
        .map(str::to_string)
        .collect()
}

/// The authorization request URL.
#[allow(clippy::too_many_arguments)]
pub fn authorization_url(
    provider: &OAuthProvider,
    endpoints: &Endpoints,
    redirect_uri: &str,
    scopes: &[String],
    state: &str,
    code_challenge: &str,
    nonce: &str,
) -> Result<Url, AuthError> {
    let mut url = Url::parse(&endpoints.authorization).map_err(|e| {
        AuthError::Config(format!(
            "auth.providers.{}: the authorization URL is not valid: {e}",
            provider.id
        ))
    })?;
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("response_type", "code")
            .append_pair("client_id", &provider.client_id)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("state", state)
            .append_pair("code_challenge", code_challenge)
            .append_pair("code_challenge_method", "S256");
        if !scopes.is_empty() {
            q.append_pair("scope", &provider.provider_scopes(scopes).join(" "));
        }
        if scopes.iter().any(|s| s == "openid") {
            q.append_pair("nonce", nonce);
        }
        for (k, v) in &provider.authorize_params {
            q.append_pair(k, v);
        }
    }
    Ok(url)
}

/// Exchanges an authorization code.
pub async fn exchange_code(
    http: &reqwest::Client,
    provider: &OAuthProvider,
    endpoints: &Endpoints,
    code: &str,
    redirect_uri: &str,
    code_verifier: &str,
) -> Result<Tokens, TokenRequestError> {
    token_request(
        http,
        provider,
        endpoints,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", code_verifier),
        ],
    )
    .await
}

/// Uses a refresh token.
pub async fn refresh(
    http: &reqwest::Client,
    provider: &OAuthProvider,
    endpoints: &Endpoints,
    refresh_token: &SecretString,
) -> Result<Tokens, TokenRequestError> {
    token_request(
        http,
        provider,
        endpoints,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token.expose_secret()),
        ],
    )
    .await
}

fn client_auth(
    provider: &OAuthProvider,
    mut request: reqwest::RequestBuilder,
    form: &mut Vec<(&str, String)>,
) -> reqwest::RequestBuilder {
    match provider.client_auth {
        ClientAuth::Basic => {
            // RFC 6749 §2.3.1: form-urlencode each part before Basic encoding.
            let enc =
                |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
            request = request.basic_auth(
                enc(&provider.client_id),
                Some(enc(provider.client_secret.expose_secret())),
            );
        }
        ClientAuth::Post => {
            form.push(("client_id", provider.client_id.clone()));
            form.push((
                "client_secret",
                provider.client_secret.expose_secret().to_string(),
            ));
        }
    }
    request
}

async fn token_request(
    http: &reqwest::Client,
    provider: &OAuthProvider,
    endpoints: &Endpoints,
    params: &[(&str, &str)],
) -> Result<Tokens, TokenRequestError> {
    let mut form: Vec<(&str, String)> = params.iter().map(|(k, v)| (*k, v.to_string())).collect();
    let request = http
        .post(&endpoints.token)
        .header(reqwest::header::ACCEPT, "application/json");
    let request = client_auth(provider, request, &mut form);
    let response = request.form(&form).send().await.map_err(|e| {
        TokenRequestError::Other(format!(
            "the token endpoint of {} cannot be reached: {}",
            provider.id,
            without_url(e)
        ))
    })?;
    let status = response.status();
    let body = response.bytes().await.map_err(|e| {
        TokenRequestError::Other(format!(
            "reading {}'s token response failed: {}",
            provider.id,
            without_url(e)
        ))
    })?;
    let raw: RawTokens = serde_json::from_slice(&body).map_err(|_| {
        TokenRequestError::Other(format!(
            "{}'s token endpoint answered {status} with a body that is not a JSON token response",
            provider.id
        ))
    })?;
    if let Some(error) = raw.error {
        let detail = raw
            .error_description
            .map(|d| format!("{error}: {d}"))
            .unwrap_or_else(|| error.clone());
        return Err(
            if error == "invalid_grant" || error == "bad_refresh_token" {
                TokenRequestError::InvalidGrant(detail)
            } else {
                TokenRequestError::Other(format!(
                    "{} refused the token request: {detail}",
                    provider.id
                ))
            },
        );
    }
    let access_token = raw.access_token.filter(|t| !t.is_empty()).ok_or_else(|| {
        TokenRequestError::Other(format!(
            "{}'s token endpoint answered {status} without an access token",
            provider.id
        ))
    })?;
    let expires_in = match raw.expires_in {
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => s.parse().ok(),
        _ => None,
    };
    Ok(Tokens {
        access_token: access_token.into(),
        refresh_token: raw.refresh_token.filter(|t| !t.is_empty()).map(Into::into),
        expires_in,
        scope: raw.scope.as_deref().map(split_scopes),
        id_token: raw.id_token.map(Into::into),
    })
}

/// Revokes a token where the provider supports RFC 7009; `Ok(false)` when it does not.
pub async fn revoke(
    http: &reqwest::Client,
    provider: &OAuthProvider,
    endpoints: &Endpoints,
    token: &SecretString,
    hint: &str,
) -> Result<bool, AuthError> {
    let Some(url) = &endpoints.revocation else {
        return Ok(false);
    };
    let mut form = vec![
        ("token", token.expose_secret().to_string()),
        ("token_type_hint", hint.to_string()),
    ];
    let request = client_auth(provider, http.post(url), &mut form);
    let response = request.form(&form).send().await.map_err(|e| {
        AuthError::Provider(format!(
            "revoking at {} failed: {}",
            provider.id,
            without_url(e)
        ))
    })?;
    if !response.status().is_success() {
        return Err(AuthError::Provider(format!(
            "{} answered {} to the revocation",
            provider.id,
            response.status()
        )));
    }
    Ok(true)
}

/// Reads the user's profile with a fresh access token (or from the ID token).
pub async fn profile(
    http: &reqwest::Client,
    provider: &OAuthProvider,
    endpoints: &Endpoints,
    tokens: &Tokens,
) -> Result<Profile, AuthError> {
    match &endpoints.profile {
        Some(ProfileSource::Json(url)) => {
            let value: Value = http
                .get(url)
                .bearer_auth(tokens.access_token.expose_secret())
                .header(reqwest::header::ACCEPT, "application/json")
                .send()
                .await
                .and_then(|r| r.error_for_status())
                .map_err(|e| profile_error(provider, e))?
                .json()
                .await
                .map_err(|e| profile_error(provider, e))?;
            Ok(profile_from_json(&value))
        }
        Some(ProfileSource::PlainUsername(url)) => {
            let name = http
                .get(url)
                .bearer_auth(tokens.access_token.expose_secret())
                .send()
                .await
                .and_then(|r| r.error_for_status())
                .map_err(|e| profile_error(provider, e))?
                .text()
                .await
                .map_err(|e| profile_error(provider, e))?;
            Ok(Profile {
                username: Some(name.trim().to_string()),
                display_name: Some(name.trim().to_string()),
                ..Profile::default()
            })
        }
        Some(ProfileSource::IdToken) | None => {
            let claims = tokens
                .id_token
                .as_ref()
                .and_then(|t| id_token_claims(t.expose_secret()))
                .ok_or_else(|| {
                    AuthError::Provider(format!(
                        "{} returned no profile: configure userInfoUrl, or ask for the openid scope",
                        provider.id
                    ))
                })?;
            Ok(profile_from_json(&claims))
        }
    }
}

fn profile_error(provider: &OAuthProvider, e: reqwest::Error) -> AuthError {
    AuthError::Provider(format!(
        "reading the profile from {} failed: {}",
        provider.id,
        without_url(e)
    ))
}

/// The claims of an ID token received straight from the token endpoint. OIDC Core §3.1.3.7
/// lets a client that got it over TLS from the token endpoint rely on the TLS server
/// validation instead of the signature; its issuer, audience and nonce are checked by the caller.
pub fn id_token_claims(token: &str) -> Option<Value> {
    jsonwebtoken::dangerous::insecure_decode::<Value>(token)
        .ok()
        .map(|d| d.claims)
}

/// A profile from the fields the common providers use.
pub fn profile_from_json(v: &Value) -> Profile {
    let pick = |keys: &[&str]| {
        keys.iter()
            .find_map(|k| v.get(*k).and_then(Value::as_str).filter(|s| !s.is_empty()))
            .map(str::to_string)
    };
    Profile {
        email: pick(&["email", "mail"]),
        display_name: pick(&["name", "displayName", "display_name"]),
        picture: pick(&["picture", "avatar_url"]).or_else(|| {
            v.pointer("/links/avatar/href")
                .and_then(Value::as_str)
                .map(str::to_string)
        }),
        username: pick(&[
            "preferred_username",
            "login",
            "username",
            "nickname",
            "userPrincipalName",
        ]),
    }
}

/// Reads an OIDC discovery document.
pub async fn discover(http: &reqwest::Client, url: &str) -> Result<Endpoints, AuthError> {
    let doc: Value = http
        .get(url)
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .map_err(|e| {
            AuthError::Provider(format!(
                "cannot read the OIDC discovery document {url}: {e}"
            ))
        })?
        .json()
        .await
        .map_err(|e| {
            AuthError::Provider(format!(
                "the OIDC discovery document {url} is not JSON: {e}"
            ))
        })?;
    let field = |k: &str| doc.get(k).and_then(Value::as_str).map(str::to_string);
    let missing =
        |k: &str| AuthError::Provider(format!("the OIDC discovery document {url} has no {k}"));
    Ok(Endpoints {
        authorization: field("authorization_endpoint")
            .ok_or_else(|| missing("authorization_endpoint"))?,
        token: field("token_endpoint").ok_or_else(|| missing("token_endpoint"))?,
        profile: Some(match field("userinfo_endpoint") {
            Some(u) => ProfileSource::Json(u),
            None => ProfileSource::IdToken,
        }),
        revocation: field("revocation_endpoint"),
        issuer: field("issuer"),
    })
}

/// A reqwest error's message without its URL (which may carry a code or token in the query).
fn without_url(e: reqwest::Error) -> String {
    e.without_url().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_read_from_every_common_shape() {
        let gh = serde_json::json!({"login": "octo", "name": "Octo Cat", "email": "o@x.io", "avatar_url": "https://a/1"});
        assert_eq!(
            profile_from_json(&gh),
            Profile {
                email: Some("o@x.io".into()),
                display_name: Some("Octo Cat".into()),
                picture: Some("https://a/1".into()),
                username: Some("octo".into())
            }
        );
        let graph = serde_json::json!({"userPrincipalName": "jane@corp", "displayName": "Jane", "mail": "jane@corp.com"});
        let p = profile_from_json(&graph);
        assert_eq!(p.username.as_deref(), Some("jane@corp"));
        assert_eq!(p.email.as_deref(), Some("jane@corp.com"));
        assert_eq!(split_scopes("repo,read:org"), vec!["repo", "read:org"]);
        assert_eq!(split_scopes("openid  email"), vec!["openid", "email"]);
    }
}
