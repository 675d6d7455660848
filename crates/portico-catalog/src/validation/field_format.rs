//! `FieldFormatEntityPolicy` (the format of names, keys, tags and links) and the reserved-field
//! rule, with Backstage's messages.

use serde_json::Value;

use super::ValidationError;
use super::formats;
use crate::entity::Entity;
use crate::js;

const LEARN_MORE: &str = "To learn more about catalog file format, visit: https://github.com/backstage/backstage/blob/master/docs/architecture-decisions/adr002-default-catalog-file-format.md";

/// What a field must look like; each has Backstage's wording of the expectation.
#[derive(Clone, Copy)]
enum Rule {
    ApiVersion,
    Kind,
    Name,
    Namespace,
    Key,
    LabelValue,
    AnnotationValue,
    Tag,
    Url,
    NonEmpty,
}

impl Rule {
    fn accepts(self, value: &Value) -> bool {
        let Some(s) = value.as_str() else {
            return false;
        };
        match self {
            Rule::ApiVersion => formats::is_api_version(s),
            Rule::Kind => formats::is_kind(s),
            Rule::Name => formats::is_object_name(s),
            Rule::Namespace => formats::is_namespace(s),
            Rule::Key => formats::is_label_or_annotation_key(s),
            Rule::LabelValue => formats::is_label_value(s),
            Rule::AnnotationValue => true,
            Rule::Tag => formats::is_tag(s),
            Rule::Url => formats::is_url(s),
            Rule::NonEmpty => formats::is_non_empty(s),
        }
    }

    fn expectation(self) -> &'static str {
        match self {
            Rule::Name | Rule::LabelValue => {
                "a string that is sequences of [a-zA-Z0-9] separated by any of [-_.], at most 63 characters in total"
            }
            Rule::ApiVersion | Rule::Key => "a valid prefix and/or suffix",
            Rule::Namespace => {
                "a string that is sequences of [a-z0-9] separated by [-], at most 63 characters in total"
            }
            Rule::Tag => {
                "a string that is sequences of [a-z0-9+#] separated by [-], at most 63 characters in total"
            }
            Rule::AnnotationValue => "a string",
            Rule::Kind => {
                "a string that is a sequence of [a-zA-Z][a-z0-9A-Z], at most 63 characters in total"
            }
            Rule::Url => "a string that is a valid url",
            Rule::NonEmpty => "a non empty string",
        }
    }
}

/// Backstage's `require(field, value, validator)`.
fn require(
    field: &dyn Fn() -> String,
    value: Option<&Value>,
    rule: Rule,
    errors: &mut Vec<ValidationError>,
) {
    match value {
        None | Some(Value::Null) => errors.push(ValidationError::input(format!(
            "{} must have a value",
            field()
        ))),
        Some(v) if !rule.accepts(v) => errors.push(ValidationError::input(format!(
            "\"{}\" is not valid; expected {} but found \"{}\". {LEARN_MORE}",
            field(),
            rule.expectation(),
            js::to_string(v)
        ))),
        Some(_) => {}
    }
}

/// Backstage's `optional(field, value, validator)`: only a missing field is fine.
fn optional(
    field: &dyn Fn() -> String,
    value: Option<&Value>,
    rule: Rule,
    errors: &mut Vec<ValidationError>,
) {
    if value.is_some() {
        require(field, value, rule, errors);
    }
}

/// Every field-format problem of the entity, in Backstage's order.
pub fn check(value: &Value, entity: &Entity<'_>, errors: &mut Vec<ValidationError>) {
    let metadata = entity.metadata();
    require(
        &|| "apiVersion".into(),
        value.get("apiVersion"),
        Rule::ApiVersion,
        errors,
    );
    require(&|| "kind".into(), value.get("kind"), Rule::Kind, errors);
    require(
        &|| "metadata.name".into(),
        metadata.get("name"),
        Rule::Name,
        errors,
    );
    optional(
        &|| "metadata.namespace".into(),
        metadata.get("namespace"),
        Rule::Namespace,
        errors,
    );
    if let Some(labels) = metadata.get("labels").and_then(Value::as_object) {
        for (k, v) in labels {
            let field = || format!("labels.{k}");
            check_key(&field, k, errors);
            require(&field, Some(v), Rule::LabelValue, errors);
        }
    }
    if let Some(annotations) = metadata.get("annotations").and_then(Value::as_object) {
        for (k, v) in annotations {
            let field = || format!("annotations.{k}");
            check_key(&field, k, errors);
            require(&field, Some(v), Rule::AnnotationValue, errors);
        }
    }
    if let Some(tags) = metadata.get("tags").and_then(Value::as_array) {
        for (i, tag) in tags.iter().enumerate() {
            require(&|| format!("tags.{i}"), Some(tag), Rule::Tag, errors);
        }
    }
    if let Some(links) = metadata.get("links").and_then(Value::as_array) {
        for (i, link) in links.iter().enumerate() {
            require(
                &|| format!("links.{i}.url"),
                link.get("url"),
                Rule::Url,
                errors,
            );
            optional(
                &|| format!("links.{i}.title"),
                link.get("title"),
                Rule::NonEmpty,
                errors,
            );
            optional(
                &|| format!("links.{i}.icon"),
                link.get("icon"),
                Rule::NonEmpty,
                errors,
            );
        }
    }
}

/// A label or annotation key, checked without building a JSON value when it is fine.
fn check_key(field: &dyn Fn() -> String, key: &str, errors: &mut Vec<ValidationError>) {
    if !formats::is_label_or_annotation_key(key) {
        require(
            field,
            Some(&Value::String(key.to_string())),
            Rule::Key,
            errors,
        );
    }
}

/// Keys that `spec`, labels and annotations may not use.
pub(super) const RESERVED: &[&str] = &[
    "apiVersion",
    "kind",
    "uid",
    "etag",
    "generation",
    "name",
    "namespace",
    "labels",
    "annotations",
    "spec",
];

/// The reserved-field rule of Backstage's `ReservedFieldsEntityPolicy`: one pass over each map,
/// and the errors (rare) in the policy's order.
pub fn check_reserved(entity: &Entity<'_>, errors: &mut Vec<ValidationError>) {
    let metadata = entity.metadata();
    let maps = [
        entity.spec(),
        metadata.get("labels").and_then(Value::as_object),
        metadata.get("annotations").and_then(Value::as_object),
    ];
    // For each map, the positions in RESERVED of the keys it uses (no allocation when none).
    let hits = maps.map(|map| {
        map.into_iter()
            .flat_map(|m| m.keys())
            .filter_map(|k| RESERVED.iter().position(|r| r == k))
            .collect::<Vec<_>>()
    });
    for (i, key) in RESERVED.iter().enumerate() {
        for (place, hit) in hits.iter().enumerate() {
            if hit.contains(&i) {
                errors.push(ValidationError::input(match place {
                    0 => format!("The spec may not contain the field {key}, because it has reserved meaning"),
                    1 => format!("A label may not have the field {key}, because it has reserved meaning"),
                    _ => format!("An annotation may not have the field {key}, because it has reserved meaning"),
                }));
            }
        }
    }
}
