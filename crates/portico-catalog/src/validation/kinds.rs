//! The kind step: one of the built-in kinds must accept the entity (Backstage's
//! `BuiltinKindsEntityProcessor`), plus the upstream alpha shape of MCP server APIs.

use serde_json::Value;

use super::schema::first_error;
use super::schemas::{API_MCP_SERVER, KIND_API_VERSIONS, KINDS};
use crate::entity::Entity;

/// `Ok` when a built-in kind schema accepts the entity; otherwise Backstage's message.
pub fn check(value: &Value, entity: &Entity<'_>) -> Result<(), String> {
    let schema = KIND_API_VERSIONS
        .contains(&entity.api_version())
        .then(|| KINDS.iter().find(|(kind, _)| *kind == entity.kind()))
        .flatten()
        .map(|(_, schema)| schema);
    let Some(schema) = schema else {
        return Err(format!(
            "No processor recognized the entity {} as valid, possibly caused by a foreign kind or apiVersion",
            entity.entity_ref()
        ));
    };
    let Some(error) = first_error(schema, value) else {
        return Ok(());
    };
    if entity.is_mcp_server() {
        // An MCP server may use the upstream shape: `spec.remotes` and no definition.
        let Some(mcp_error) = first_error(&API_MCP_SERVER, value) else {
            return Ok(());
        };
        let spec = entity.spec();
        let upstream_shape =
            spec.is_some_and(|s| s.contains_key("remotes") && !s.contains_key("definition"));
        if upstream_shape {
            return Err(mcp_error.with_params());
        }
    }
    Err(error.with_params())
}
