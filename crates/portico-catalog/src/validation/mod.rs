//! Entity validation exactly as a stock Backstage catalog runs it: envelope, policies (schema,
//! default namespace, no foreign root fields, field formats, reserved fields), kind schema,
//! relation references. Each stage stops the ones after it, as in Backstage, so the first error
//! is always the one Backstage reports; within the field-format stage every bad field is listed.

mod fast;
mod field_format;
pub mod formats;
mod kinds;
mod schema;
mod schemas;

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::entity::Entity;
use crate::js;

/// One validation problem, named like Backstage's errors (`InputError`, …).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidationError {
    /// Error class, e.g. `InputError`.
    pub name: Cow<'static, str>,
    /// What is wrong, in Backstage's words where Backstage has any.
    pub message: String,
}

impl ValidationError {
    /// An `InputError`: the entity's author must fix something.
    pub fn input(message: impl Into<String>) -> Self {
        Self {
            name: Cow::Borrowed("InputError"),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for ValidationError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// Checks an entity against the stock Backstage rules; an empty list means valid.
pub fn validate_backstage(value: &Value) -> Vec<ValidationError> {
    if fast::certainly_valid(value) {
        return Vec::new();
    }
    validate_backstage_exact(value)
}

/// Whether the one-pass check vouches for an entity; exposed so tests can hold it to
/// [`validate_backstage_exact`].
#[doc(hidden)]
pub fn fast_path_accepts(value: &Value) -> bool {
    fast::certainly_valid(value)
}

/// Every stage in Backstage's order, with its messages, without the one-pass shortcut.
#[doc(hidden)]
pub fn validate_backstage_exact(value: &Value) -> Vec<ValidationError> {
    let one = |message: String| vec![ValidationError::input(message)];
    if !value.is_object() {
        return one(format!(
            "Expected object at root, got {}",
            js::type_of(value)
        ));
    }
    // The entity schema is stricter than the envelope's: when it holds, so does the envelope.
    if !schema::is_valid(&schemas::ENTITY, value) {
        if let Some(e) = schema::first_error(&schemas::ENVELOPE, value) {
            return one(e.with_params());
        }
        if let Some(e) = schema::first_error(&schemas::ENTITY, value) {
            return one(format!("Malformed envelope, {}", e.without_params()));
        }
    }
    let Some(entity) = Entity::new(value) else {
        return one("Malformed envelope".into());
    };
    if let Some(field) = value
        .as_object()
        .into_iter()
        .flat_map(|o| o.keys())
        .find(|k| !is_root_field(k))
    {
        return one(format!("Unknown field {field}"));
    }
    let mut errors = Vec::new();
    field_format::check(value, &entity, &mut errors);
    if errors.is_empty() {
        field_format::check_reserved(&entity, &mut errors);
    }
    if !errors.is_empty() {
        return errors;
    }
    if let Err(message) = kinds::check(value, &entity) {
        return one(message);
    }
    if let Some(e) = crate::relations::first_ref_error(&entity) {
        return one(e.to_string());
    }
    errors
}

fn is_root_field(key: &str) -> bool {
    matches!(key, "apiVersion" | "kind" | "metadata" | "spec")
}
