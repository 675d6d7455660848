//! A small JSON-schema evaluator that reports the first error exactly as Ajv words it, for the
//! handful of fixed schemas Backstage validates entities with (envelope, entity, kinds).

use serde_json::Value;

/// One schema node; only the keywords Backstage's entity schemas use.
pub enum Schema {
    /// `type: string`, with `minLength: 1` when `non_empty`.
    String { non_empty: bool },
    /// `type: string` plus an `enum`.
    StringEnum(&'static [&'static str]),
    /// `const`.
    Const(&'static str),
    /// `type: array` of `items`, with `minItems`.
    Array {
        items: &'static Schema,
        min_items: usize,
    },
    /// `type: object`.
    Object(&'static ObjectSchema),
}

/// The object keywords: `required`, `additionalProperties: false`, `properties`, and
/// `patternProperties: {"^.+$": {type: string}}` for labels and annotations.
pub struct ObjectSchema {
    pub required: &'static [&'static str],
    pub closed: bool,
    pub properties: &'static [(&'static str, Schema)],
    pub string_values: bool,
}

/// An Ajv error: where, what, and Ajv's `params` text.
#[derive(Debug)]
pub struct SchemaError {
    path: Vec<String>,
    pub message: String,
    pub params: String,
}

impl SchemaError {
    fn new(message: impl Into<String>, params: impl Into<String>) -> Self {
        Self {
            path: Vec::new(),
            message: message.into(),
            params: params.into(),
        }
    }

    fn within(mut self, segment: &str) -> Self {
        self.path
            .push(segment.replace('~', "~0").replace('/', "~1"));
        self
    }

    /// Ajv's `instancePath`, or `<root>` as Backstage prints an empty one.
    pub fn instance_path(&self) -> String {
        if self.path.is_empty() {
            return "<root>".into();
        }
        self.path
            .iter()
            .rev()
            .fold(String::new(), |acc, s| acc + "/" + s)
    }

    /// `<path> <message> - <params>`, the form of Backstage's `throwAjvError`.
    pub fn with_params(&self) -> String {
        format!(
            "{} {} - {}",
            self.instance_path(),
            self.message,
            self.params
        )
    }

    /// `<path> <message>`, the form of `SchemaValidEntityPolicy`.
    pub fn without_params(&self) -> String {
        format!("{} {}", self.instance_path(), self.message)
    }
}

fn type_error(name: &str) -> SchemaError {
    SchemaError::new(format!("must be {name}"), format!("type: {name}"))
}

/// The first error of `value` against `schema`, in Ajv's keyword order.
pub fn first_error(schema: &Schema, value: &Value) -> Option<SchemaError> {
    if is_valid(schema, value) {
        return None;
    }
    ordered_first_error(schema, value)
}

/// Whether `value` fits `schema`. One pass over each object's entries with no hashing or
/// allocation: the common, valid case stays cheap, and only an invalid value pays for finding
/// the error Ajv would name first.
pub fn is_valid(schema: &Schema, value: &Value) -> bool {
    match schema {
        Schema::String { non_empty } => {
            value.as_str().is_some_and(|s| !*non_empty || !s.is_empty())
        }
        Schema::StringEnum(allowed) => value.as_str().is_some_and(|s| allowed.contains(&s)),
        Schema::Const(expected) => value.as_str() == Some(expected),
        Schema::Array { items, min_items } => value.as_array().is_some_and(|values| {
            values.len() >= *min_items && values.iter().all(|v| is_valid(items, v))
        }),
        Schema::Object(object) => {
            let Value::Object(map) = value else {
                return false;
            };
            let mut required_found = 0;
            for (key, v) in map {
                match object
                    .properties
                    .iter()
                    .find(|(name, _)| same_key(name, key))
                {
                    Some((name, property)) => {
                        if !is_valid(property, v) {
                            return false;
                        }
                        required_found += usize::from(object.required.contains(name));
                    }
                    None if object.closed => return false,
                    None => {}
                }
                if object.string_values && !key.is_empty() && !v.is_string() {
                    return false;
                }
            }
            required_found == object.required.len()
        }
    }
}

/// Key equality that rejects most mismatches on length and first byte before comparing bytes.
fn same_key(name: &str, key: &str) -> bool {
    let (a, b) = (name.as_bytes(), key.as_bytes());
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y)
}

/// The first error in Ajv's order: required, additional properties, then each property.
fn ordered_first_error(schema: &Schema, value: &Value) -> Option<SchemaError> {
    match schema {
        Schema::String { non_empty } => match value {
            Value::String(s) if *non_empty && s.is_empty() => Some(SchemaError::new(
                "must NOT have fewer than 1 characters",
                "limit: 1",
            )),
            Value::String(_) => None,
            _ => Some(type_error("string")),
        },
        Schema::StringEnum(allowed) => match value {
            Value::String(s) if allowed.contains(&s.as_str()) => None,
            Value::String(_) => Some(SchemaError::new(
                "must be equal to one of the allowed values",
                format!("allowedValues: {}", allowed.join(",")),
            )),
            _ => Some(type_error("string")),
        },
        Schema::Const(expected) => (value.as_str() != Some(expected)).then(|| {
            SchemaError::new(
                "must be equal to constant",
                format!("allowedValue: {expected}"),
            )
        }),
        Schema::Array { items, min_items } => {
            let Value::Array(values) = value else {
                return Some(type_error("array"));
            };
            if values.len() < *min_items {
                return Some(SchemaError::new(
                    format!("must NOT have fewer than {min_items} items"),
                    format!("limit: {min_items}"),
                ));
            }
            values
                .iter()
                .enumerate()
                .find_map(|(i, v)| first_error(items, v).map(|e| e.within(&i.to_string())))
        }
        Schema::Object(object) => {
            let Value::Object(map) = value else {
                return Some(type_error("object"));
            };
            if let Some(missing) = object.required.iter().find(|k| !map.contains_key(**k)) {
                return Some(SchemaError::new(
                    format!("must have required property '{missing}'"),
                    format!("missingProperty: {missing}"),
                ));
            }
            if object.closed
                && let Some(extra) = map
                    .keys()
                    .find(|k| !object.properties.iter().any(|(p, _)| p == k))
            {
                return Some(SchemaError::new(
                    "must NOT have additional properties",
                    format!("additionalProperty: {extra}"),
                ));
            }
            for (name, property) in object.properties {
                if let Some(v) = map.get(*name)
                    && let Some(e) = first_error(property, v)
                {
                    return Some(e.within(name));
                }
            }
            if object.string_values {
                for (k, v) in map {
                    if !k.is_empty() && !v.is_string() {
                        return Some(type_error("string").within(k));
                    }
                }
            }
            None
        }
    }
}
