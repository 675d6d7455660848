//! Named subsets of the actions (`mcpActions.servers.<key>`), each served at
//! `/api/mcp-actions/v1/<key>`: include and exclude rules by id glob and attributes.

use serde::{Deserialize, Serialize};

use super::registry::ActionSpec;

/// One named subset.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubsetConfig {
    /// The server name MCP clients see.
    pub name: String,
    /// What the subset is for.
    #[serde(default)]
    pub description: Option<String>,
    /// Which actions it holds.
    #[serde(default)]
    pub filter: ActionFilter,
}

/// Include and exclude rules: an action is in when it matches an include rule (or there are
/// none) and no exclude rule.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionFilter {
    /// Rules that let actions in.
    #[serde(default)]
    pub include: Vec<ActionRule>,
    /// Rules that keep actions out.
    #[serde(default)]
    pub exclude: Vec<ActionRule>,
}

/// A rule: every given part must match.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionRule {
    /// Action id glob; `*` matches any run of characters (`catalog:*`).
    #[serde(default)]
    pub id: Option<String>,
    /// Attribute values the action must have.
    #[serde(default)]
    pub attributes: Option<RuleAttributes>,
}

/// Attribute values a rule asks for.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RuleAttributes {
    /// `destructive` must be this.
    #[serde(default)]
    pub destructive: Option<bool>,
    /// `idempotent` must be this.
    #[serde(default)]
    pub idempotent: Option<bool>,
    /// `readOnly` must be this.
    #[serde(default)]
    pub read_only: Option<bool>,
}

impl ActionRule {
    fn matches(&self, spec: &ActionSpec) -> bool {
        let id_ok = self.id.as_deref().is_none_or(|g| glob(g, &spec.id()));
        let attrs_ok = self.attributes.as_ref().is_none_or(|a| {
            a.destructive
                .is_none_or(|v| v == spec.attributes.destructive)
                && a.idempotent.is_none_or(|v| v == spec.attributes.idempotent)
                && a.read_only.is_none_or(|v| v == spec.attributes.read_only)
        });
        id_ok && attrs_ok
    }
}

impl ActionFilter {
    /// Whether the action is in.
    pub fn admits(&self, spec: &ActionSpec) -> bool {
        (self.include.is_empty() || self.include.iter().any(|r| r.matches(spec)))
            && !self.exclude.iter().any(|r| r.matches(spec))
    }
}

/// `*`-only glob match over the whole text.
fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || text.len() < first.len() + last.len() || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actions::Attributes;

    fn spec(plugin: &str, name: &str, read_only: bool) -> ActionSpec {
        ActionSpec {
            plugin_id: plugin.into(),
            name: name.into(),
            title: String::new(),
            description: String::new(),
            input_schema: serde_json::json!({}),
            output_schema: serde_json::json!({}),
            attributes: Attributes {
                read_only,
                ..Attributes::default()
            },
        }
    }

    #[test]
    fn include_and_exclude_by_id_and_attributes() {
        assert!(glob("catalog:*", "catalog:get-catalog-entity"));
        assert!(glob("*:who-*", "auth:who-am-i"));
        assert!(!glob("catalog:*", "auth:who-am-i"));
        assert!(glob("a*b*c", "aXbYc") && !glob("a*b*c", "aXc"));
        let filter: ActionFilter = serde_json::from_value(serde_json::json!({
            "include": [{"id": "catalog:*"}],
            "exclude": [{"attributes": {"readOnly": false}}]
        }))
        .unwrap();
        assert!(filter.admits(&spec("catalog", "get-catalog-entity", true)));
        assert!(!filter.admits(&spec("catalog", "register-entity", false)));
        assert!(!filter.admits(&spec("auth", "who-am-i", true)));
        assert!(ActionFilter::default().admits(&spec("auth", "who-am-i", true)));
    }
}
