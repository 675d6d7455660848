//! Portico's software catalog model: Backstage-exact entity parsing and validation, entity
//! references and relations, and MCP server entities (definition, transport, auth, availability).

pub mod document;
pub mod entity;
pub mod entity_ref;
mod js;
pub mod mcp;
pub mod relations;
pub mod validation;
pub mod yaml;

use serde_json::Value;

pub use document::{DocumentReport, validate_documents};
pub use entity::Entity;
pub use entity_ref::{EntityRef, RefError};
pub use mcp::{McpAuth, McpServer, RemotePolicy, Transport};
pub use validation::{
    ValidationError, fast_path_accepts, validate_backstage, validate_backstage_exact,
};

/// Settings of validation that a deployment chooses.
#[derive(Debug, Clone, Default)]
pub struct ValidateOptions {
    /// Which MCP remote URLs are acceptable.
    pub remote_policy: RemotePolicy,
}

/// The outcome of validating one entity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntityReport {
    /// Every problem found; empty when the entity is valid.
    pub errors: Vec<ValidationError>,
    /// For MCP server entities: transport, auth method and availability.
    pub mcp: Option<McpServer>,
}

impl EntityReport {
    /// Whether the entity has no problems.
    pub fn is_valid(&self) -> bool {
        self.errors.is_empty()
    }
}

/// Validates an entity: the stock Backstage rules first, then Portico's MCP server rules.
pub fn validate_entity(value: &Value, options: &ValidateOptions) -> EntityReport {
    let mut errors = validate_backstage(value);
    let mcp = Entity::new(value)
        .filter(Entity::is_mcp_server)
        .map(|entity| {
            let valid = errors.is_empty();
            let (server, problems) = mcp::inspect(&entity, &options.remote_policy, valid);
            if valid {
                errors.extend(problems.into_iter().map(ValidationError::input));
            }
            server
        });
    EntityReport { errors, mcp }
}

#[cfg(feature = "service")]
pub mod service;
