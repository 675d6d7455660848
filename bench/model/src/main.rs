//! bench/model: the embedded model's tool choice on a question set written for it (44 questions
//! over 20 tools from 5 servers, look-alikes included: search versus create, read versus write,
//! list versus get), for each installed pinned model, with the tools ranked first (top 3) and
//! without (all 20). Each configuration runs in its own process so its peak memory is its own.
//!
//! Usage: bench-model [--data-dir DIR] [--threads N] [--sizes 0.5b,1.5b] [--order arguments-first|tool-first]

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, bail};
use portico_assistant::model::{
    ChatRequest, Message, ModelConfig, ModelProvider, Role, ToolDef, ToolFieldOrder,
};
use portico_llama::{EmbeddedProvider, EmbeddedSettings};
use serde::Deserialize;
use serde_json::{Value, json};

const TOOLS: &str = include_str!("../tools.json");
const QUESTIONS: &str = include_str!("../questions.json");
const SYSTEM: &str = "You are Portico, an assistant for a software catalog. Answer the user's question. When a tool can help, call it with precise arguments; prefer tools over guessing.";

#[derive(Deserialize)]
struct Tool {
    name: String,
    description: String,
    parameters: Value,
}

#[derive(Deserialize)]
struct Question {
    q: String,
    tool: String,
    /// Per argument, words its value must contain (case-insensitive).
    args: serde_json::Map<String, Value>,
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let threads: u32 = flag("--threads").map_or(Ok(2), |t| t.parse())?;
    let order = match flag("--order").as_deref() {
        None | Some("arguments-first") => ToolFieldOrder::ArgumentsFirst,
        Some("tool-first") => ToolFieldOrder::ToolFirst,
        Some(other) => bail!("--order must be arguments-first or tool-first, not {other}"),
    };
    if let Some(path) = flag("--one") {
        let top_k: usize = flag("--top-k").context("--top-k")?.parse()?;
        return one(PathBuf::from(path), top_k, threads, order);
    }
    let data_dir = flag("--data-dir").map(PathBuf::from).unwrap_or_else(|| {
        std::env::var_os("PORTICO_DATA_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                    .join(".local/share/portico")
            })
    });
    let sizes = flag("--sizes").unwrap_or_else(|| "0.5b,1.5b".into());
    let installed = portico_llama::installed(&data_dir);
    let tools: Vec<Tool> = serde_json::from_str(TOOLS)?;
    let questions: Vec<Question> = serde_json::from_str(QUESTIONS)?;
    println!(
        "bench/model: {} questions over {} tools, {threads} threads, {:?}, release build",
        questions.len(),
        tools.len(),
        order
    );
    println!(
        "{:<6} {:<10} {:>7} {:>7} {:>7} {:>9} {:>9} {:>8}",
        "model", "tools", "tool %", "args %", "valid %", "median s", "first s", "peak MB"
    );
    let exe = std::env::current_exe()?;
    for size in sizes.split(',') {
        let Some(model) = installed.iter().find(|i| i.model.size == size) else {
            println!(
                "{size:<6} not installed in {} (portico model install --size {size})",
                data_dir.display()
            );
            continue;
        };
        for top_k in [3usize, 0] {
            let out = Command::new(&exe)
                .args([
                    "--one",
                    &model.path.display().to_string(),
                    "--top-k",
                    &top_k.to_string(),
                ])
                .args(["--threads", &threads.to_string()])
                .args([
                    "--order",
                    match order {
                        ToolFieldOrder::ArgumentsFirst => "arguments-first",
                        ToolFieldOrder::ToolFirst => "tool-first",
                    },
                ])
                .output()?;
            if !out.status.success() {
                bail!(
                    "{size} top-{top_k} failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            eprint!("{}", String::from_utf8_lossy(&out.stderr));
            let r: Value = serde_json::from_slice(&out.stdout)?;
            println!(
                "{:<6} {:<10} {:>7.1} {:>7.1} {:>7.1} {:>9.2} {:>9.2} {:>8}",
                size,
                if top_k == 0 {
                    "all 20".to_string()
                } else {
                    format!("top {top_k}")
                },
                r["tool"].as_f64().unwrap_or(0.0),
                r["args"].as_f64().unwrap_or(0.0),
                r["valid"].as_f64().unwrap_or(0.0),
                r["median"].as_f64().unwrap_or(0.0),
                r["first"].as_f64().unwrap_or(0.0),
                r["peak_mb"].as_u64().unwrap_or(0),
            );
        }
    }
    Ok(())
}

/// One configuration, in this process: prints its figures as one JSON object.
fn one(path: PathBuf, top_k: usize, threads: u32, order: ToolFieldOrder) -> anyhow::Result<()> {
    let tools: Vec<Tool> = serde_json::from_str(TOOLS)?;
    let questions: Vec<Question> = serde_json::from_str(QUESTIONS)?;
    let defs: Vec<ToolDef> = tools
        .iter()
        .map(|t| ToolDef {
            name: t.name.clone(),
            description: t.description.clone(),
            parameters: t.parameters.clone(),
        })
        .collect();
    let config = ModelConfig {
        threads: Some(threads),
        rank_top_k: top_k,
        tool_field_order: order,
        ..ModelConfig::default()
    };
    let provider = EmbeddedProvider::load(EmbeddedSettings::from_config(&config, path)?)?;
    let runtime = tokio::runtime::Builder::new_current_thread().build()?;
    let (mut right_tool, mut right_args, mut valid, mut calls) = (0, 0, 0, 0);
    let mut seconds = Vec::new();
    for question in &questions {
        let request = ChatRequest {
            messages: vec![
                Message::text(Role::System, SYSTEM),
                Message::text(Role::User, question.q.clone()),
            ],
            tools: defs.clone(),
        };
        let started = Instant::now();
        let response = runtime.block_on(provider.complete(&request, None));
        seconds.push(started.elapsed().as_secs_f64());
        let response = response.map_err(|e| anyhow::anyhow!("{}: {e}", question.q))?;
        let Some(call) = response.tool_calls.first() else {
            eprintln!(
                "  [{top_k}] no call: {:?} -> {:?}",
                question.q, response.text
            );
            continue;
        };
        calls += 1;
        let tool = tools.iter().find(|t| t.name == call.name);
        if tool.is_some_and(|t| valid_against(&call.arguments, &t.parameters)) {
            valid += 1;
        }
        if call.name != question.tool {
            eprintln!(
                "  [{top_k}] {:?} -> {} {}",
                question.q, call.name, call.arguments
            );
            continue;
        }
        right_tool += 1;
        let args_ok = question.args.iter().all(|(name, words)| {
            let value = call.arguments.get(name).map(|v| match v {
                Value::String(s) => s.to_lowercase(),
                other => other.to_string().to_lowercase(),
            });
            words.as_array().into_iter().flatten().all(|w| {
                let w = w.as_str().unwrap_or_default().to_lowercase();
                value.as_deref().is_some_and(|v| v.contains(&w))
            })
        });
        if args_ok {
            right_args += 1;
        } else {
            eprintln!(
                "  [{top_k}] {:?} -> arguments {}",
                question.q, call.arguments
            );
        }
    }
    let n = questions.len() as f64;
    let first = seconds.first().copied().unwrap_or(0.0);
    seconds.sort_by(f64::total_cmp);
    let median = seconds[seconds.len() / 2];
    let result = json!({
        "tool": 100.0 * f64::from(right_tool) / n,
        "args": 100.0 * f64::from(right_args) / n,
        "valid": if calls == 0 { 0.0 } else { 100.0 * f64::from(valid) / f64::from(calls) },
        "median": median,
        "first": first,
        "peak_mb": peak_rss_kb() / 1024,
    });
    println!("{result}");
    Ok(())
}

/// Whether `value` satisfies the parts of `schema` the bench's tools use: type, required,
/// properties, enum, additionalProperties false.
fn valid_against(value: &Value, schema: &Value) -> bool {
    if let Some(options) = schema.get("enum").and_then(Value::as_array)
        && !options.contains(value)
    {
        return false;
    }
    let type_ok = match schema.get("type").and_then(Value::as_str) {
        Some("object") => value.is_object(),
        Some("string") => value.is_string(),
        Some("integer") => value.is_i64() || value.is_u64(),
        Some("number") => value.is_number(),
        Some("boolean") => value.is_boolean(),
        Some("array") => value.is_array(),
        _ => true,
    };
    if !type_ok {
        return false;
    }
    let Some(object) = value.as_object() else {
        return true;
    };
    let properties = schema.get("properties").and_then(Value::as_object);
    let required = schema.get("required").and_then(Value::as_array);
    if required
        .into_iter()
        .flatten()
        .any(|r| !object.contains_key(r.as_str().unwrap_or_default()))
    {
        return false;
    }
    let closed = schema.get("additionalProperties") == Some(&Value::Bool(false));
    object
        .iter()
        .all(|(k, v)| match properties.and_then(|p| p.get(k)) {
            Some(s) => valid_against(v, s),
            None => !closed,
        })
}

/// This process's peak resident memory (VmHWM), in KiB.
fn peak_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}
