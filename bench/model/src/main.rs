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
    /// The tool the question needs; none for a question to answer in text.
    tool: Option<String>,
    /// Per argument, words its value must contain (case-insensitive).
    #[serde(default)]
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
    let orders = flag("--order").unwrap_or_else(|| "tool-first,arguments-first".into());
    let orders = orders
        .split(',')
        .map(|o| match o {
            "arguments-first" => Ok(ToolFieldOrder::ArgumentsFirst),
            "tool-first" => Ok(ToolFieldOrder::ToolFirst),
            other => bail!("--order takes arguments-first and tool-first, not {other}"),
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    if let Some(path) = flag("--one") {
        let top_k: usize = flag("--top-k").context("--top-k")?.parse()?;
        return one(PathBuf::from(path), top_k, threads, orders[0]);
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
    let ranks =
        flag("--ranks").unwrap_or_else(|| format!("{},0", ModelConfig::default().rank_top_k));
    let ranks = ranks
        .split(',')
        .map(str::parse)
        .collect::<Result<Vec<usize>, _>>()
        .context("--ranks takes numbers, 0 for all tools")?;
    let installed = portico_llama::installed(&data_dir);
    let tools: Vec<Tool> = serde_json::from_str(TOOLS)?;
    let questions: Vec<Question> = serde_json::from_str(QUESTIONS)?;
    let chat = questions.iter().filter(|q| q.tool.is_none()).count();
    println!(
        "bench/model: {} tool questions over {} tools and {chat} chat questions, {threads} threads, release build",
        questions.len() - chat,
        tools.len(),
    );
    println!(
        "{:<6} {:<16} {:<7} {:>8} {:>7} {:>7} {:>7} {:>7} {:>9} {:>9} {:>8}",
        "model",
        "order",
        "tools",
        "ranked %",
        "tool %",
        "args %",
        "valid %",
        "chat %",
        "median s",
        "first s",
        "peak MB"
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
        for &order in &orders {
            let order_name = match order {
                ToolFieldOrder::ArgumentsFirst => "arguments-first",
                ToolFieldOrder::ToolFirst => "tool-first",
            };
            for &top_k in &ranks {
                let out = Command::new(&exe)
                    .args([
                        "--one",
                        &model.path.display().to_string(),
                        "--top-k",
                        &top_k.to_string(),
                    ])
                    .args(["--threads", &threads.to_string()])
                    .args(["--order", order_name])
                    .output()?;
                eprint!("{}", String::from_utf8_lossy(&out.stderr));
                let tools_column = if top_k == 0 || top_k >= tools.len() {
                    format!("all {}", tools.len())
                } else {
                    format!("top {top_k}")
                };
                if !out.status.success() {
                    println!("{size:<6} {order_name:<16} {tools_column:<7} failed (see above)");
                    continue;
                }
                let r: Value = serde_json::from_slice(&out.stdout)?;
                let f = |k: &str| r[k].as_f64().unwrap_or(0.0);
                println!(
                    "{:<6} {:<16} {:<7} {:>8.1} {:>7.1} {:>7.1} {:>7.1} {:>7.1} {:>9.2} {:>9.2} {:>8}",
                    size,
                    order_name,
                    tools_column,
                    f("ranked"),
                    f("tool"),
                    f("args"),
                    f("valid"),
                    f("chat"),
                    f("median"),
                    f("first"),
                    r["peak_mb"].as_u64().unwrap_or(0),
                );
            }
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
    let (mut ranked, mut right_tool, mut right_args, mut valid, mut calls, mut chatted) =
        (0, 0, 0, 0, 0, 0);
    let mut seconds = Vec::new();
    for question in &questions {
        if let Some(expected) = &question.tool
            && portico_llama::provider::rank(&question.q, &defs, top_k)
                .0
                .iter()
                .any(|t| &t.name == expected)
        {
            ranked += 1;
        }
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
        let response = match response {
            Ok(response) => response,
            Err(e) => {
                // A failed call is a wrong one; the run goes on.
                eprintln!("  [{top_k}] {:?} -> error: {e}", question.q);
                continue;
            }
        };
        let call = response.tool_calls.first();
        let Some(expected) = &question.tool else {
            match call {
                None => chatted += 1,
                Some(call) => eprintln!(
                    "  [{top_k}] chat {:?} -> {} {}",
                    question.q, call.name, call.arguments
                ),
            }
            continue;
        };
        let Some(call) = call else {
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
        if &call.name != expected {
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
    let chat = questions.iter().filter(|q| q.tool.is_none()).count();
    let n = (questions.len() - chat) as f64;
    let first = seconds.first().copied().unwrap_or(0.0);
    seconds.sort_by(f64::total_cmp);
    let median = seconds[seconds.len() / 2];
    let result = json!({
        "ranked": 100.0 * f64::from(ranked) / n,
        "tool": 100.0 * f64::from(right_tool) / n,
        "args": 100.0 * f64::from(right_args) / n,
        // Calls whose arguments satisfy their tool's schema, of all calls made.
        "valid": if calls == 0 { 0.0 } else { 100.0 * f64::from(valid) / f64::from(calls) },
        "chat": if chat == 0 { 0.0 } else { 100.0 * f64::from(chatted) / chat as f64 },
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
