//! The credential source the MCP client asks before each call: per server, from its catalog
//! annotations — nothing, the user's OAuth token from the broker, or a plugin token whose
//! audience is the server's plugin and which carries the user's limited token.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use portico_auth::{Auth, BrokerError};
use portico_catalog::McpAuth;
use portico_catalog::service::Catalog;
use portico_mcp::{Credential, CredentialError, CredentialFuture, Credentials};
use secrecy::ExposeSecret;

/// A plugin token is reused this long (it lives an hour), so the MCP pool keeps one session per
/// user and plugin instead of opening one per call.
const PLUGIN_TOKEN_REUSE: std::time::Duration = std::time::Duration::from_secs(30 * 60);

type PluginTokenCache = Arc<Mutex<HashMap<(String, String), (String, Instant)>>>;

/// Credentials for MCP servers registered in the catalog.
#[derive(Clone)]
pub struct CatalogCredentials {
    catalog: Catalog,
    auth: Auth,
    plugin_tokens: PluginTokenCache,
}

impl CatalogCredentials {
    /// Reads servers from `catalog`, tokens from `auth`.
    pub fn new(catalog: Catalog, auth: Auth) -> Self {
        Self {
            catalog,
            auth,
            plugin_tokens: Arc::default(),
        }
    }

    /// How `server` authenticates, from its entity.
    async fn method(&self, server: &str) -> Result<McpAuth, CredentialError> {
        let servers = self
            .catalog
            .mcp_servers()
            .await
            .map_err(|e| CredentialError::Store(e.to_string()))?;
        let entry = servers
            .into_iter()
            .find(|e| e.entity_ref.eq_ignore_ascii_case(server))
            .ok_or_else(|| {
                CredentialError::Store(format!("{server} is not an MCP server in the catalog"))
            })?;
        entry
            .server
            .auth
            .ok_or_else(|| CredentialError::Store(format!("{server} has invalid auth annotations")))
    }

    async fn fetch(&self, user: &str, server: &str) -> Result<Option<Credential>, CredentialError> {
        match self.method(server).await? {
            McpAuth::None => Ok(None),
            McpAuth::OAuth {
                provider, scopes, ..
            } => match self.auth.broker().token(user, &provider, &scopes).await {
                Ok(token) => Credential::bearer(token.expose_secret()).map(Some),
                Err(BrokerError::LoginRequired {
                    provider,
                    login_url,
                    reason,
                }) => Err(CredentialError::SignInRequired {
                    provider,
                    reason: reason.to_string(),
                    login_url,
                }),
                Err(e) => Err(CredentialError::Store(e.to_string())),
            },
            McpAuth::Plugin { plugin_id } => {
                let key = (user.to_string(), plugin_id.clone());
                let cached = self
                    .plugin_tokens
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get(&key)
                    .filter(|(_, at)| at.elapsed() < PLUGIN_TOKEN_REUSE)
                    .map(|(t, _)| t.clone());
                if let Some(token) = cached {
                    return Credential::bearer(token).map(Some);
                }
                let identity = self.auth.identity_of(user).await;
                let token = self
                    .auth
                    .plugin_tokens()
                    .issue(&plugin_id, user.starts_with("user:").then_some(&identity))
                    .await
                    .map_err(|e| CredentialError::Store(e.to_string()))?;
                let mut cache = self.plugin_tokens.lock().unwrap_or_else(|p| p.into_inner());
                cache.retain(|_, (_, at)| at.elapsed() < PLUGIN_TOKEN_REUSE);
                cache.insert(key, (token.clone(), Instant::now()));
                Credential::bearer(token).map(Some)
            }
        }
    }
}

impl Credentials for CatalogCredentials {
    fn credential<'a>(&'a self, user: &'a str, server: &'a str) -> CredentialFuture<'a> {
        Box::pin(self.fetch(user, server))
    }
}
