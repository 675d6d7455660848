//! Writes the corpus as JSON lines and as one multi-document YAML file in the style of catalog
//! files: block mappings and sequences, plain keys, double-quoted (JSON-style) string values, and
//! multi-line text such as `spec.definition` as `|` block scalars.

use std::fmt::Write as _;

use serde_json::{Map, Value};

/// One compact JSON document per line.
pub fn jsonl(entities: &[Value]) -> String {
    let mut out = String::new();
    for entity in entities {
        out.push_str(&entity.to_string());
        out.push('\n');
    }
    out
}

/// Every entity as its own YAML document, each introduced by `---`.
pub fn yaml(entities: &[Value]) -> String {
    let mut out = String::new();
    for entity in entities {
        out.push_str("---\n");
        match entity {
            Value::Object(map) if !map.is_empty() => mapping(&mut out, map, 0),
            other => {
                out.push_str(&inline(other));
                out.push('\n');
            }
        }
    }
    out
}

/// A block mapping whose keys start at column `indent`.
fn mapping(out: &mut String, map: &Map<String, Value>, indent: usize) {
    for (i, (key, value)) in map.iter().enumerate() {
        // The first key of a mapping inside a sequence item follows the `- ` on its line.
        if i > 0 || out.ends_with('\n') {
            pad(out, indent);
        }
        out.push_str(&key_text(key));
        out.push(':');
        value_after_key(out, value, indent);
    }
}

/// A block sequence whose `- ` markers start at column `indent`.
fn sequence(out: &mut String, items: &[Value], indent: usize) {
    for item in items {
        pad(out, indent);
        out.push('-');
        match item {
            Value::Object(map) if !map.is_empty() => {
                out.push(' ');
                mapping(out, map, indent + 2);
            }
            Value::Array(list) if !list.is_empty() => {
                out.push('\n');
                sequence(out, list, indent + 2);
            }
            scalar => {
                out.push(' ');
                out.push_str(&inline(scalar));
                out.push('\n');
            }
        }
    }
}

/// The rest of a `key:` line and whatever block follows it.
fn value_after_key(out: &mut String, value: &Value, indent: usize) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            out.push('\n');
            mapping(out, map, indent + 2);
        }
        Value::Array(items) if !items.is_empty() => {
            out.push('\n');
            sequence(out, items, indent + 2);
        }
        Value::String(text) if fits_block_scalar(text) => {
            out.push_str(" |\n");
            for line in text.lines() {
                if !line.is_empty() {
                    pad(out, indent + 2);
                    out.push_str(line);
                }
                out.push('\n');
            }
        }
        scalar => {
            out.push(' ');
            out.push_str(&inline(scalar));
            out.push('\n');
        }
    }
}

/// Whether `text` reads back unchanged from a `|` block scalar (clip chomping): several lines,
/// exactly one final line break, a first line that does not start with a space (which would need
/// an indentation indicator), and nothing YAML would trim or refuse.
fn fits_block_scalar(text: &str) -> bool {
    text.contains('\n')
        && text.ends_with('\n')
        && !text.ends_with("\n\n")
        && !text.starts_with([' ', '\n'])
        && text
            .lines()
            .all(|line| line == line.trim_end() && !line.chars().any(char::is_control))
}

/// A key as written: plain when YAML reads it back as that same string, else double-quoted.
fn key_text(key: &str) -> String {
    let plain = key.starts_with(|c: char| c.is_ascii_alphabetic())
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/'))
        && !matches!(
            key.to_ascii_lowercase().as_str(),
            "true" | "false" | "null" | "yes" | "no" | "on" | "off" | "y" | "n"
        );
    if plain {
        key.to_string()
    } else {
        Value::from(key).to_string()
    }
}

/// A value on one line: JSON text, which YAML reads as the same value (strings double-quoted,
/// empty collections as `{}` / `[]`).
fn inline(value: &Value) -> String {
    value.to_string()
}

/// Indentation.
fn pad(out: &mut String, indent: usize) {
    let _ = write!(out, "{:indent$}", "");
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn yaml_shape() {
        let entity = json!({"kind": "API", "metadata": {"name": "x", "tags": ["a", "b"], "links": [{"url": "u", "title": "t"}]},
            "spec": {"definition": "a: 1\n\nb:\n  - c\n", "count": 3, "e": [], "true": "k"}});
        let text = yaml(&[entity]);
        assert_eq!(
            text,
            // Keys come out in the map's (sorted) order.
            "---\nkind: \"API\"\nmetadata:\n  links:\n    - title: \"t\"\n      url: \"u\"\n  name: \"x\"\n  tags:\n    - \"a\"\n    - \"b\"\nspec:\n  count: 3\n  definition: |\n    a: 1\n\n    b:\n      - c\n  e: []\n  \"true\": \"k\"\n"
        );
    }
}
