//! `portico mcp`: operator tools for MCP servers. `probe` lists a server's tools or calls one;
//! `conformance-client` is the client the official MCP conformance suite drives.

use std::process::ExitCode;

use anyhow::Context;
use portico_mcp::{
    CancellationToken, Connector, Credential, IpRange, Limits, Remote, TransportKind, UrlPolicy,
};
use serde_json::{Map, Value, json};

/// Arguments of `portico mcp`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Connect to an MCP server and list its tools, or call one.
    Probe(ProbeArgs),
    /// The client the MCP conformance suite runs: it passes the server URL last and names the
    /// scenario in MCP_CONFORMANCE_SCENARIO.
    ConformanceClient(ConformanceArgs),
}

/// Arguments of `portico mcp probe`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exit status: 0 on success, 1 when the server or the tool failed, 2 on usage errors."
)]
struct ProbeArgs {
    /// The server's URL (its streamable-http or sse remote).
    url: String,
    /// Transport to use.
    #[arg(long, default_value = "streamable-http", value_parser = parse_transport)]
    transport: TransportKind,
    /// Name of an environment variable holding a Bearer token for the server.
    #[arg(long, value_name = "VAR")]
    bearer_env: Option<String>,
    /// Call this tool instead of listing tools.
    #[arg(long, value_name = "TOOL")]
    call: Option<String>,
    /// Arguments of the call, as a JSON object.
    #[arg(long, value_name = "JSON", requires = "call")]
    args: Option<String>,
    /// Refuse loopback addresses and plain http (as for a production remote).
    #[arg(long)]
    no_loopback: bool,
    /// Allow this private or link-local range anyway (repeatable), e.g. 10.0.0.0/8.
    #[arg(long, value_name = "CIDR")]
    allow: Vec<String>,
    /// Seconds a call may go without an answer or progress.
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    idle_timeout: u64,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// Arguments of `portico mcp conformance-client`.
#[derive(Debug, clap::Args)]
struct ConformanceArgs {
    /// The test server's URL (the suite passes it last).
    url: String,
}

fn parse_transport(s: &str) -> Result<TransportKind, String> {
    s.parse()
}

/// Runs `portico mcp`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    match args.command {
        Command::Probe(a) => runtime.block_on(probe(a)),
        Command::ConformanceClient(a) => runtime.block_on(conformance(a)),
    }
}

async fn probe(args: ProbeArgs) -> anyhow::Result<ExitCode> {
    let mut allow = Vec::new();
    for range in &args.allow {
        allow.push(IpRange::parse(range)?);
    }
    let policy = UrlPolicy {
        allow_loopback: !args.no_loopback,
        allow,
    };
    let limits = Limits {
        idle_timeout: std::time::Duration::from_secs(args.idle_timeout),
        ..Limits::default()
    };
    let credential = match &args.bearer_env {
        Some(var) => {
            let token = std::env::var(var)
                .with_context(|| format!("environment variable {var} is not set"))?;
            Some(Credential::bearer(token)?)
        }
        None => None,
    };
    let arguments = match &args.args {
        Some(text) => match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(map)) => Some(map),
            _ => {
                eprintln!("error: --args must be a JSON object");
                return Ok(ExitCode::from(2));
            }
        },
        None => None,
    };
    let connector = Connector::new(policy, limits)?;
    let remote = Remote {
        transport: args.transport,
        url: args.url.clone(),
    };
    let cancel = CancellationToken::new();
    let ctrl_c = cancel.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        ctrl_c.cancel();
    });
    let session = match connector.connect(&remote, credential, &cancel).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(1));
        }
    };
    let code = match &args.call {
        None => match session.list_tools(&cancel).await {
            Ok(tools) if args.json => {
                println!("{}", serde_json::to_string_pretty(&tools)?);
                ExitCode::SUCCESS
            }
            Ok(tools) => {
                if let Some((name, version)) = session.server_info() {
                    println!("{name} {version}: {} tools", tools.len());
                }
                for t in tools {
                    let hint = if t.read_only {
                        "read-only"
                    } else if t.destructive {
                        "destructive"
                    } else {
                        "writes"
                    };
                    let description = t.description.unwrap_or_default();
                    let first = description.lines().next().unwrap_or_default();
                    println!("  {} [{hint}] {first}", t.name);
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(1)
            }
        },
        Some(tool) => {
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<portico_mcp::Progress>();
            let printer = tokio::spawn(async move {
                while let Some(p) = rx.recv().await {
                    let total = p.total.map(|t| format!("/{t}")).unwrap_or_default();
                    eprintln!(
                        "progress {}{total} {}",
                        p.progress,
                        p.message.unwrap_or_default()
                    );
                }
            });
            let result = session.call_tool(tool, arguments, Some(tx), &cancel).await;
            let _ = printer.await;
            match result {
                Ok(outcome) if args.json => {
                    println!("{}", serde_json::to_string_pretty(&outcome)?);
                    if outcome.is_error {
                        ExitCode::from(1)
                    } else {
                        ExitCode::SUCCESS
                    }
                }
                Ok(outcome) => {
                    for block in &outcome.content {
                        match block.get("text").and_then(Value::as_str) {
                            Some(text) => println!("{text}"),
                            None => println!("{block}"),
                        }
                    }
                    if let Some(s) = &outcome.structured {
                        println!("{s}");
                    }
                    if outcome.is_error {
                        eprintln!("the tool reported an error");
                        ExitCode::from(1)
                    } else {
                        ExitCode::SUCCESS
                    }
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(1)
                }
            }
        }
    };
    session.close().await;
    Ok(code)
}

/// Arguments for a conformance tool call, from the tool's input schema: numbers get small
/// integers, strings a word, booleans true.
fn sample_arguments(schema: &Value) -> Map<String, Value> {
    let mut out = Map::new();
    let Some(props) = schema.get("properties").and_then(Value::as_object) else {
        return out;
    };
    for (i, (name, prop)) in props.iter().enumerate() {
        let value = match prop.get("type").and_then(Value::as_str) {
            Some("number") | Some("integer") => json!(i + 2),
            Some("boolean") => json!(true),
            Some("array") => json!([]),
            Some("object") => json!({}),
            _ => json!("portico"),
        };
        out.insert(name.clone(), value);
    }
    out
}

async fn conformance(args: ConformanceArgs) -> anyhow::Result<ExitCode> {
    let scenario = std::env::var("MCP_CONFORMANCE_SCENARIO").unwrap_or_default();
    let connector = Connector::new(UrlPolicy::loopback_allowed(), Limits::default())?;
    let remote = Remote {
        transport: TransportKind::StreamableHttp,
        url: args.url,
    };
    let cancel = CancellationToken::new();
    let session = connector.connect(&remote, None, &cancel).await?;
    let tools = session.list_tools(&cancel).await?;
    eprintln!("scenario {scenario:?}: {} tools", tools.len());
    if scenario != "initialize" {
        for tool in &tools {
            let arguments = sample_arguments(&tool.input_schema);
            let outcome = session
                .call_tool(&tool.name, Some(arguments), None, &cancel)
                .await?;
            println!(
                "{}: {}",
                tool.name,
                serde_json::to_string(&outcome.content)?
            );
        }
    }
    session.close().await;
    Ok(ExitCode::SUCCESS)
}
