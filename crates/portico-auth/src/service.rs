//! The auth service: everything identity and credentials, built once from configuration and
//! shared by the HTTP layer, the credential source and the actions server.

use std::sync::Arc;

use portico_store::Store;

use crate::AuthError;
use crate::broker::{Broker, BrokerOptions, ScopeSource};
use crate::config::AuthConfig;
use crate::crypto::Cipher;
use crate::identity::Principal;
use crate::keys::SigningKeys;
use crate::plugin_tokens::PluginTokens;
use crate::providers::Providers;
use crate::providers::oauth::http_client;
use crate::signin::{self, UserDirectory};
use crate::static_tokens::StaticTokens;
use crate::user_tokens::UserTokens;

/// How the auth service is set up.
pub struct AuthOptions {
    /// `auth.*`.
    pub config: AuthConfig,
    /// `backend.baseUrl`.
    pub base_url: String,
    /// `backend.auth.externalAccess` static tokens: (token, subject).
    pub static_tokens: Vec<(String, String)>,
    /// Seals tokens and cookies.
    pub cipher: Cipher,
    /// Where keys and grants live.
    pub store: Store,
    /// Finds users for sign-in.
    pub directory: Arc<dyn UserDirectory>,
    /// The scopes each user's servers need.
    pub scopes: Arc<dyn ScopeSource>,
    /// Refresh provider tokens this many seconds before they expire.
    pub refresh_ahead_seconds: i64,
    /// Whether Portico listens on loopback only (guest sign-in needs it, unless allowed).
    pub listens_on_loopback: bool,
}

/// Identity and credentials for the whole server.
#[derive(Clone)]
pub struct Auth {
    inner: Arc<Inner>,
}

struct Inner {
    base_url: String,
    auth_base: String,
    secure_cookies: bool,
    cipher: Cipher,
    http: reqwest::Client,
    keys: SigningKeys,
    users: UserTokens,
    plugins: PluginTokens,
    statics: StaticTokens,
    providers: Arc<Providers>,
    broker: Broker,
    directory: Arc<dyn UserDirectory>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("base_url", &self.inner.base_url)
            .field("providers", &self.inner.providers.ids())
            .finish_non_exhaustive()
    }
}

impl Auth {
    /// Builds the service; configuration mistakes come back naming the key to fix.
    pub fn new(options: AuthOptions) -> Result<Self, AuthError> {
        options.config.check()?;
        let base_url = options.base_url.trim_end_matches('/').to_string();
        let http = http_client()?;
        let providers = Arc::new(Providers::from_config(&options.config, &http)?);
        if let Some(guest) = providers.guest()
            && !options.listens_on_loopback
            && !guest.allow_outside_development
        {
            return Err(AuthError::Config(
                "auth.providers.guest signs anyone in without credentials, and Portico listens beyond loopback: remove the guest provider, listen on 127.0.0.1, or set auth.providers.guest.dangerouslyAllowOutsideDevelopment: true".into(),
            ));
        }
        for (id, config) in options.config.provider_configs()? {
            if let Some(sign_in) = &config.sign_in {
                signin::check(&id, sign_in).map_err(AuthError::Config)?;
            }
        }
        let auth_base = format!("{base_url}/api/auth");
        let keys = SigningKeys::new(options.store.clone(), options.cipher.clone());
        let users = UserTokens::new(
            keys.clone(),
            auth_base.clone(),
            options.config.backstage_token_expiration.seconds,
        );
        let plugins = PluginTokens::new(keys.clone(), users.clone());
        let broker = Broker::new(BrokerOptions {
            store: options.store,
            vault: crate::vault::Vault::new(options.cipher.clone()),
            providers: providers.clone(),
            http: http.clone(),
            auth_base: auth_base.clone(),
            refresh_ahead_seconds: options.refresh_ahead_seconds,
            scopes: options.scopes,
        });
        Ok(Self {
            inner: Arc::new(Inner {
                secure_cookies: base_url.starts_with("https://"),
                base_url,
                auth_base,
                cipher: options.cipher,
                http,
                keys,
                users,
                plugins,
                statics: StaticTokens::new(options.static_tokens),
                providers,
                broker,
                directory: options.directory,
            }),
        })
    }

    /// Who a bearer token stands for, when presented to plugin `plugin` (`catalog`,
    /// `mcp-actions` …): a static token, a user token, or a plugin token addressed to it.
    pub async fn authenticate(&self, token: &str, plugin: &str) -> Option<Principal> {
        if let Some(p) = self.inner.statics.authenticate(token) {
            return Some(p);
        }
        let header = jsonwebtoken::decode_header(token).ok()?;
        let result = match header.typ.as_deref() {
            Some(crate::user_tokens::USER_TOKEN_TYPE) => self
                .inner
                .users
                .verify(token)
                .await
                .map(Principal::from_identity),
            Some(crate::plugin_tokens::PLUGIN_TOKEN_TYPE) => {
                self.inner.plugins.verify(token, plugin).await
            }
            _ => return None,
        };
        match result {
            Ok(p) => Some(p),
            Err(e) => {
                tracing::debug!(error = %e, "bearer token refused");
                None
            }
        }
    }

    /// The public keys of Portico's tokens, as a JWK set.
    pub async fn jwks(&self) -> Result<serde_json::Value, AuthError> {
        self.inner.keys.jwks().await
    }

    /// Issues and verifies user tokens.
    pub fn user_tokens(&self) -> &UserTokens {
        &self.inner.users
    }

    /// Issues and verifies plugin tokens.
    pub fn plugin_tokens(&self) -> &PluginTokens {
        &self.inner.plugins
    }

    /// The providers.
    pub fn providers(&self) -> &Providers {
        &self.inner.providers
    }

    /// The token broker.
    pub fn broker(&self) -> &Broker {
        &self.inner.broker
    }

    /// `backend.baseUrl`, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.inner.base_url
    }

    /// `{baseUrl}/api/auth`.
    pub fn auth_base(&self) -> &str {
        &self.inner.auth_base
    }

    pub(crate) fn secure_cookies(&self) -> bool {
        self.inner.secure_cookies
    }

    pub(crate) fn cipher(&self) -> &Cipher {
        &self.inner.cipher
    }

    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.inner.http
    }

    /// Where users are looked up.
    pub fn directory(&self) -> &dyn UserDirectory {
        self.inner.directory.as_ref()
    }
}
