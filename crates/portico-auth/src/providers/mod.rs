//! The configured providers: OAuth providers (sign-in and/or token sources for MCP servers),
//! proxy sign-in providers and the guest provider, each under its id.

pub mod oauth;
pub mod presets;

use std::collections::BTreeMap;
use std::sync::Arc;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use tokio::sync::OnceCell;

use crate::AuthError;
use crate::config::{AuthConfig, ProviderConfig, SignInConfig};
use crate::proxy::ProxyProvider;
use presets::{EndpointSource, Endpoints, PROXY_KINDS, ScopeStyle};

/// A user's profile as a provider describes it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    /// Email address, when the provider shares it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// The name to show.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Avatar URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub picture: Option<String>,
    /// The provider's user name (login), when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
}

/// How the client authenticates at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// HTTP Basic with client id and secret.
    Basic,
    /// Client id and secret in the form body.
    Post,
}

/// An OAuth 2.0 / OIDC provider.
pub struct OAuthProvider {
    /// The id it is configured under (`github`, `okta`, `corp-sso` …).
    pub id: String,
    /// Its type (`github`, `oidc` …).
    pub kind: &'static str,
    /// OAuth client id.
    pub client_id: String,
    pub(crate) client_secret: SecretString,
    /// How the client authenticates at the token endpoint.
    pub client_auth: ClientAuth,
    /// Scopes every authorization asks for.
    pub default_scopes: Vec<String>,
    /// How the provider writes scopes.
    pub scope_style: ScopeStyle,
    /// Extra authorization-request parameters.
    pub authorize_params: Vec<(&'static str, String)>,
    /// Where users come back to, when configured explicitly.
    pub callback_url: Option<String>,
    /// How a profile becomes a Portico user; `None` when the provider only connects accounts.
    pub sign_in: Option<SignInConfig>,
    source: EndpointSource,
    config: ProviderConfig,
    discovered: OnceCell<Arc<Endpoints>>,
}

impl std::fmt::Debug for OAuthProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthProvider")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

impl OAuthProvider {
    /// The scope list as this provider expects it.
    pub fn provider_scopes(&self, scopes: &[String]) -> Vec<String> {
        scopes.iter().map(|s| self.scope_style.apply(s)).collect()
    }

    /// The endpoints, reading the discovery document on first use.
    pub async fn endpoints(&self, http: &reqwest::Client) -> Result<Arc<Endpoints>, AuthError> {
        self.discovered
            .get_or_try_init(|| async {
                match &self.source {
                    EndpointSource::Fixed(e) => Ok(Arc::new(e.clone())),
                    EndpointSource::Discovery(url) => {
                        let mut e = oauth::discover(http, url).await?;
                        presets::override_endpoints(&mut e, &self.config);
                        Ok(Arc::new(e))
                    }
                }
            })
            .await
            .cloned()
    }
}

/// The guest provider: signs in as one fixed user with no credentials, for local use.
#[derive(Debug, Clone)]
pub struct GuestProvider {
    /// The user it signs in as.
    pub user_entity_ref: String,
    /// Whether it may be used when Portico listens beyond loopback.
    pub allow_outside_development: bool,
}

/// How a provider signs users in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// The guest provider: no credentials.
    Guest,
    /// An OAuth 2.0 / OIDC provider: the popup flow.
    #[serde(rename = "oauth")]
    OAuth,
    /// A proxy in front of Portico vouches for the user: refresh is enough.
    Proxy,
}

/// One provider as the sign-in page lists it; nothing secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProviderListing {
    /// The id it is configured under.
    pub id: String,
    /// How it signs in.
    pub kind: ProviderKind,
    /// Whether it signs users in (otherwise it only connects accounts for MCP servers).
    pub sign_in: bool,
}

/// Every configured provider.
#[derive(Debug, Default)]
pub struct Providers {
    oauth: BTreeMap<String, Arc<OAuthProvider>>,
    proxy: BTreeMap<String, Arc<ProxyProvider>>,
    guest: Option<GuestProvider>,
}

impl Providers {
    /// Builds every provider in `config`; errors name the provider and the option to fix.
    pub fn from_config(config: &AuthConfig, http: &reqwest::Client) -> Result<Self, AuthError> {
        let mut out = Providers::default();
        for (id, c) in config.provider_configs()? {
            let kind = c.kind.clone().unwrap_or_else(|| id.clone());
            if kind == "guest" {
                out.guest = Some(GuestProvider {
                    user_entity_ref: c
                        .user_entity_ref
                        .clone()
                        .unwrap_or_else(|| "user:development/guest".into()),
                    allow_outside_development: c.dangerously_allow_outside_development,
                });
            } else if PROXY_KINDS.contains(&kind.as_str()) {
                let proxy = ProxyProvider::from_config(&id, &kind, &c, http.clone())?;
                out.proxy.insert(id, Arc::new(proxy));
            } else {
                let provider = oauth_provider(&id, &kind, c)?;
                out.oauth.insert(id, Arc::new(provider));
            }
        }
        Ok(out)
    }

    /// The OAuth provider configured under `id`.
    pub fn oauth(&self, id: &str) -> Option<&Arc<OAuthProvider>> {
        self.oauth.get(id)
    }

    /// The proxy sign-in provider configured under `id`.
    pub fn proxy(&self, id: &str) -> Option<&Arc<ProxyProvider>> {
        self.proxy.get(id)
    }

    /// The guest provider, when enabled.
    pub fn guest(&self) -> Option<&GuestProvider> {
        self.guest.as_ref()
    }

    /// Every configured provider as a sign-in page shows it: id, kind, whether it signs users in.
    pub fn list(&self) -> Vec<ProviderListing> {
        let oauth = self.oauth.values().map(|p| ProviderListing {
            id: p.id.clone(),
            kind: ProviderKind::OAuth,
            sign_in: p.sign_in.is_some(),
        });
        let proxy = self.proxy.keys().map(|id| ProviderListing {
            id: id.clone(),
            kind: ProviderKind::Proxy,
            sign_in: true,
        });
        let guest = self.guest.iter().map(|_| ProviderListing {
            id: "guest".into(),
            kind: ProviderKind::Guest,
            sign_in: true,
        });
        let mut out: Vec<ProviderListing> = oauth.chain(proxy).chain(guest).collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out
    }

    /// Ids of every configured provider, for listings and error messages.
    pub fn ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .oauth
            .keys()
            .chain(self.proxy.keys())
            .cloned()
            .collect();
        if self.guest.is_some() {
            ids.push("guest".into());
        }
        ids.sort();
        ids
    }
}

fn oauth_provider(id: &str, kind: &str, c: ProviderConfig) -> Result<OAuthProvider, AuthError> {
    let preset = presets::preset(id, kind, &c)?;
    let client_id = c
        .client_id
        .clone()
        .ok_or_else(|| AuthError::Config(format!("auth.providers.{id}.clientId is required")))?;
    let client_secret = c.client_secret.clone().ok_or_else(|| {
        AuthError::Config(format!(
            "auth.providers.{id}.clientSecret is required (use ${{VAR}} to read it from the environment)"
        ))
    })?;
    let client_auth = match c.token_endpoint_auth_method.as_deref() {
        None | Some("client_secret_basic") => ClientAuth::Basic,
        Some("client_secret_post") => ClientAuth::Post,
        Some(other) => {
            return Err(AuthError::Config(format!(
                "auth.providers.{id}.tokenEndpointAuthMethod \"{other}\" is not supported: use client_secret_basic or client_secret_post"
            )));
        }
    };
    let mut default_scopes: Vec<String> = preset
        .default_scopes
        .iter()
        .map(|s| s.to_string())
        .collect();
    for s in &c.additional_scopes {
        if !default_scopes.contains(s) {
            default_scopes.push(s.clone());
        }
    }
    Ok(OAuthProvider {
        id: id.to_string(),
        kind: preset.kind,
        client_id,
        client_secret: SecretString::from(client_secret),
        client_auth,
        default_scopes,
        scope_style: preset.scope_style,
        authorize_params: preset.authorize_params,
        callback_url: c.callback_url.clone(),
        sign_in: c.sign_in.clone(),
        source: preset.endpoints,
        config: c,
        discovered: OnceCell::new(),
    })
}
