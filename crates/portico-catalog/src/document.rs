//! Validating catalog files: every YAML document gets its own report, with the line it starts on.

use serde_json::Value;

use crate::{Entity, McpServer, ValidateOptions, ValidationError, validate_entity, yaml};

/// The result for one document of a file.
#[derive(Debug, Clone, PartialEq)]
pub struct DocumentReport {
    /// Position of the document in the file, from 0.
    pub index: usize,
    /// Line (from 1) where the document starts.
    pub line: usize,
    /// `kind:namespace/name` when the document names an entity.
    pub entity_ref: Option<String>,
    /// Every problem; empty when the document is a valid entity.
    pub errors: Vec<ValidationError>,
    /// MCP server details, for MCP server entities.
    pub mcp: Option<McpServer>,
    /// The parsed entity, when the YAML could be read.
    pub entity: Option<Value>,
}

/// Reads and validates every document of a catalog file; empty documents are skipped.
pub fn validate_documents(bytes: &[u8], options: &ValidateOptions) -> Vec<DocumentReport> {
    yaml::parse_documents(bytes)
        .into_iter()
        .filter_map(|doc| {
            let (errors, mcp, entity) = match doc.content {
                Ok(None) => return None,
                Ok(Some(value)) => {
                    let report = validate_entity(&value, options);
                    (report.errors, report.mcp, Some(value))
                }
                Err(e) => (vec![ValidationError::input(e.to_string())], None, None),
            };
            let entity_ref = entity
                .as_ref()
                .and_then(Entity::new)
                .map(|e| e.entity_ref().canonical());
            Some(DocumentReport {
                index: doc.index,
                line: doc.line,
                entity_ref,
                errors,
                mcp,
                entity,
            })
        })
        .collect()
}
