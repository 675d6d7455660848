//! The MCP registry view: every MCP server entity of the catalog, computed on the final (overlaid)
//! entity, with whether it is available and why not.

use portico_store::sqlx::{self, Row};
use serde::Serialize;

use super::{Catalog, CatalogError};
use crate::{Entity, McpServer, validate_entity};

/// One MCP server as the assistant and the UI see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RegistryEntry {
    /// `api:namespace/name`.
    pub entity_ref: String,
    /// `metadata.title`, else the name.
    pub title: String,
    /// `metadata.description`.
    pub description: Option<String>,
    /// `spec.owner`.
    pub owner: Option<String>,
    /// Availability, transport and auth.
    #[serde(flatten)]
    pub server: McpServer,
}

impl Catalog {
    /// Every MCP server entity, available or not, ordered by reference.
    pub async fn mcp_servers(&self) -> Result<Vec<RegistryEntry>, CatalogError> {
        let refs: Vec<String> = sqlx::query(
            "SELECT s.entity_ref FROM catalog_search s JOIN catalog_search k ON k.entity_ref = s.entity_ref
             WHERE s.key = 'spec.type' AND s.value = 'mcp-server' AND k.key = 'kind' AND k.value = 'api'
             ORDER BY s.entity_ref",
        )
        .fetch_all(self.store.pool())
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
        let entities = self.load(&refs).await?;
        let mut out = Vec::new();
        for entity_ref in refs {
            let Some(value) = entities.get(&entity_ref) else {
                continue;
            };
            let Some(entity) = Entity::new(value) else {
                continue;
            };
            let mut clean = value.clone();
            if let Some(root) = clean.as_object_mut() {
                root.remove("relations");
                root.remove("status");
            }
            let Some(server) = validate_entity(&clean, &self.options.validate).mcp else {
                continue;
            };
            let metadata = entity.metadata();
            out.push(RegistryEntry {
                title: metadata
                    .get("title")
                    .and_then(|t| t.as_str())
                    .unwrap_or(entity.name())
                    .to_string(),
                description: metadata
                    .get("description")
                    .and_then(|d| d.as_str())
                    .map(str::to_string),
                owner: entity.spec_str("owner").map(str::to_string),
                entity_ref,
                server,
            });
        }
        Ok(out)
    }
}
