//! The Backstage-compatible sign-in and consent flow, free of any web framework: `start` sends
//! the browser to the provider (state + nonce cookie + PKCE), `handler/frame` takes the code
//! back, `refresh` gives the signed-in session and a fresh Portico token, `logout` forgets and
//! revokes. The caller (the HTTP layer) turns the results into responses.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::HeaderMap;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use url::Url;

use crate::broker::BrokerError;
use crate::crypto::{constant_time_eq, random_token, sha256_b64url};
use crate::identity::Identity;
use crate::providers::oauth::{self, id_token_claims};
use crate::providers::{OAuthProvider, Profile};
use crate::service::Auth;
use crate::signin::{self, SignInError};
use crate::{AuthError, now_secs};

/// The cookie that keeps a browser signed in to Portico (sealed, HTTP-only).
pub const SESSION_COOKIE: &str = "portico-session";
/// A browser session lasts at most this long without signing in again.
const SESSION_SECONDS: i64 = 30 * 24 * 3600;
/// A consent must come back within this long.
const NONCE_SECONDS: i64 = 600;

/// Why a flow step failed; the HTTP layer maps each to Backstage's error names.
#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    /// The request is malformed (missing or bad parameters): 400 `InputError`.
    #[error("{0}")]
    Input(String),
    /// Not signed in, or the sign-in is no longer valid: 401 `AuthenticationError`.
    #[error("{0}")]
    Authentication(String),
    /// No such provider: 404 `NotFoundError`.
    #[error("{0}")]
    NotFound(String),
    /// The provider or the store failed: 500.
    #[error(transparent)]
    Internal(#[from] AuthError),
}

impl From<BrokerError> for FlowError {
    fn from(e: BrokerError) -> Self {
        match e {
            BrokerError::LoginRequired { .. } => FlowError::Authentication(e.to_string()),
            BrokerError::UnknownProvider(p) => {
                FlowError::NotFound(format!("no auth provider \"{p}\" is configured"))
            }
            BrokerError::Provider(m) => FlowError::Internal(AuthError::Provider(m)),
            BrokerError::Auth(a) => FlowError::Internal(a),
        }
    }
}

impl From<SignInError> for FlowError {
    fn from(e: SignInError) -> Self {
        FlowError::Authentication(e.to_string())
    }
}

/// Query of `start`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StartQuery {
    /// Scopes to ask for beyond the provider's and servers' (space-separated).
    pub scope: Option<String>,
    /// Backstage's environment name (informational).
    pub env: Option<String>,
    /// `popup` (default) or `redirect`.
    pub flow: Option<String>,
    /// For the redirect flow: where to go afterwards (same origin as Portico).
    pub redirect_url: Option<String>,
    /// The opener's origin; must be Portico's own.
    pub origin: Option<String>,
}

/// Query of `handler/frame`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct HandlerQuery {
    /// The authorization code.
    pub code: Option<String>,
    /// The state `start` sent.
    pub state: Option<String>,
    /// The provider's error code, when the user refused or it failed.
    pub error: Option<String>,
    /// The provider's error text.
    pub error_description: Option<String>,
}

/// A redirect with cookies to set.
#[derive(Debug)]
pub struct Redirect {
    /// Where to.
    pub location: String,
    /// `Set-Cookie` values.
    pub cookies: Vec<String>,
}

/// What `handler/frame` answers with.
#[derive(Debug)]
pub enum HandlerReply {
    /// The popup flow: an HTML page that posts the result to the opener.
    Popup {
        /// The page.
        html: String,
        /// `Set-Cookie` values.
        cookies: Vec<String>,
    },
    /// The redirect flow: back to the app.
    Redirect(Redirect),
}

/// A signed-in session as `refresh` reports it, in Backstage's shape.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionResponse {
    /// The user's profile.
    pub profile: Profile,
    /// The provider grant's scope and lifetime (never its tokens: those stay in the vault).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider_info: Option<Value>,
    /// The Portico user token and identity.
    pub backstage_identity: Value,
}

#[derive(Debug, Serialize, Deserialize)]
struct State {
    nonce: String,
    flow: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    redirect_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    env: Option<String>,
}

/// What the nonce cookie keeps between `start` and `handler/frame` (sealed).
#[derive(Debug, Serialize, Deserialize)]
struct Pending {
    nonce: String,
    verifier: String,
    scopes: Vec<String>,
    /// The signed-in user connecting an account; `None` when this consent signs in.
    user: Option<String>,
    exp: i64,
}

/// The signed-in browser session (sealed into [`SESSION_COOKIE`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Session {
    /// The user.
    pub sub: String,
    /// The provider they signed in with.
    pub provider: String,
    /// Their profile from that provider.
    pub profile: Profile,
    /// When the session ends.
    pub exp: i64,
}

/// Reads one cookie from the request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

impl Auth {
    fn callback_url(&self, provider: &OAuthProvider) -> String {
        provider
            .callback_url
            .clone()
            .unwrap_or_else(|| format!("{}/{}/handler/frame", self.auth_base(), provider.id))
    }

    fn set_cookie(&self, name: &str, value: &str, path: &str, max_age: i64) -> String {
        let secure = if self.secure_cookies() {
            "; Secure"
        } else {
            ""
        };
        format!("{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}")
    }

    fn same_origin(&self, url: &str) -> bool {
        match (Url::parse(url), Url::parse(self.base_url())) {
            (Ok(a), Ok(b)) => a.origin() == b.origin(),
            _ => false,
        }
    }

    fn oauth_provider(&self, id: &str) -> Result<std::sync::Arc<OAuthProvider>, FlowError> {
        self.providers().oauth(id).cloned().ok_or_else(|| {
            FlowError::NotFound(format!(
                "no OAuth provider \"{id}\" is configured; configured: {}",
                self.providers().ids().join(", ")
            ))
        })
    }

    /// The browser's signed-in session, if its cookie is valid.
    pub fn session(&self, headers: &HeaderMap) -> Option<Session> {
        let sealed = cookie(headers, SESSION_COOKIE)?;
        let bytes = self.open_cookie(SESSION_COOKIE, sealed)?;
        let session: Session = serde_json::from_slice(&bytes).ok()?;
        (session.exp > now_secs()).then_some(session)
    }

    fn seal_cookie(&self, name: &str, value: &impl Serialize) -> Result<String, AuthError> {
        let json = serde_json::to_vec(value).map_err(|_| AuthError::Crypto("cookie encoding"))?;
        let sealed = self.cipher().seal(&format!("cookie|{name}"), &json)?;
        Ok(format!("{}.{sealed}", self.cipher().current_key_id()))
    }

    fn open_cookie(&self, name: &str, value: &str) -> Option<Vec<u8>> {
        let (key_id, sealed) = value.split_once('.')?;
        self.cipher()
            .open(key_id, &format!("cookie|{name}"), sealed)
            .ok()
    }

    fn session_cookie(&self, session: &Session) -> Result<String, AuthError> {
        let value = self.seal_cookie(SESSION_COOKIE, session)?;
        Ok(self.set_cookie(SESSION_COOKIE, &value, "/api/auth", SESSION_SECONDS))
    }

    /// `GET /auth/{provider}/start`.
    pub async fn start(
        &self,
        provider_id: &str,
        query: &StartQuery,
        headers: &HeaderMap,
    ) -> Result<Redirect, FlowError> {
        let provider = self.oauth_provider(provider_id)?;
        let flow = query.flow.as_deref().unwrap_or("popup");
        if flow != "popup" && flow != "redirect" {
            return Err(FlowError::Input(format!(
                "flow must be popup or redirect, not \"{flow}\""
            )));
        }
        if let Some(origin) = &query.origin
            && !self.same_origin(origin)
        {
            return Err(FlowError::Input(format!(
                "origin {origin} is not Portico's own ({})",
                self.base_url()
            )));
        }
        let redirect_url = match (flow, &query.redirect_url) {
            ("redirect", None) => {
                return Err(FlowError::Input(
                    "the redirect flow needs redirectUrl".into(),
                ));
            }
            (_, Some(url)) if !self.same_origin(url) => {
                return Err(FlowError::Input(format!(
                    "redirectUrl must be on Portico's own origin ({})",
                    self.base_url()
                )));
            }
            (_, url) => url.clone(),
        };
        let user = self.session(headers).map(|s| s.sub);
        if user.is_none() && provider.sign_in.is_none() {
            return Err(FlowError::Authentication(format!(
                "sign in to Portico first: {} connects accounts but does not sign users in",
                provider.id
            )));
        }
        let asked: Vec<String> = query
            .scope
            .as_deref()
            .map(oauth::split_scopes)
            .unwrap_or_default();
        let granted = match &user {
            Some(u) => self.broker().granted_scopes(u, &provider.id).await?,
            None => Vec::new(),
        };
        let scopes = self
            .broker()
            .consent_scopes(user.as_deref(), &provider, &granted, &asked)
            .await;
        let nonce = random_token(16)?;
        let verifier = random_token(32)?;
        let state = State {
            nonce: nonce.clone(),
            flow: flow.to_string(),
            redirect_url,
            env: query.env.clone(),
        };
        let state = URL_SAFE_NO_PAD
            .encode(serde_json::to_vec(&state).map_err(|_| AuthError::Crypto("state encoding"))?);
        let endpoints = provider.endpoints(self.http()).await?;
        let url = oauth::authorization_url(
            &provider,
            &endpoints,
            &self.callback_url(&provider),
            &scopes,
            &state,
            &sha256_b64url(verifier.as_bytes()),
            &nonce,
        )?;
        let pending = Pending {
            nonce,
            verifier,
            scopes,
            user,
            exp: now_secs() + NONCE_SECONDS,
        };
        let name = format!("{}-nonce", provider.id);
        let value = self.seal_cookie(&name, &pending)?;
        let path = format!("/api/auth/{}/handler", provider.id);
        Ok(Redirect {
            location: url.to_string(),
            cookies: vec![self.set_cookie(&name, &value, &path, NONCE_SECONDS)],
        })
    }

    /// `GET /auth/{provider}/handler/frame`; also says which user got a grant, if one did, so
    /// their runs waiting for this sign-in can go on.
    pub async fn handle_callback(
        &self,
        provider_id: &str,
        query: &HandlerQuery,
        headers: &HeaderMap,
    ) -> Result<(HandlerReply, Option<String>), FlowError> {
        let provider = self.oauth_provider(provider_id)?;
        let state: State = query
            .state
            .as_deref()
            .and_then(|s| URL_SAFE_NO_PAD.decode(s).ok())
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| {
                FlowError::Input("the state parameter is missing or malformed".into())
            })?;
        let name = format!("{}-nonce", provider.id);
        let clear_nonce =
            self.set_cookie(&name, "", &format!("/api/auth/{}/handler", provider.id), 0);
        let outcome = self
            .complete(&provider, &state, query, headers, &name)
            .await;
        let mut granted_to = None;
        let (response, mut cookies) = match outcome {
            Ok((response, cookies, user)) => {
                granted_to = Some(user);
                (response, cookies)
            }
            Err(e) => {
                let (error_name, message) = match &e {
                    FlowError::Input(m) => ("InputError", m.clone()),
                    FlowError::Authentication(m) => ("AuthenticationError", m.clone()),
                    FlowError::NotFound(m) => ("NotFoundError", m.clone()),
                    FlowError::Internal(m) => ("Error", m.to_string()),
                };
                tracing::info!(provider = provider_id, error = %message, "sign-in did not complete");
                (
                    json!({"type": "authorization_response", "error": {"name": error_name, "message": message}}),
                    Vec::new(),
                )
            }
        };
        cookies.push(clear_nonce);
        if state.flow == "redirect" {
            let mut location = state.redirect_url.clone().unwrap_or_else(|| "/".into());
            if let Some(message) = response.pointer("/error/message").and_then(Value::as_str)
                && let Ok(mut url) = Url::parse(&location)
            {
                url.query_pairs_mut().append_pair("error", message);
                location = url.to_string();
            }
            return Ok((
                HandlerReply::Redirect(Redirect { location, cookies }),
                granted_to,
            ));
        }
        Ok((
            HandlerReply::Popup {
                html: popup_page(&response, &origin_of(self.base_url())),
                cookies,
            },
            granted_to,
        ))
    }

    async fn complete(
        &self,
        provider: &OAuthProvider,
        state: &State,
        query: &HandlerQuery,
        headers: &HeaderMap,
        nonce_cookie: &str,
    ) -> Result<(Value, Vec<String>, String), FlowError> {
        let pending: Pending = cookie(headers, nonce_cookie)
            .and_then(|v| self.open_cookie(nonce_cookie, v))
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| {
                FlowError::Authentication(
                    "the sign-in cookie is missing or expired: start the sign-in again from Portico".into(),
                )
            })?;
        if pending.exp < now_secs()
            || !constant_time_eq(pending.nonce.as_bytes(), state.nonce.as_bytes())
        {
            return Err(FlowError::Authentication(
                "the sign-in state does not match this browser's: start the sign-in again".into(),
            ));
        }
        if let Some(error) = &query.error {
            let detail = query.error_description.as_deref().unwrap_or(error);
            return Err(FlowError::Authentication(format!(
                "{} did not grant access: {detail}",
                provider.id
            )));
        }
        let code = query
            .code
            .as_deref()
            .ok_or_else(|| FlowError::Input("the provider sent no code".into()))?;
        let endpoints = provider.endpoints(self.http()).await?;
        let tokens = oauth::exchange_code(
            self.http(),
            provider,
            &endpoints,
            code,
            &self.callback_url(provider),
            &pending.verifier,
        )
        .await
        .map_err(|e| FlowError::Authentication(format!("{} refused the code: {e}", provider.id)))?;
        if let Some(id_token) = &tokens.id_token {
            use secrecy::ExposeSecret;
            check_id_token(
                provider,
                endpoints.issuer.as_deref(),
                id_token.expose_secret(),
                &pending.nonce,
            )?;
        }
        let profile = oauth::profile(self.http(), provider, &endpoints, &tokens).await?;
        let mut cookies = Vec::new();
        let identity = match &pending.user {
            Some(user) => self.identity_of(user).await,
            None => {
                let sign_in = provider.sign_in.as_ref().ok_or_else(|| {
                    FlowError::Authentication("this provider does not sign users in".into())
                })?;
                let identity = signin::resolve(sign_in, &profile, self.directory()).await?;
                cookies.push(self.session_cookie(&Session {
                    sub: identity.user_entity_ref.clone(),
                    provider: provider.id.clone(),
                    profile: profile.clone(),
                    exp: now_secs() + SESSION_SECONDS,
                })?);
                identity
            }
        };
        self.broker()
            .store_grant(
                &identity.user_entity_ref,
                &provider.id,
                &tokens,
                &pending.scopes,
            )
            .await?;
        tracing::info!(user = %identity.user_entity_ref, provider = %provider.id, "provider grant stored");
        let issued = self.user_tokens().issue(&identity).await?;
        let granted = tokens
            .scope
            .clone()
            .unwrap_or_else(|| pending.scopes.clone());
        let response = json!({
            "type": "authorization_response",
            "response": {
                "profile": profile,
                "providerInfo": {
                    "scope": granted.join(" "),
                    "expiresInSeconds": tokens.expires_in,
                },
                "backstageIdentity": backstage_identity(&identity, &issued.token, issued.expires_in_seconds),
            }
        });
        Ok((response, cookies, identity.user_entity_ref))
    }

    /// The user `user_ref` with their current ownership refs from the directory.
    pub async fn identity_of(&self, user_ref: &str) -> Identity {
        self.directory()
            .by_ref(user_ref)
            .await
            .unwrap_or_else(|| Identity::user(user_ref))
    }

    /// `GET /auth/{provider}/refresh`: the session and a fresh Portico token.
    pub async fn refresh_session(
        &self,
        provider_id: &str,
        headers: &HeaderMap,
    ) -> Result<(SessionResponse, Vec<String>), FlowError> {
        if provider_id == "guest" {
            return self.guest_session(headers).await;
        }
        if let Some(proxy) = self.providers().proxy(provider_id).cloned() {
            let profile = proxy.profile(headers).await.map_err(|e| {
                FlowError::Authentication(format!(
                    "the proxy sign-in header is missing or not valid: {e}"
                ))
            })?;
            let identity = signin::resolve(&proxy.sign_in, &profile, self.directory()).await?;
            let issued = self.user_tokens().issue(&identity).await?;
            return Ok((
                SessionResponse {
                    profile,
                    provider_info: None,
                    backstage_identity: backstage_identity(
                        &identity,
                        &issued.token,
                        issued.expires_in_seconds,
                    ),
                },
                Vec::new(),
            ));
        }
        let provider = self.oauth_provider(provider_id)?;
        let session = self.session(headers).ok_or_else(|| {
            FlowError::Authentication(format!(
                "not signed in: start at /api/auth/{provider_id}/start"
            ))
        })?;
        // The grant must still be good (this refreshes it when due).
        self.broker().token(&session.sub, &provider.id, &[]).await?;
        let scopes = self
            .broker()
            .granted_scopes(&session.sub, &provider.id)
            .await?;
        let identity = self.identity_of(&session.sub).await;
        let issued = self.user_tokens().issue(&identity).await?;
        let profile = if session.provider == provider.id {
            session.profile.clone()
        } else {
            Profile::default()
        };
        Ok((
            SessionResponse {
                profile,
                provider_info: Some(json!({ "scope": scopes.join(" ") })),
                backstage_identity: backstage_identity(
                    &identity,
                    &issued.token,
                    issued.expires_in_seconds,
                ),
            },
            Vec::new(),
        ))
    }

    async fn guest_session(
        &self,
        headers: &HeaderMap,
    ) -> Result<(SessionResponse, Vec<String>), FlowError> {
        let guest = self
            .providers()
            .guest()
            .ok_or_else(|| {
                FlowError::NotFound(
                    "guest sign-in is off: enable it with auth.providers.guest: {}".into(),
                )
            })?
            .clone();
        let _ = headers;
        let identity = self.identity_of(&guest.user_entity_ref).await;
        let profile = Profile {
            display_name: Some("Guest".into()),
            ..Profile::default()
        };
        let cookie = self.session_cookie(&Session {
            sub: identity.user_entity_ref.clone(),
            provider: "guest".into(),
            profile: profile.clone(),
            exp: now_secs() + SESSION_SECONDS,
        })?;
        let issued = self.user_tokens().issue(&identity).await?;
        Ok((
            SessionResponse {
                profile,
                provider_info: None,
                backstage_identity: backstage_identity(
                    &identity,
                    &issued.token,
                    issued.expires_in_seconds,
                ),
            },
            vec![cookie],
        ))
    }

    /// `POST /auth/{provider}/logout`: forgets (and revokes) the grant; signs the browser out
    /// when this provider signed it in.
    pub async fn logout(
        &self,
        provider_id: &str,
        headers: &HeaderMap,
    ) -> Result<Vec<String>, FlowError> {
        let Some(session) = self.session(headers) else {
            return Ok(Vec::new());
        };
        if self.providers().oauth(provider_id).is_some() {
            self.broker().logout(&session.sub, provider_id).await?;
        }
        if session.provider == provider_id {
            return Ok(vec![self.set_cookie(SESSION_COOKIE, "", "/api/auth", 0)]);
        }
        Ok(Vec::new())
    }
}

fn check_id_token(
    provider: &OAuthProvider,
    issuer: Option<&str>,
    token: &str,
    nonce: &str,
) -> Result<(), FlowError> {
    let claims = id_token_claims(token).ok_or_else(|| {
        FlowError::Authentication(format!("{} sent a malformed ID token", provider.id))
    })?;
    let bad = |what: &str| {
        Err(FlowError::Authentication(format!(
            "{}'s ID token is not valid: {what}",
            provider.id
        )))
    };
    if let Some(issuer) = issuer
        && claims.get("iss").and_then(Value::as_str) != Some(issuer)
    {
        return bad("wrong issuer");
    }
    let aud_ok = match claims.get("aud") {
        Some(Value::String(a)) => *a == provider.client_id,
        Some(Value::Array(a)) => a.iter().any(|x| x.as_str() == Some(&provider.client_id)),
        _ => false,
    };
    if !aud_ok {
        return bad("issued for another client");
    }
    if claims
        .get("exp")
        .and_then(Value::as_i64)
        .is_some_and(|exp| exp + 30 < now_secs())
    {
        return bad("expired");
    }
    if let Some(n) = claims.get("nonce").and_then(Value::as_str)
        && n != nonce
    {
        return bad("nonce mismatch");
    }
    Ok(())
}

/// Backstage's `backstageIdentity` object.
pub fn backstage_identity(identity: &Identity, token: &str, expires_in: u64) -> Value {
    json!({
        "token": token,
        "expiresInSeconds": expires_in,
        "identity": {
            "type": "user",
            "userEntityRef": identity.user_entity_ref,
            "ownershipEntityRefs": identity.ownership_entity_refs,
        }
    })
}

fn origin_of(url: &str) -> String {
    Url::parse(url)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_else(|_| url.to_string())
}

/// The popup page: posts `message` to the opener on `origin` and closes.
fn popup_page(message: &Value, origin: &str) -> String {
    let escape = |s: String| {
        s.replace('<', "\\u003c")
            .replace('>', "\\u003e")
            .replace('&', "\\u0026")
            .replace('\u{2028}', "\\u2028")
            .replace('\u{2029}', "\\u2029")
    };
    let message = escape(message.to_string());
    let origin = escape(Value::String(origin.to_string()).to_string());
    format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Signing in</title></head><body>\n<p>You can close this window.</p>\n<script>\n(function () {{\n  var message = {message};\n  var target = window.opener || window.parent;\n  if (target && target !== window) {{ target.postMessage(message, {origin}); }}\n  window.close();\n}})();\n</script>\n</body></html>\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_popup_page_cannot_be_broken_out_of() {
        let page = popup_page(
            &json!({"error": {"message": "</script><script>alert(1)</script>"}}),
            "http://127.0.0.1:7007",
        );
        assert!(!page.contains("</script><script>"));
        assert!(page.contains("postMessage(message, \"http://127.0.0.1:7007\")"));
    }

    #[test]
    fn cookies_are_read_from_every_header() {
        let mut headers = HeaderMap::new();
        headers.append(http::header::COOKIE, "a=1; b=2".parse().unwrap());
        headers.append(http::header::COOKIE, "github-nonce=xyz".parse().unwrap());
        assert_eq!(cookie(&headers, "b"), Some("2"));
        assert_eq!(cookie(&headers, "github-nonce"), Some("xyz"));
        assert_eq!(cookie(&headers, "c"), None);
    }
}
