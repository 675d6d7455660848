//! The `filter` and `fields` query parameters of the catalog API, parsed the way Backstage's
//! catalog backend parses them.
//!
//! A filter is a list of alternatives (one per `filter` parameter, ORed); each alternative is a
//! list of conditions (the comma-separated statements of that parameter, ANDed). A condition is a
//! search key with either no values (`key`: the key exists) or the values it may equal
//! (`key=a,key=b` in one parameter: either). Keys and values match case-insensitively against the
//! entity's search rows (see [`super::search`]), so dotted keys reach into arrays, relations are
//! `relations.<type>` and annotation keys containing `/` are written as they are.
//!
//! `fields` keeps only some dotted paths of each entity, with their nesting.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::CatalogError;

/// One condition of a filter: a search key that must exist, or must have one of some values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilterCondition {
    /// The search key, lowercased (`metadata.annotations.backstage.io/techdocs-ref`).
    #[serde(rename = "k")]
    pub key: String,
    /// Lowercased values, any of which matches; `None` when the key only has to exist.
    #[serde(rename = "v", default, skip_serializing_if = "Option::is_none")]
    pub values: Option<Vec<String>>,
}

/// The parsed `filter` parameters: any alternative matches, and an alternative matches when all
/// its conditions do. No alternatives means no filtering.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EntityFilter {
    any_of: Vec<Vec<FilterCondition>>,
}

impl EntityFilter {
    /// No filtering: every entity matches.
    pub fn all() -> Self {
        Self::default()
    }

    /// A filter from alternatives written as data rather than text (keys and values are
    /// lowercased here). Conditions on the same key within an alternative stay separate, i.e.
    /// they are ANDed.
    pub fn from_conditions(any_of: Vec<Vec<FilterCondition>>) -> Self {
        let any_of = any_of
            .into_iter()
            .filter(|all_of| !all_of.is_empty())
            .map(|all_of| {
                all_of
                    .into_iter()
                    .map(|c| FilterCondition {
                        key: c.key.to_lowercase(),
                        values: c
                            .values
                            .map(|vs| vs.iter().map(|v| v.to_lowercase()).collect()),
                    })
                    .collect()
            })
            .collect();
        Self { any_of }
    }

    /// Parses the values of the repeated `filter` query parameter.
    ///
    /// Each parameter is `statement,statement,…`; a statement is `key` (the key exists) or
    /// `key=value` (split at the first `=`, both sides trimmed; the value may be empty). Empty
    /// statements and empty parameters are skipped. Within one parameter, statements on the same
    /// key (as written) become one condition matching any of their values; a bare `key` next to
    /// `key=value` adds nothing. Fails on a statement without a key (`=x`).
    pub fn parse<S: AsRef<str>>(params: &[S]) -> Result<Self, CatalogError> {
        let mut any_of = Vec::new();
        for param in params {
            let mut conditions: Vec<(String, Option<Vec<String>>)> = Vec::new();
            for statement in param
                .as_ref()
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
            {
                let (key, value) = match statement.split_once('=') {
                    Some((key, value)) => (key.trim(), Some(value.trim())),
                    None => (statement, None),
                };
                if key.is_empty() {
                    return Err(CatalogError::Input(format!(
                        "Invalid filter, '{statement}' is not a valid statement (expected a string on the form a=b or a= or a)"
                    )));
                }
                let index = match conditions.iter().position(|(k, _)| k == key) {
                    Some(index) => index,
                    None => {
                        conditions.push((key.to_string(), None));
                        conditions.len() - 1
                    }
                };
                if let Some(value) = value {
                    conditions[index]
                        .1
                        .get_or_insert_with(Vec::new)
                        .push(value.to_lowercase());
                }
            }
            if !conditions.is_empty() {
                any_of.push(
                    conditions
                        .into_iter()
                        .map(|(key, values)| FilterCondition {
                            key: key.to_lowercase(),
                            values,
                        })
                        .collect(),
                );
            }
        }
        Ok(Self { any_of })
    }

    /// Whether the filter lets every entity through.
    pub fn is_empty(&self) -> bool {
        self.any_of.is_empty()
    }

    /// The alternatives, each a list of conditions that must all hold.
    pub fn alternatives(&self) -> &[Vec<FilterCondition>] {
        &self.any_of
    }
}

/// The parsed `fields` parameters: the dotted paths to keep of each entity; empty keeps all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fields {
    paths: Vec<String>,
}

impl Fields {
    /// Keeps whole entities.
    pub fn all() -> Self {
        Self::default()
    }

    /// Parses the values of the repeated `fields` query parameter: comma-separated dotted paths,
    /// trimmed, empty ones skipped, duplicates dropped. Paths are case-sensitive. Array indexing
    /// (`a[0]`) is refused, as in Backstage.
    pub fn parse<S: AsRef<str>>(params: &[S]) -> Result<Self, CatalogError> {
        let mut paths: Vec<String> = Vec::new();
        for path in params
            .iter()
            .flat_map(|p| p.as_ref().split(','))
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            if path.contains('[') {
                return Err(CatalogError::Input(format!(
                    "Invalid field \"{path}\", array type fields are not supported"
                )));
            }
            if !paths.iter().any(|p| p == path) {
                paths.push(path.to_string());
            }
        }
        Ok(Self { paths })
    }

    /// Whether whole entities are kept.
    pub fn is_all(&self) -> bool {
        self.paths.is_empty()
    }

    /// The paths kept, as given.
    pub fn paths(&self) -> &[String] {
        &self.paths
    }

    /// The entity with only the chosen paths. A path that does not resolve is left out; a path
    /// to an object keeps the whole subtree. Keys that contain dots (annotation keys such as
    /// `backstage.io/techdocs-ref`) resolve as Backstage resolves them: when a segment is not a
    /// key, it is joined with the next segment and tried again.
    pub fn apply(&self, entity: Value) -> Value {
        if self.is_all() {
            entity
        } else {
            self.project(&entity)
        }
    }

    /// [`Fields::apply`] on a borrowed entity: copies only the chosen paths.
    pub fn project(&self, entity: &Value) -> Value {
        if self.is_all() {
            return entity.clone();
        }
        let mut out = Value::Object(Map::new());
        let mut segments = Vec::new();
        for path in &self.paths {
            if let Some(value) = resolve(entity, path, &mut segments) {
                set_path(&mut out, &segments, value.clone());
            }
        }
        out
    }
}

/// Walks `path` into `value`: the value found, with the segments actually used (dotted keys
/// joined, as slices of `path`) in `segments`, which it clears first.
fn resolve<'a, 'p>(
    value: &'a Value,
    path: &'p str,
    segments: &mut Vec<&'p str>,
) -> Option<&'a Value> {
    segments.clear();
    let mut current = value;
    // A segment that is not a key is joined with the next one: the candidate runs from the
    // start of the first unused part to the end of the current one.
    let (mut start, mut pos) = (0, 0);
    for part in path.split('.') {
        let end = pos + part.len();
        let candidate = &path[start..end];
        pos = end + 1;
        match child(current, candidate) {
            Some(next) => {
                current = next;
                segments.push(candidate);
                start = pos;
            }
            None if pos <= path.len() => {}
            None => return None,
        }
    }
    Some(current)
}

/// A member of an object, or an item of an array by decimal index.
fn child<'a>(value: &'a Value, key: &str) -> Option<&'a Value> {
    match value {
        Value::Object(map) => map.get(key),
        Value::Array(items) => key.parse::<usize>().ok().and_then(|i| items.get(i)),
        _ => None,
    }
}

/// Sets `segments` in `out`, making objects (or arrays, for index segments) on the way.
fn set_path(out: &mut Value, segments: &[&str], value: Value) {
    let Some((first, rest)) = segments.split_first() else {
        *out = value;
        return;
    };
    let index = if out.is_array() {
        first.parse::<usize>().ok()
    } else {
        None
    };
    let slot = match (out, index) {
        (Value::Array(items), Some(i)) => {
            if items.len() <= i {
                items.resize(i + 1, Value::Null);
            }
            &mut items[i]
        }
        (Value::Object(map), _) => {
            // Looked up before inserting, so a key already there costs no allocation.
            if !map.contains_key(*first) {
                let fresh = match rest.first() {
                    Some(next) if next.parse::<usize>().is_ok() => Value::Array(Vec::new()),
                    _ => Value::Object(Map::new()),
                };
                map.insert((*first).to_string(), fresh);
            }
            let Some(slot) = map.get_mut(*first) else {
                return;
            };
            slot
        }
        // Another path already put a scalar here; a deeper path cannot go through it.
        _ => return,
    };
    if rest.is_empty() {
        *slot = value;
    } else {
        if !slot.is_object() && !slot.is_array() {
            *slot = Value::Object(Map::new());
        }
        set_path(slot, rest, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cond(key: &str, values: Option<&[&str]>) -> FilterCondition {
        FilterCondition {
            key: key.into(),
            values: values.map(|vs| vs.iter().map(|v| v.to_string()).collect()),
        }
    }

    #[test]
    fn parses_like_backstage() {
        let f = EntityFilter::parse(&[
            "kind=API, spec.type = MCP-Server ,kind=component",
            "metadata.tags",
        ])
        .unwrap();
        assert_eq!(
            f.alternatives(),
            [
                vec![
                    cond("kind", Some(&["api", "component"])),
                    cond("spec.type", Some(&["mcp-server"]))
                ],
                vec![cond("metadata.tags", None)],
            ]
        );
        // Split at the first `=`; empty values are values; a bare key next to a value adds nothing.
        let f =
            EntityFilter::parse(&["metadata.annotations.a/b=x=y,spec.x=,kind,kind=api"]).unwrap();
        assert_eq!(
            f.alternatives(),
            [vec![
                cond("metadata.annotations.a/b", Some(&["x=y"])),
                cond("spec.x", Some(&[""])),
                cond("kind", Some(&["api"])),
            ]]
        );
        assert!(EntityFilter::parse(&["", " , ,"]).unwrap().is_empty());
        assert!(EntityFilter::parse::<&str>(&[]).unwrap().is_empty());
        let err = EntityFilter::parse(&["kind=api,=x"]).unwrap_err();
        assert!(
            matches!(err, CatalogError::Input(ref m) if m.contains("'=x' is not a valid statement")),
            "{err}"
        );
    }

    #[test]
    fn projects_fields() {
        let entity = json!({"kind": "API", "metadata": {"name": "a", "annotations": {"backstage.io/x": "1", "b": "2"},
            "tags": ["t"]}, "spec": {"remotes": [{"type": "sse", "url": "u"}]}});
        let fields = Fields::parse(&[
            "kind, metadata.name",
            "metadata.annotations.backstage.io/x,spec.missing,metadata.tags",
        ])
        .unwrap();
        assert_eq!(
            fields.apply(entity.clone()),
            json!({"kind": "API", "metadata": {"name": "a", "annotations": {"backstage.io/x": "1"}, "tags": ["t"]}})
        );
        let fields = Fields::parse(&["spec.remotes.0.url,metadata"]).unwrap();
        assert_eq!(
            fields.apply(entity.clone()),
            json!({"spec": {"remotes": [{"url": "u"}]}, "metadata": entity["metadata"]})
        );
        assert_eq!(
            Fields::parse(&[" , "]).unwrap().apply(entity.clone()),
            entity
        );
        assert!(Fields::parse(&["metadata.tags[0]"]).is_err());
    }
}
