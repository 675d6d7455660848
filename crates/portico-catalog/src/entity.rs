//! A read-only view of an entity's JSON that knows where the envelope fields live.

use serde_json::{Map, Value};

use crate::entity_ref::{DEFAULT_NAMESPACE, EntityRef};

/// Annotation that says which MCP registry schema `spec.definition` follows.
pub const SCHEMA_VERSION_ANNOTATION: &str = "mcp.spotify.com/schema-version";

/// An entity whose envelope (apiVersion, kind, metadata.name) has the right types.
#[derive(Debug, Clone, Copy)]
pub struct Entity<'a> {
    root: &'a Map<String, Value>,
    metadata: &'a Map<String, Value>,
}

impl<'a> Entity<'a> {
    /// Wraps a JSON value that has an object root, a `kind` string and `metadata.name`.
    pub fn new(value: &'a Value) -> Option<Self> {
        let root = value.as_object()?;
        let metadata = root.get("metadata")?.as_object()?;
        root.get("kind")?.as_str()?;
        metadata.get("name")?.as_str()?;
        Some(Self { root, metadata })
    }

    /// `kind`.
    pub fn kind(&self) -> &'a str {
        self.root
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    /// `apiVersion`.
    pub fn api_version(&self) -> &'a str {
        self.root
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    /// `metadata.name`.
    pub fn name(&self) -> &'a str {
        self.metadata
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    /// `metadata.namespace`, or `default`.
    pub fn namespace(&self) -> &'a str {
        match self.metadata.get("namespace").and_then(Value::as_str) {
            Some(ns) if !ns.is_empty() => ns,
            _ => DEFAULT_NAMESPACE,
        }
    }

    /// `metadata`.
    pub fn metadata(&self) -> &'a Map<String, Value> {
        self.metadata
    }

    /// `spec`, when it is an object.
    pub fn spec(&self) -> Option<&'a Map<String, Value>> {
        self.root.get("spec").and_then(Value::as_object)
    }

    /// A string field of `spec`.
    pub fn spec_str(&self, field: &str) -> Option<&'a str> {
        self.spec()?.get(field)?.as_str()
    }

    /// One annotation's value, when it is a string.
    pub fn annotation(&self, key: &str) -> Option<&'a str> {
        self.metadata
            .get("annotations")?
            .as_object()?
            .get(key)?
            .as_str()
    }

    /// The entity's own reference.
    pub fn entity_ref(&self) -> EntityRef {
        EntityRef::new(self.kind(), self.namespace(), self.name())
    }

    /// Whether this is an API entity of `spec.type: mcp-server`.
    pub fn is_mcp_server(&self) -> bool {
        self.kind() == "API" && self.spec_str("type") == Some("mcp-server")
    }
}
