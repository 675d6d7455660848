//! Which MCP servers each user enabled, and how each available server looks to them: enabled,
//! signed in or not, and what using it risks.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use portico_auth::Auth;
use portico_catalog::McpAuth;
use portico_catalog::service::{Catalog, RegistryEntry};
use portico_store::Store;
use portico_store::sqlx;
use serde::Serialize;
use serde_json::{Value, json};

use crate::{AssistantError, now_ms};

/// The built-in actions server, enabled for everyone unless they turn it off.
pub const BUILTIN_SERVER: &str = "api:default/mcp-actions";

/// A user's sign-in state for a server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "camelCase")]
pub enum AuthStatus {
    /// The server needs no user credentials (none, or a plugin token).
    None,
    /// The user's grant covers the server's scopes.
    Connected,
    /// The user must sign in (again, or for more scopes) at the provider.
    #[serde(rename_all = "camelCase")]
    LoginNeeded {
        /// The provider id.
        provider: String,
        /// Where to start.
        login_url: String,
    },
    /// The provider the server names is not configured in Portico.
    #[serde(rename_all = "camelCase")]
    Unavailable {
        /// Why.
        reason: String,
    },
}

/// What a server's tools are known to do, once it has been reached.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KnownTools {
    /// How many tools it has.
    pub count: usize,
    /// How many are not marked read-only.
    pub writes: usize,
}

/// The risks of using a server, per the product page: it may change things, a third party sees
/// the queries, and its availability is not Portico's to guarantee.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Risk {
    /// Whether any tool may change things ("unknown" until reached counts as yes).
    pub writes_possible: bool,
    /// Whether the server runs outside Portico, so a third party sees the queries.
    pub third_party: bool,
    /// Whether Portico cannot vouch for the server being up.
    pub availability_not_guaranteed: bool,
    /// Where this assessment comes from: `tools` (annotations) or `entity`.
    pub source: &'static str,
    /// The same, in one sentence.
    pub summary: String,
}

/// One server as a user sees it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerState {
    /// The catalog entry (ref, title, description, availability, transport, auth).
    #[serde(flatten)]
    pub entry: RegistryEntry,
    /// Whether the user enabled it.
    pub enabled: bool,
    /// Why an enabled server is skipped (it stopped being available).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped_because: Option<String>,
    /// The user's sign-in state for it.
    pub auth_status: AuthStatus,
    /// What using it risks.
    pub risk: Risk,
}

/// Enablements in the store, and what runs learned of servers' tools.
#[derive(Clone)]
pub struct Enablement {
    store: Store,
    catalog: Catalog,
    auth: Auth,
    known: Arc<Mutex<HashMap<String, KnownTools>>>,
}

impl std::fmt::Debug for Enablement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Enablement")
    }
}

impl Enablement {
    /// Enablement over the store, the catalog's servers and the auth service.
    pub fn new(store: Store, catalog: Catalog, auth: Auth) -> Self {
        Self {
            store,
            catalog,
            auth,
            known: Arc::default(),
        }
    }

    /// Records what a server's tools do, from a listing.
    pub fn learn(&self, server: &str, tools: KnownTools) {
        self.known
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(server.to_lowercase(), tools);
    }

    async fn choices(&self, user: &str) -> Result<HashMap<String, bool>, AssistantError> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT server_ref, enabled FROM assistant_enablements WHERE user_ref = $1",
        )
        .bind(user)
        .fetch_all(self.store.pool())
        .await?;
        Ok(rows.into_iter().map(|(s, e)| (s, e != 0)).collect())
    }

    /// Every MCP server of the catalog with `user`'s state: the available ones, and the
    /// unavailable ones the user had enabled (shown as skipped, with why).
    pub async fn servers(&self, user: &str) -> Result<Vec<ServerState>, AssistantError> {
        let choices = self.choices(user).await?;
        let entries = self.catalog.mcp_servers().await?;
        let mut out = Vec::new();
        for entry in entries {
            let key = entry.entity_ref.to_lowercase();
            let enabled = choices.get(&key).copied().unwrap_or(key == BUILTIN_SERVER);
            if !entry.server.available && !enabled {
                continue;
            }
            let skipped_because = (!entry.server.available).then(|| {
                format!(
                    "no longer available: {}",
                    entry
                        .server
                        .reason
                        .clone()
                        .unwrap_or_else(|| "unknown reason".into())
                )
            });
            let auth_status = self.auth_status(user, &entry).await;
            let risk = self.risk(&entry);
            out.push(ServerState {
                entry,
                enabled,
                skipped_because,
                auth_status,
                risk,
            });
        }
        Ok(out)
    }

    /// The servers a run for `user` uses: enabled and available.
    pub async fn enabled_servers(&self, user: &str) -> Result<Vec<RegistryEntry>, AssistantError> {
        Ok(self
            .servers(user)
            .await?
            .into_iter()
            .filter(|s| s.enabled && s.skipped_because.is_none())
            .map(|s| s.entry)
            .collect())
    }

    /// Turns a server on or off for `user`; only available servers can be turned on.
    pub async fn set(&self, user: &str, server: &str, enabled: bool) -> Result<(), AssistantError> {
        let key = server.to_lowercase();
        let entries = self.catalog.mcp_servers().await?;
        let entry = entries
            .iter()
            .find(|e| e.entity_ref.to_lowercase() == key)
            .ok_or_else(|| {
                AssistantError::NotFound(format!("{server} is not an MCP server in the catalog"))
            })?;
        if enabled && !entry.server.available {
            return Err(AssistantError::Input(format!(
                "{server} is not available: {}",
                entry.server.reason.clone().unwrap_or_default()
            )));
        }
        let mut tx = self.store.begin_write().await?;
        sqlx::query(
            "INSERT INTO assistant_enablements (user_ref, server_ref, enabled, updated_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (user_ref, server_ref) DO UPDATE SET enabled = excluded.enabled, updated_at = excluded.updated_at",
        )
        .bind(user)
        .bind(&key)
        .bind(i64::from(enabled))
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// `user`'s sign-in state for the server `entry`.
    pub async fn auth_status(&self, user: &str, entry: &RegistryEntry) -> AuthStatus {
        let Some(McpAuth::OAuth {
            provider, scopes, ..
        }) = &entry.server.auth
        else {
            return AuthStatus::None;
        };
        let Some(oauth) = self.auth.providers().oauth(provider) else {
            return AuthStatus::Unavailable {
                reason: format!("the auth provider \"{provider}\" is not configured in Portico"),
            };
        };
        let broker = self.auth.broker();
        let granted = broker
            .granted_scopes(user, provider)
            .await
            .unwrap_or_default();
        let missing = scopes
            .iter()
            .map(|s| oauth.scope_style.apply(s))
            .any(|s| !granted.contains(&s));
        if !granted.is_empty() && !missing {
            return AuthStatus::Connected;
        }
        let wanted = broker
            .consent_scopes(Some(user), oauth, &granted, scopes)
            .await;
        AuthStatus::LoginNeeded {
            provider: provider.clone(),
            login_url: portico_auth::broker::login_url(self.auth.auth_base(), provider, &wanted),
        }
    }

    fn risk(&self, entry: &RegistryEntry) -> Risk {
        let builtin = entry.entity_ref.eq_ignore_ascii_case(BUILTIN_SERVER);
        let known = self
            .known
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&entry.entity_ref.to_lowercase())
            .cloned();
        let (writes_possible, source) = match &known {
            Some(k) => (k.writes > 0, "tools"),
            None => (true, "entity"),
        };
        let mut parts = Vec::new();
        parts.push(match &known {
            Some(k) if k.writes == 0 => format!("all {} tools only read", k.count),
            Some(k) => format!("{} of {} tools can change things", k.writes, k.count),
            None => "may change things (its tools are not known yet)".to_string(),
        });
        if !builtin {
            parts.push("the server's operator sees your queries".into());
            parts.push("its availability is not guaranteed by Portico".into());
        }
        Risk {
            writes_possible,
            third_party: !builtin,
            availability_not_guaranteed: !builtin,
            source,
            summary: parts.join("; "),
        }
    }
}

/// The JSON body of `GET /api/assistant/servers`.
pub fn servers_json(servers: &[ServerState]) -> Value {
    json!({ "items": servers })
}
