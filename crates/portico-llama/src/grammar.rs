//! The output grammar: the model writes one JSON object, either a tool call
//! `{"arguments": <that tool's schema>, "tool": "<name>"}` (or `tool` first, per
//! [`ToolFieldOrder`]), one alternative per offered tool, or an answer `{"answer": "<text>"}`.
//!
//! The union is written as a JSON Schema (`oneOf`) and turned into a GBNF grammar by llama.cpp's
//! own `json_schema_to_grammar`. Each tool's schema is embedded as given, after two repairs: its
//! `$defs`/`definitions` move to the root under a per-tool prefix (with every `$ref` rewritten to
//! match), and a schema llama.cpp cannot convert on its own (a recursive `#` reference, say) is
//! replaced by "any object", so one odd tool never takes the others down.

use std::collections::BTreeMap;

use portico_assistant::model::ToolFieldOrder;
use serde_json::{Map, Value, json};

use crate::LlamaError;

/// The root rule of every grammar built here.
pub const ROOT: &str = "root";

/// A tool the model may choose.
#[derive(Debug, Clone, Copy)]
pub struct Choice<'a> {
    /// Its name, as the model must write it.
    pub name: &'a str,
    /// The JSON Schema of its arguments.
    pub parameters: &'a Value,
}

/// What the model wrote.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// A call of `tool` with `arguments`.
    Call {
        /// The tool's name.
        tool: String,
        /// The arguments, a JSON object.
        arguments: Value,
    },
    /// A text answer.
    Answer(String),
}

/// The JSON Schema of the model's output: a call of one of `tools` in `order`, or (when
/// `allow_answer`) an answer. With no tools it is the answer alone.
pub fn output_schema(tools: &[Choice<'_>], order: ToolFieldOrder, allow_answer: bool) -> Value {
    let mut defs = Map::new();
    let mut alternatives: Vec<Value> = Vec::new();
    for (i, tool) in tools.iter().enumerate() {
        let parameters = embeddable(tool.parameters, &format!("t{i}_"), &mut defs);
        let name = json!({ "const": tool.name });
        // serde_json's maps sort their keys, and llama.cpp writes properties in the order of
        // the schema text: `ordered_object` keeps the order chosen here.
        let fields = match order {
            ToolFieldOrder::ArgumentsFirst => [("arguments", parameters), ("tool", name)],
            ToolFieldOrder::ToolFirst => [("tool", name), ("arguments", parameters)],
        };
        alternatives.push(ordered_object(fields));
    }
    if allow_answer || tools.is_empty() {
        alternatives.push(ordered_object([("answer", json!({"type": "string"}))]));
    }
    let mut root = if alternatives.len() == 1 {
        alternatives.pop().unwrap_or(Value::Null)
    } else {
        json!({ "oneOf": alternatives })
    };
    if !defs.is_empty()
        && let Some(object) = root.as_object_mut()
    {
        object.insert("$defs".into(), Value::Object(defs));
    }
    root
}

/// An object schema with exactly `fields`, all required, none other. The field order of the
/// output follows the order of `properties` in the schema text, which [`schema_text`] keeps.
fn ordered_object<const N: usize>(fields: [(&str, Value); N]) -> Value {
    let names: Vec<&str> = fields.iter().map(|(n, _)| *n).collect();
    let properties: Vec<(String, Value)> = fields
        .into_iter()
        .map(|(n, v)| (n.to_string(), v))
        .collect();
    json!({
        "type": "object",
        ORDERED_PROPERTIES: properties,
        "required": names,
        "additionalProperties": false,
    })
}

/// A stand-in key holding `properties` as a list of pairs, so their order survives serde_json's
/// sorted maps until [`schema_text`] writes them out in order.
const ORDERED_PROPERTIES: &str = "$portico_ordered_properties";

/// The schema as JSON text, `properties` in the order [`ordered_object`] was given.
pub fn schema_text(schema: &Value) -> String {
    let mut out = String::new();
    write_value(schema, &mut out);
    out
}

fn write_value(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            out.push('{');
            let mut first = true;
            for (key, v) in map {
                if !first {
                    out.push(',');
                }
                first = false;
                if key == ORDERED_PROPERTIES {
                    out.push_str("\"properties\":{");
                    let pairs = v.as_array().map(Vec::as_slice).unwrap_or_default();
                    for (j, pair) in pairs.iter().enumerate() {
                        if j > 0 {
                            out.push(',');
                        }
                        let name = pair.get(0).and_then(Value::as_str).unwrap_or_default();
                        out.push_str(&Value::from(name).to_string());
                        out.push(':');
                        write_value(pair.get(1).unwrap_or(&Value::Null), out);
                    }
                    out.push('}');
                } else {
                    out.push_str(&Value::from(key.as_str()).to_string());
                    out.push(':');
                    write_value(v, out);
                }
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (j, item) in items.iter().enumerate() {
                if j > 0 {
                    out.push(',');
                }
                write_value(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// The GBNF grammar (root rule [`ROOT`]) for [`output_schema`].
pub fn output_grammar(
    tools: &[Choice<'_>],
    order: ToolFieldOrder,
    allow_answer: bool,
) -> Result<String, LlamaError> {
    let schema = schema_text(&output_schema(tools, order, allow_answer));
    llama_cpp_2::json_schema_to_grammar(&schema)
        .map_err(|e| LlamaError::Grammar(format!("the tools' schemas cannot be converted: {e}")))
}

/// llama.cpp's own grammar parser, with a model's vocabulary: tells whether a grammar is accepted
/// exactly as the provider will hand it to the sampler.
pub struct GrammarCheck {
    model: llama_cpp_2::model::LlamaModel,
}

impl std::fmt::Debug for GrammarCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrammarCheck").finish_non_exhaustive()
    }
}

impl GrammarCheck {
    /// Loads the vocabulary (only) of the GGUF model at `path`.
    pub fn load(path: &std::path::Path) -> Result<Self, LlamaError> {
        let backend = crate::provider::backend()?;
        let params = llama_cpp_2::model::params::LlamaModelParams::default().with_vocab_only(true);
        let model = llama_cpp_2::model::LlamaModel::load_from_file(backend, path, &params)
            .map_err(|e| LlamaError::Load(format!("{}: {e}", path.display())))?;
        Ok(Self { model })
    }

    /// Ok when llama.cpp parses `grammar` (root rule [`ROOT`]) into a sampler.
    pub fn check(&self, grammar: &str) -> Result<(), LlamaError> {
        llama_cpp_2::sampling::LlamaSampler::grammar(&self.model, grammar, ROOT)
            .map(drop)
            .map_err(|e| LlamaError::Grammar(format!("llama.cpp refuses the grammar: {e}")))
    }
}

/// `parameters` ready to sit inside the union: its definitions moved into `defs` under `prefix`,
/// references rewritten; "any object" when llama.cpp cannot convert it on its own.
fn embeddable(parameters: &Value, prefix: &str, defs: &mut Map<String, Value>) -> Value {
    let any_object = || json!({"type": "object"});
    let Some(object) = parameters.as_object() else {
        return any_object();
    };
    if object.is_empty() {
        return any_object();
    }
    // Alone, with its own definitions, it must convert; otherwise it would break the union.
    let mut alone = parameters.clone();
    strip_meta(&mut alone);
    if llama_cpp_2::json_schema_to_grammar(&alone.to_string()).is_err() {
        tracing::warn!(
            "a tool's input schema cannot be turned into a grammar; any JSON object is accepted"
        );
        return any_object();
    }
    let mut own: BTreeMap<String, Value> = BTreeMap::new();
    if let Some(map) = alone.as_object_mut() {
        for key in ["$defs", "definitions"] {
            if let Some(Value::Object(d)) = map.remove(key) {
                own.extend(d);
            }
        }
    }
    let mut body = alone;
    rewrite_refs(&mut body, prefix);
    for (name, mut def) in own {
        rewrite_refs(&mut def, prefix);
        defs.insert(format!("{prefix}{name}"), def);
    }
    body
}

/// Drops keywords that say what the schema is rather than what it allows.
fn strip_meta(schema: &mut Value) {
    if let Some(map) = schema.as_object_mut() {
        map.remove("$schema");
        map.remove("$id");
    }
}

fn rewrite_refs(value: &mut Value, prefix: &str) {
    match value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                if key == "$ref" {
                    if let Some(target) = v.as_str() {
                        let name = target
                            .strip_prefix("#/$defs/")
                            .or_else(|| target.strip_prefix("#/definitions/"));
                        if let Some(name) = name {
                            *v = Value::from(format!("#/$defs/{prefix}{name}"));
                        }
                    }
                } else if key != "const" && key != "enum" && key != "default" {
                    rewrite_refs(v, prefix);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| rewrite_refs(v, prefix)),
        _ => {}
    }
}

/// Reads what the model wrote under [`output_grammar`].
pub fn parse_output(text: &str) -> Result<Output, LlamaError> {
    let value: Value = serde_json::from_str(text.trim()).map_err(|e| {
        LlamaError::Output(format!("the model's output is not the JSON asked for: {e}"))
    })?;
    if let Some(answer) = value.get("answer").and_then(Value::as_str) {
        return Ok(Output::Answer(answer.to_string()));
    }
    let tool = value
        .get("tool")
        .and_then(Value::as_str)
        .ok_or_else(|| LlamaError::Output("the model's output names no tool".into()))?;
    let arguments = match value.get("arguments") {
        Some(Value::Object(a)) => Value::Object(a.clone()),
        _ => Value::Object(Map::new()),
    };
    Ok(Output::Call {
        tool: tool.to_string(),
        arguments,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_field_order_is_the_order_written() {
        let p = json!({"type": "object", "properties": {"q": {"type": "string"}}});
        let tools = [Choice {
            name: "search",
            parameters: &p,
        }];
        let a = schema_text(&output_schema(
            &tools,
            ToolFieldOrder::ArgumentsFirst,
            false,
        ));
        assert!(
            a.find("\"arguments\"").unwrap() < a.find("\"tool\"").unwrap(),
            "{a}"
        );
        let t = schema_text(&output_schema(&tools, ToolFieldOrder::ToolFirst, false));
        assert!(
            t.find("\"tool\"").unwrap() < t.find("\"arguments\"").unwrap(),
            "{t}"
        );
        assert!(!t.contains("answer") && !t.contains("oneOf"), "{t}");
        let g = output_grammar(&tools, ToolFieldOrder::ArgumentsFirst, false).unwrap();
        let args = g.find("arguments").unwrap();
        let tool = g.find("\\\"tool\\\"").unwrap();
        assert!(args < tool, "{g}");
    }

    #[test]
    fn references_move_to_the_root_under_a_prefix() {
        let p = json!({
            "type": "object",
            "$defs": {"Item": {"type": "string"}},
            "definitions": {"Pair": {"type": "array", "items": {"$ref": "#/$defs/Item"}}},
            "properties": {"a": {"$ref": "#/$defs/Item"}, "b": {"$ref": "#/definitions/Pair"}}
        });
        let mut defs = Map::new();
        let body = embeddable(&p, "t3_", &mut defs);
        assert_eq!(body["properties"]["a"]["$ref"], "#/$defs/t3_Item");
        assert_eq!(body["properties"]["b"]["$ref"], "#/$defs/t3_Pair");
        assert_eq!(defs["t3_Pair"]["items"]["$ref"], "#/$defs/t3_Item");
        assert!(body.get("$defs").is_none() && body.get("definitions").is_none());
        let tools = [
            Choice {
                name: "x",
                parameters: &p,
            },
            Choice {
                name: "y",
                parameters: &p,
            },
        ];
        output_grammar(&tools, ToolFieldOrder::ToolFirst, true).unwrap();
    }

    #[test]
    fn a_schema_llama_cpp_cannot_convert_becomes_any_object() {
        let recursive = json!({"type": "object", "properties": {"next": {"$ref": "#"}}});
        assert!(llama_cpp_2::json_schema_to_grammar(&recursive.to_string()).is_err());
        let mut defs = Map::new();
        assert_eq!(
            embeddable(&recursive, "t0_", &mut defs),
            json!({"type": "object"})
        );
        let tools = [Choice {
            name: "x",
            parameters: &recursive,
        }];
        output_grammar(&tools, ToolFieldOrder::ArgumentsFirst, true).unwrap();
    }

    #[test]
    fn outputs_are_read_back() {
        assert_eq!(
            parse_output(r#" {"arguments": {"q": "x"}, "tool": "s"} "#).unwrap(),
            Output::Call {
                tool: "s".into(),
                arguments: json!({"q": "x"})
            }
        );
        assert_eq!(
            parse_output(r#"{"answer": "hi\n"}"#).unwrap(),
            Output::Answer("hi\n".into())
        );
        assert!(parse_output("{\"arguments\": {").is_err());
        assert!(parse_output("{}").is_err());
    }
}
