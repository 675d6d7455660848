//! Entity overlays: decorations kept apart from an entity (labels, annotations, tags, owner,
//! lifecycle) and applied on top of whatever its source says, so they survive refreshes and can be
//! removed to get the source's entity back.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// What an overlay adds to or sets on an entity.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Overlay {
    /// Labels added (or replaced) on the entity.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Annotations added (or replaced) on the entity.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Tags added to the entity's own.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// `spec.owner` to set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// `spec.lifecycle` to set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle: Option<String>,
}

impl Overlay {
    /// Whether the overlay changes nothing.
    pub fn is_empty(&self) -> bool {
        self == &Overlay::default()
    }

    /// Applies the overlay to an entity in place; the entity's own values lose to the overlay's.
    pub fn apply(&self, entity: &mut Value) {
        let Some(root) = entity.as_object_mut() else {
            return;
        };
        if !self.labels.is_empty() || !self.annotations.is_empty() || !self.tags.is_empty() {
            let metadata = root.entry("metadata").or_insert_with(|| json!({}));
            if let Some(metadata) = metadata.as_object_mut() {
                merge_map(metadata, "labels", &self.labels);
                merge_map(metadata, "annotations", &self.annotations);
                if !self.tags.is_empty() {
                    let tags = metadata.entry("tags").or_insert_with(|| json!([]));
                    if let Some(tags) = tags.as_array_mut() {
                        for tag in &self.tags {
                            if !tags.iter().any(|t| t.as_str() == Some(tag)) {
                                tags.push(Value::String(tag.clone()));
                            }
                        }
                    }
                }
            }
        }
        if self.owner.is_some() || self.lifecycle.is_some() {
            let spec = root.entry("spec").or_insert_with(|| json!({}));
            if let Some(spec) = spec.as_object_mut() {
                if let Some(owner) = &self.owner {
                    spec.insert("owner".into(), Value::String(owner.clone()));
                }
                if let Some(lifecycle) = &self.lifecycle {
                    spec.insert("lifecycle".into(), Value::String(lifecycle.clone()));
                }
            }
        }
    }
}

fn merge_map(
    metadata: &mut serde_json::Map<String, Value>,
    key: &str,
    values: &BTreeMap<String, String>,
) {
    if values.is_empty() {
        return;
    }
    let target = metadata.entry(key).or_insert_with(|| json!({}));
    if let Some(target) = target.as_object_mut() {
        for (k, v) in values {
            target.insert(k.clone(), Value::String(v.clone()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlay_sets_and_adds_without_losing_source_values() {
        let mut entity = json!({"metadata": {"name": "x", "tags": ["a"], "labels": {"keep": "1"}},
            "spec": {"lifecycle": "experimental", "owner": "team-a"}});
        let overlay = Overlay {
            labels: BTreeMap::from([("tier".into(), "1".into())]),
            tags: vec!["a".into(), "b".into()],
            lifecycle: Some("production".into()),
            ..Overlay::default()
        };
        overlay.apply(&mut entity);
        assert_eq!(
            entity["metadata"]["labels"],
            json!({"keep": "1", "tier": "1"})
        );
        assert_eq!(entity["metadata"]["tags"], json!(["a", "b"]));
        assert_eq!(
            entity["spec"],
            json!({"lifecycle": "production", "owner": "team-a"})
        );
    }
}
