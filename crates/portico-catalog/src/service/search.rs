//! Search rows: every entity flattened into `(key, value)` pairs, lowercased, the way Backstage's
//! catalog indexes entities for filtering. Keys are dotted paths (`spec.type`,
//! `metadata.annotations.mcp.spotify.com/auth-api-id`); arrays put each item under the same key,
//! and string items also appear as `path.item = true`; relations appear as
//! `relations.<type> = <target ref>`.

use serde_json::Value;

use crate::relations::Relation;

/// Longer keys are not indexed; longer values are indexed as present without a value.
pub const MAX_KEY_LENGTH: usize = 200;
/// See [`MAX_KEY_LENGTH`].
pub const MAX_VALUE_LENGTH: usize = 200;

/// One indexed fact about an entity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchRow {
    /// The entity the fact is about (for a reverse relation, the other entity).
    pub entity_ref: String,
    /// Lowercased dotted path.
    pub key: String,
    /// Lowercased value; `None` for null or over-long values.
    pub value: Option<String>,
    /// The value as written, for facets.
    pub original: Option<String>,
}

/// Root fields that are not indexed as such.
const SKIPPED_ROOT_FIELDS: &[&str] = &["relations", "status", "attachments"];

/// The search rows of an entity and of the relations it declares, each `(entity, key, value)`
/// once, so that counting rows counts entities.
pub fn search_rows(entity_ref: &str, entity: &Value, relations: &[Relation]) -> Vec<SearchRow> {
    let mut rows = Vec::new();
    if let Some(root) = entity.as_object() {
        for (key, value) in root {
            if !SKIPPED_ROOT_FIELDS.contains(&key.as_str()) {
                visit(entity_ref, &key.to_lowercase(), value, &mut rows);
            }
        }
    }
    for relation in relations {
        let target = relation.target.canonical();
        rows.push(SearchRow {
            entity_ref: relation.source.canonical(),
            key: format!("relations.{}", relation.kind.to_lowercase()),
            value: Some(target.clone()),
            original: Some(target),
        });
    }
    let mut seen = std::collections::HashSet::with_capacity(rows.len());
    rows.retain(|r| seen.insert((r.entity_ref.clone(), r.key.clone(), r.value.clone())));
    rows
}

fn visit(entity_ref: &str, path: &str, value: &Value, rows: &mut Vec<SearchRow>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                visit(
                    entity_ref,
                    &format!("{path}.{}", key.to_lowercase()),
                    child,
                    rows,
                );
            }
        }
        Value::Array(items) => {
            for item in items {
                visit(entity_ref, path, item, rows);
                if let Value::String(s) = item {
                    let key = format!("{path}.{}", s.to_lowercase());
                    if !rows
                        .iter()
                        .any(|r| r.entity_ref == entity_ref && r.key == key)
                    {
                        push(entity_ref, key, Some("true".into()), rows);
                    }
                }
            }
        }
        Value::Null => push(entity_ref, path.to_string(), None, rows),
        scalar => push(
            entity_ref,
            path.to_string(),
            Some(crate::js::to_string(scalar)),
            rows,
        ),
    }
}

fn push(entity_ref: &str, key: String, original: Option<String>, rows: &mut Vec<SearchRow>) {
    if key.len() > MAX_KEY_LENGTH {
        return;
    }
    let original = original.filter(|v| v.chars().count() <= MAX_VALUE_LENGTH);
    rows.push(SearchRow {
        entity_ref: entity_ref.to_string(),
        key,
        value: original.as_ref().map(|v| v.to_lowercase()),
        original,
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn find<'a>(rows: &'a [SearchRow], key: &str) -> Vec<Option<&'a str>> {
        rows.iter()
            .filter(|r| r.key == key)
            .map(|r| r.value.as_deref())
            .collect()
    }

    #[test]
    fn flattens_like_backstage() {
        let entity = json!({"kind": "API", "metadata": {"name": "Example", "tags": ["Java", "web"],
            "annotations": {"mcp.spotify.com/auth-api-id": "core.auth.github"}},
            "spec": {"type": "mcp-server", "definition": "x".repeat(300), "n": 3, "b": true, "z": null},
            "relations": [{"type": "ownedBy", "targetRef": "group:default/a"}]});
        let rows = search_rows("api:default/example", &entity, &[]);
        assert_eq!(find(&rows, "kind"), [Some("api")]);
        assert_eq!(find(&rows, "metadata.name"), [Some("example")]);
        assert_eq!(find(&rows, "metadata.tags"), [Some("java"), Some("web")]);
        assert_eq!(find(&rows, "metadata.tags.java"), [Some("true")]);
        assert_eq!(
            find(&rows, "metadata.annotations.mcp.spotify.com/auth-api-id"),
            [Some("core.auth.github")]
        );
        assert_eq!(find(&rows, "spec.definition"), [None]);
        assert_eq!(find(&rows, "spec.n"), [Some("3")]);
        assert_eq!(find(&rows, "spec.b"), [Some("true")]);
        assert_eq!(find(&rows, "spec.z"), [None]);
        assert!(
            find(&rows, "relations.ownedby").is_empty(),
            "stored relations are not trusted input"
        );
        let original: Vec<_> = rows
            .iter()
            .filter(|r| r.key == "metadata.name")
            .map(|r| r.original.clone())
            .collect();
        assert_eq!(original, [Some("Example".to_string())]);
    }
}
