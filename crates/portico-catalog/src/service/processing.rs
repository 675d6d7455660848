//! One entity through the pipeline: apply its overlay, fill in defaults, validate the final
//! entity, and derive its relations. Pure: storage happens elsewhere.

use serde_json::{Value, json};

use super::overlay::Overlay;
use crate::relations::{Relation, relations};
use crate::{Entity, ValidateOptions, ValidationError, validate_entity};

/// Annotation naming the location an entity was read from (Backstage's).
pub const MANAGED_BY_LOCATION: &str = "backstage.io/managed-by-location";
/// Annotation naming the location that led to it (Backstage's).
pub const MANAGED_BY_ORIGIN_LOCATION: &str = "backstage.io/managed-by-origin-location";

/// An entity ready to store.
#[derive(Debug, Clone)]
pub struct Processed {
    /// `kind:namespace/name`, lowercase.
    pub entity_ref: String,
    /// The final entity: overlay applied, namespace filled in.
    pub entity: Value,
    /// Validation problems of the final entity.
    pub errors: Vec<ValidationError>,
    /// Relations the entity declares, both directions.
    pub relations: Vec<Relation>,
}

/// The canonical reference of a raw entity, when its envelope names one unambiguously: a kind
/// or namespace holding `:` or `/` would make `kind:namespace/name` mean two entities.
pub fn entity_ref_of(raw: &Value) -> Option<String> {
    let entity = Entity::new(raw)?;
    let ambiguous = |part: &str| part.contains([':', '/']);
    if ambiguous(entity.kind()) || ambiguous(entity.namespace()) || entity.name().contains('/') {
        return None;
    }
    Some(entity.entity_ref().canonical())
}

/// Runs the pipeline on a raw entity; `None` when the entity has no usable kind and name.
pub fn process(
    raw: &Value,
    overlay: Option<&Overlay>,
    location: Option<&str>,
    options: &ValidateOptions,
) -> Option<Processed> {
    let entity_ref = entity_ref_of(raw)?;
    let mut entity = raw.clone();
    if let Some(metadata) = entity.get_mut("metadata").and_then(Value::as_object_mut) {
        let has_namespace = metadata
            .get("namespace")
            .and_then(Value::as_str)
            .is_some_and(|s| !s.is_empty());
        if !has_namespace {
            metadata.insert(
                "namespace".into(),
                json!(crate::entity_ref::DEFAULT_NAMESPACE),
            );
        }
        if let Some(location) = location {
            let annotations = metadata.entry("annotations").or_insert_with(|| json!({}));
            if let Some(annotations) = annotations.as_object_mut() {
                for key in [MANAGED_BY_LOCATION, MANAGED_BY_ORIGIN_LOCATION] {
                    annotations.entry(key).or_insert_with(|| json!(location));
                }
            }
        }
    }
    if let Some(overlay) = overlay {
        overlay.apply(&mut entity);
    }
    let errors = validate_entity(&entity, options).errors;
    let relations = Entity::new(&entity)
        .and_then(|e| relations(&e).ok())
        .unwrap_or_default();
    Some(Processed {
        entity_ref,
        entity,
        errors,
        relations,
    })
}
