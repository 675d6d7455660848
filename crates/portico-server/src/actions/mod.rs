//! The Portal Actions Portico serves: each domain's actions, registered into one registry that
//! the MCP server at `/api/mcp-actions/v1` and the actions HTTP API expose.

mod auth;
mod catalog;

use std::sync::Arc;

use portico_catalog::service::{Catalog, CatalogError};
use portico_mcp::actions::{ActionError, ActionsRegistry, RegistryError};

/// The catalog entity of the built-in actions server, as the product page's third example
/// registers it: plugin authentication, served at `{baseUrl}/api/mcp-actions/v1`.
pub fn builtin_entity(base_url: &str) -> serde_json::Value {
    let url = format!("{}/api/mcp-actions/v1", base_url.trim_end_matches('/'));
    let definition = serde_json::json!({
        "name": "dev.portico/mcp-actions",
        "description": "Portico's built-in Portal Actions: the software catalog and who you are.",
        "version": env!("CARGO_PKG_VERSION"),
        "remotes": [{"type": "streamable-http", "url": url}],
    });
    serde_json::json!({
        "apiVersion": "backstage.io/v1alpha1",
        "kind": "API",
        "metadata": {
            "name": "mcp-actions",
            "title": "Portal Actions",
            "description": "Portico's built-in actions exposed via MCP: read and query the catalog, validate and register entities, list MCP servers, and who am I.",
            "annotations": {
                "mcp.spotify.com/schema-version": "2025-09-29",
                "mcp.spotify.com/auth-plugin-id": "mcp-actions",
            },
        },
        "spec": {
            "type": "mcp-server",
            "lifecycle": "production",
            "owner": "portico",
            "definition": definition.to_string(),
        },
    })
}

/// Every action Portico serves.
pub fn registry(catalog: &Catalog) -> Result<Arc<ActionsRegistry>, RegistryError> {
    let mut registry = ActionsRegistry::new();
    for action in catalog::actions(catalog) {
        registry.register(Arc::new(action))?;
    }
    for action in auth::actions() {
        registry.register(Arc::new(action))?;
    }
    Ok(Arc::new(registry))
}

/// A catalog error in the actions' vocabulary (the same Backstage names).
fn action_error(e: CatalogError) -> ActionError {
    let message = e.to_string();
    match e {
        CatalogError::NotFound(_) => ActionError::not_found(message),
        CatalogError::Conflict(_) => ActionError::conflict(message),
        CatalogError::Input(_) | CatalogError::Invalid { .. } => ActionError::input(message),
        CatalogError::NotAllowed(_) => ActionError::not_allowed(message),
        CatalogError::Database(cause) => {
            tracing::error!(error = %cause, "catalog storage failed in an action");
            ActionError::internal("the catalog's storage failed; see the server log")
        }
    }
}
