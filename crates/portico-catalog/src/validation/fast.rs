//! A one-pass check that an entity is valid under the stock rules, for the common case: most
//! entities in a catalog are valid, and proving it needs no error text, no Ajv ordering and no
//! map lookups. It may say "not sure" (false) for a valid entity — the exact path then decides —
//! but never "valid" for an invalid one; a test holds it to that against every case file.

use serde_json::{Map, Value};

use super::field_format::RESERVED;
use super::formats;
use super::schema::is_valid as schema_is_valid;
use super::schemas::{KIND_API_VERSIONS, KINDS};

/// Whether the entity certainly passes every stock rule.
pub fn certainly_valid(value: &Value) -> bool {
    let Some(root) = value.as_object() else {
        return false;
    };
    let (mut api_version, mut kind, mut metadata, mut spec) = (None, None, None, None);
    for (key, v) in root {
        match key.as_str() {
            "apiVersion" => api_version = v.as_str(),
            "kind" => kind = v.as_str(),
            "metadata" => metadata = v.as_object(),
            "spec" => {
                let Some(map) = v.as_object() else {
                    return false;
                };
                if map.keys().any(|k| is_reserved(k)) {
                    return false;
                }
                spec = Some(map);
            }
            _ => return false,
        }
    }
    let (Some(api_version), Some(kind), Some(metadata)) = (api_version, kind, metadata) else {
        return false;
    };
    // A built-in kind's apiVersion is always well-formed; other kinds take the exact path.
    if !KIND_API_VERSIONS.contains(&api_version) || !metadata_valid(metadata) {
        return false;
    }
    let Some((_, kind_schema)) = KINDS.iter().find(|(k, _)| *k == kind) else {
        return false;
    };
    if !schema_is_valid(kind_schema, value) {
        return false;
    }
    crate::relations::first_ref_error_in(kind, spec).is_none()
}

/// One of the reserved keys (the same list as the exact path's `RESERVED`).
fn is_reserved(key: &str) -> bool {
    let reserved = matches!(
        key,
        "apiVersion"
            | "kind"
            | "uid"
            | "etag"
            | "generation"
            | "name"
            | "namespace"
            | "labels"
            | "annotations"
            | "spec"
    );
    debug_assert_eq!(reserved, RESERVED.contains(&key));
    reserved
}

fn metadata_valid(metadata: &Map<String, Value>) -> bool {
    let mut has_name = false;
    for (key, v) in metadata {
        let ok = match key.as_str() {
            "name" => {
                has_name = true;
                v.as_str().is_some_and(formats::is_object_name)
            }
            "namespace" => v.as_str().is_some_and(formats::is_namespace),
            "uid" | "etag" | "title" => v.as_str().is_some_and(|s| !s.is_empty()),
            "description" => v.is_string(),
            "labels" => string_map(v, formats::is_label_value),
            "annotations" => string_map(v, |_| true),
            "tags" => v
                .as_array()
                .is_some_and(|tags| tags.iter().all(|t| t.as_str().is_some_and(formats::is_tag))),
            "links" => v
                .as_array()
                .is_some_and(|links| links.iter().all(link_valid)),
            _ => true,
        };
        if !ok {
            return false;
        }
    }
    has_name
}

/// Labels and annotations: valid keys that are not reserved, string values the rule accepts.
fn string_map(value: &Value, value_ok: fn(&str) -> bool) -> bool {
    value.as_object().is_some_and(|map| {
        map.iter().all(|(k, v)| {
            !k.is_empty()
                && formats::is_label_or_annotation_key(k)
                && !is_reserved(k)
                && v.as_str().is_some_and(value_ok)
        })
    })
}

fn link_valid(link: &Value) -> bool {
    let Some(link) = link.as_object() else {
        return false;
    };
    let non_empty = |key: &str| {
        link.get(key).is_none_or(|v| {
            v.as_str()
                .is_some_and(|s| !s.is_empty() && formats::is_non_empty(s))
        })
    };
    link.get("url")
        .and_then(Value::as_str)
        .is_some_and(|u| !u.is_empty() && formats::is_url(u))
        && non_empty("title")
        && non_empty("icon")
        && link
            .get("type")
            .is_none_or(|v| v.as_str().is_some_and(|s| !s.is_empty()))
}
