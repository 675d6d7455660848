//! The catalog as the auth service's user directory (User entities for sign-in, with their
//! groups for ownership) and as its scope source (the scopes the MCP servers need from each
//! provider, so one consent covers them all).

use portico_auth::Identity;
use portico_auth::broker::{ScopeSource, ScopesFuture};
use portico_auth::signin::{LookupFuture, UserDirectory};
use portico_catalog::McpAuth;
use portico_catalog::service::Catalog;
use portico_catalog::service::query::EntitiesRequest;
use serde_json::Value;

/// The catalog, read for auth.
#[derive(Clone)]
pub struct CatalogDirectory {
    catalog: Catalog,
}

impl CatalogDirectory {
    /// Reads `catalog`.
    pub fn new(catalog: Catalog) -> Self {
        Self { catalog }
    }

    async fn users_where(&self, filter: String) -> Option<Value> {
        let req = EntitiesRequest::from_query([("filter", filter.as_str())]).ok()?;
        let page = self
            .catalog
            .entities_page(&req)
            .await
            .map_err(|e| tracing::warn!(error = %e, "user lookup failed"))
            .ok()?;
        match page.items.len() {
            1 => page.items.into_iter().next(),
            0 => None,
            n => {
                tracing::warn!(
                    filter,
                    matches = n,
                    "several users match a sign-in; refusing to pick one"
                );
                None
            }
        }
    }
}

/// The identity of a User entity: its ref and the groups it is a member of.
fn identity_of(entity: &Value) -> Option<Identity> {
    let namespace = entity
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("default");
    let name = entity.pointer("/metadata/name").and_then(Value::as_str)?;
    let user_ref = format!("user:{namespace}/{name}").to_lowercase();
    let mut refs = vec![user_ref.clone()];
    for relation in entity
        .get("relations")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if relation.get("type").and_then(Value::as_str) == Some("memberOf")
            && let Some(target) = relation.get("targetRef").and_then(Value::as_str)
            && !refs.iter().any(|r| r == target)
        {
            refs.push(target.to_string());
        }
    }
    Some(Identity {
        user_entity_ref: user_ref,
        ownership_entity_refs: refs,
    })
}

impl UserDirectory for CatalogDirectory {
    fn by_email<'a>(&'a self, email: &'a str) -> LookupFuture<'a> {
        Box::pin(async move {
            if email.contains(',') {
                return None;
            }
            let user = self
                .users_where(format!("kind=user,spec.profile.email={email}"))
                .await?;
            identity_of(&user)
        })
    }

    fn by_ref<'a>(&'a self, user_ref: &'a str) -> LookupFuture<'a> {
        Box::pin(async move {
            let entity = self.catalog.entity_by_ref(user_ref).await.ok()??;
            let kind = entity.get("kind").and_then(Value::as_str)?;
            kind.eq_ignore_ascii_case("user")
                .then(|| identity_of(&entity))
                .flatten()
        })
    }
}

impl CatalogDirectory {
    /// The servers `user` enabled in the assistant (lowercased refs).
    async fn enabled(&self, user: &str) -> Vec<String> {
        let rows: Result<Vec<(String,)>, _> = portico_store::sqlx::query_as(
            "SELECT server_ref FROM assistant_enablements WHERE user_ref = $1 AND enabled = 1",
        )
        .bind(user)
        .fetch_all(self.catalog.store().pool())
        .await;
        rows.map(|r| r.into_iter().map(|(s,)| s).collect())
            .unwrap_or_else(|e| {
                tracing::warn!(error = %e, "cannot read enabled servers");
                Vec::new()
            })
    }
}

impl ScopeSource for CatalogDirectory {
    /// For a signed-in user, the servers they enabled; for a sign-in (no user yet), every
    /// available server, so the first consent covers whatever they will enable.
    fn scopes_for<'a>(&'a self, user: Option<&'a str>, provider: &'a str) -> ScopesFuture<'a> {
        Box::pin(async move {
            let servers = match self.catalog.mcp_servers().await {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot list MCP servers for their scopes");
                    return Vec::new();
                }
            };
            let enabled = match user {
                Some(u) => Some(self.enabled(u).await),
                None => None,
            };
            let counts = |ref_: &str| {
                enabled
                    .as_ref()
                    .is_none_or(|e| e.iter().any(|r| r.eq_ignore_ascii_case(ref_)))
            };
            let mut scopes: Vec<String> = Vec::new();
            for entry in servers
                .iter()
                .filter(|e| e.server.available && counts(&e.entity_ref))
            {
                if let Some(McpAuth::OAuth {
                    provider: p,
                    scopes: s,
                    ..
                }) = &entry.server.auth
                    && p == provider
                {
                    for scope in s {
                        if !scopes.contains(scope) {
                            scopes.push(scope.clone());
                        }
                    }
                }
            }
            scopes
        })
    }
}
