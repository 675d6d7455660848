//! bench/actions: calls/s and p50/p99 latency of the MCP tool `catalog_query_catalog_entities`
//! over a generated 10,000-entity catalog, through Portico's `/api/mcp-actions/v1` and through a
//! Python server on the `mcp` package (python_server.py) holding the same entities, exported to
//! it from Portico, in one run. Closed loop at each concurrency level, one server at a time.
//!
//!   bench/actions/run.sh [--calls N] [--concurrency 1,16] [--python-only]
//!   cargo run --release -p bench-actions -- --portico-url http://127.0.0.1:7007 --token T
//!
//! Writes bench/actions/out/catalog.yaml (what Portico reads) and out/entities.json (what the
//! Python server loads: the entities as generated and processed, replaced by Portico's own export
//! when Portico runs).

mod catalog;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use clap::Parser;
use serde_json::{Value, json};

const TOOL: &str = "catalog_query_catalog_entities";
const PROTOCOL_VERSION: &str = "2025-11-25";
const SEED: u64 = 0x00ac_7105;

/// The benchmark query: production components, five fields, by name, a page of 20.
fn query_arguments() -> Value {
    json!({
        "filter": {"kind": "component", "spec.lifecycle": "production"},
        "fields": ["kind", "metadata.name", "metadata.namespace", "spec.owner", "spec.type"],
        "orderFields": {"field": "metadata.name", "order": "asc"},
        "limit": 20,
    })
}

#[derive(Parser)]
#[command(
    about = "MCP tool calls of catalog_query_catalog_entities: Portico against a Python server on the mcp package"
)]
struct Args {
    /// Entities in the generated catalog.
    #[arg(long, default_value_t = 10_000)]
    entities: usize,
    /// The Portico binary to start.
    #[arg(long, default_value = "target/release/portico")]
    portico: PathBuf,
    /// Use this running Portico instead of starting one (with --token).
    #[arg(long, requires = "token")]
    portico_url: Option<String>,
    /// Bearer token for --portico-url.
    #[arg(long)]
    token: Option<String>,
    /// Only the Python server (no Portico): for developing the bench.
    #[arg(long, conflicts_with = "portico_url")]
    python_only: bool,
    /// The Python with the `mcp` package [default: $PORTICO_MCP_PYTHON, else python3].
    #[arg(long)]
    python: Option<PathBuf>,
    /// uvicorn worker processes of the Python server (it is stateless, so more than one is fair game).
    #[arg(long, default_value_t = 1)]
    python_workers: usize,
    /// Concurrency levels, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,16")]
    concurrency: Vec<usize>,
    /// Measured calls per row.
    #[arg(long, default_value_t = 3000)]
    calls: usize,
    /// Warm-up calls before each row.
    #[arg(long, default_value_t = 200)]
    warmup: usize,
    /// Threads of the load generator's runtime.
    #[arg(long, default_value_t = 1)]
    client_threads: usize,
}

/// A child process (Portico or the Python server), stopped on drop: SIGTERM (uvicorn then stops
/// its workers), SIGKILL after 5 s.
struct Server {
    name: &'static str,
    child: Child,
}

impl Server {
    fn stop(&mut self) {
        if self.child.try_wait().ok().flatten().is_some() {
            return;
        }
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if self.child.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn check_alive(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!("{} exited early ({status})", self.name);
        }
        Ok(())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A temporary folder, removed on drop.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// An MCP endpoint to call: URL, optional Bearer token, and the session id if the server
/// insisted on `initialize`.
struct Target {
    label: String,
    url: String,
    token: Option<String>,
    session: Option<String>,
    /// The server's process, when this program started it (for its CPU time).
    pid: Option<u32>,
}

impl Target {
    fn post(&self, http: &reqwest::Client, body: String) -> reqwest::RequestBuilder {
        let mut r = http
            .post(&self.url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", PROTOCOL_VERSION);
        if let Some(t) = &self.token {
            r = r.bearer_auth(t);
        }
        if let Some(s) = &self.session {
            r = r.header("mcp-session-id", s);
        }
        r.body(body)
    }
}

fn call_body(id: usize, arguments: &Value) -> String {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
        "params": {"name": TOOL, "arguments": arguments}})
    .to_string()
}

/// The JSON-RPC response in a body that is either JSON or an SSE stream (`data:` lines).
fn rpc_response(bytes: &[u8], id: u64) -> anyhow::Result<Value> {
    let text = std::str::from_utf8(bytes).context("response is not UTF-8")?;
    if let Ok(v) = serde_json::from_str::<Value>(text) {
        return Ok(v);
    }
    // SSE: events separated by blank lines; the data of an event may span several lines.
    for event in text.replace("\r\n", "\n").split("\n\n") {
        let data: Vec<&str> = event
            .lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .map(|d| d.strip_prefix(' ').unwrap_or(d))
            .collect();
        if data.is_empty() {
            continue;
        }
        if let Ok(v) = serde_json::from_str::<Value>(&data.join("\n"))
            && v["id"].as_u64() == Some(id)
        {
            return Ok(v);
        }
    }
    bail!("no JSON-RPC response with id {id} in: {}", clip(text))
}

fn clip(s: &str) -> String {
    match s.char_indices().nth(600) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// One tools/call, fully decoded: the tool's result object `{items, totalItems, …}`.
async fn query(
    http: &reqwest::Client,
    target: &Target,
    id: u64,
    arguments: &Value,
) -> anyhow::Result<Value> {
    let response = target
        .post(http, call_body(id as usize, arguments))
        .send()
        .await?;
    let status = response.status();
    let bytes = response.bytes().await?;
    if !status.is_success() {
        bail!("HTTP {status}: {}", clip(&String::from_utf8_lossy(&bytes)));
    }
    let rpc = rpc_response(&bytes, id)?;
    if let Some(e) = rpc.get("error") {
        bail!("JSON-RPC error: {e}");
    }
    let result = &rpc["result"];
    if result["isError"] == json!(true) {
        bail!("the tool reported an error: {}", clip(&result.to_string()));
    }
    if let Some(s) = result.get("structuredContent").filter(|s| s.is_object()) {
        return Ok(s.clone());
    }
    let text = result["content"][0]["text"]
        .as_str()
        .with_context(|| format!("no structuredContent nor text content in {result}"))?;
    serde_json::from_str(text).context("the text content is not JSON")
}

/// Makes the first call; if the server wants a session, runs `initialize` first and keeps the
/// session id for every later call.
async fn connect(http: &reqwest::Client, target: &mut Target) -> anyhow::Result<Value> {
    let arguments = query_arguments();
    let first = match query(http, target, 1, &arguments).await {
        Ok(v) => return Ok(v),
        Err(e) => e,
    };
    let init = target
        .post(
            http,
            json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
                "protocolVersion": PROTOCOL_VERSION, "capabilities": {},
                "clientInfo": {"name": "bench-actions", "version": "1"}}})
            .to_string(),
        )
        .send()
        .await?;
    if !init.status().is_success() {
        bail!(
            "{}: tools/call failed ({first:#}) and so did initialize (HTTP {})",
            target.label,
            init.status()
        );
    }
    target.session = init
        .headers()
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    init.bytes().await?;
    target
        .post(
            http,
            json!({"jsonrpc": "2.0", "method": "notifications/initialized"}).to_string(),
        )
        .send()
        .await?
        .bytes()
        .await?;
    println!(
        "  ({}: tools/call alone failed ({first:#}); it answers after initialize{})",
        target.label,
        if target.session.is_some() {
            ", with a session"
        } else {
            ""
        }
    );
    query(http, target, 1, &arguments)
        .await
        .with_context(|| format!("{}: tools/call after initialize", target.label))
}

/// The tool's answer, in the form both servers are compared on.
fn names(result: &Value) -> Vec<String> {
    result["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|i| i["metadata"]["name"].as_str().unwrap_or("?").to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// One closed-loop run: `concurrency` workers, each sending the next call as soon as its last
/// one is answered; returns (seconds, latencies in ms).
async fn load(
    http: &reqwest::Client,
    target: &Arc<Target>,
    concurrency: usize,
    calls: usize,
) -> anyhow::Result<(f64, Vec<f64>)> {
    let next = Arc::new(AtomicUsize::new(0));
    let arguments = Arc::new(query_arguments().to_string());
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let (http, target, next, arguments) = (
            http.clone(),
            target.clone(),
            next.clone(),
            arguments.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(calls / concurrency + 1);
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= calls {
                    return Ok::<_, anyhow::Error>(latencies);
                }
                let body = format!(
                    r#"{{"jsonrpc":"2.0","id":{},"method":"tools/call","params":{{"name":"{TOOL}","arguments":{arguments}}}}}"#,
                    i + 2
                );
                let t0 = Instant::now();
                let response = target.post(&http, body).send().await?;
                let status = response.status();
                let bytes = response.bytes().await?;
                latencies.push(t0.elapsed().as_secs_f64() * 1e3);
                if !status.is_success()
                    || memchr::memmem::find(&bytes, b"totalItems").is_none()
                    || memchr::memmem::find(&bytes, b"\"isError\":true").is_some()
                {
                    bail!(
                        "{}: bad answer (HTTP {status}): {}",
                        target.label,
                        clip(&String::from_utf8_lossy(&bytes))
                    );
                }
            }
        }));
    }
    let mut latencies = Vec::with_capacity(calls);
    for t in tasks {
        latencies.extend(t.await??);
    }
    Ok((started.elapsed().as_secs_f64(), latencies))
}

#[derive(Clone, Copy)]
struct Figures {
    per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
    /// CPU time of the server (with its child processes) per call, when known.
    server_cpu_ms: Option<f64>,
    /// CPU time of this program (the load generator) per call.
    client_cpu_ms: f64,
}

fn own_cpu_seconds() -> f64 {
    // SAFETY: getrusage only writes into the struct we pass.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    t(usage.ru_utime) + t(usage.ru_stime)
}

/// User + system CPU seconds of a process and, recursively, its live children (uvicorn's
/// workers), from /proc.
fn process_cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which is in parentheses and may hold spaces).
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let mut seconds = ticks / hz;
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for task in tasks.flatten() {
            let children =
                std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
            for child in children.split_whitespace().filter_map(|c| c.parse().ok()) {
                seconds += process_cpu_seconds(child).unwrap_or(0.0);
            }
        }
    }
    Some(seconds)
}

async fn measure(
    http: &reqwest::Client,
    target: &Arc<Target>,
    concurrency: usize,
    calls: usize,
    warmup: usize,
) -> anyhow::Result<Figures> {
    if warmup > 0 {
        load(http, target, concurrency, warmup).await?;
    }
    let server0 = target.pid.and_then(process_cpu_seconds);
    let client0 = own_cpu_seconds();
    let (seconds, mut latencies) = load(http, target, concurrency, calls).await?;
    let client_cpu_ms = (own_cpu_seconds() - client0) * 1e3 / calls as f64;
    let server_cpu_ms = match (server0, target.pid.and_then(process_cpu_seconds)) {
        (Some(a), Some(b)) => Some((b - a) * 1e3 / calls as f64),
        _ => None,
    };
    latencies.sort_by(f64::total_cmp);
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    Ok(Figures {
        per_second: calls as f64 / seconds,
        p50_ms: pct(0.5),
        p99_ms: pct(0.99),
        server_cpu_ms,
        client_cpu_ms,
    })
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Starts `portico serve` on the generated catalog (SQLite in a temporary data folder) and
/// returns it with its base URL.
fn start_portico(
    portico: &Path,
    work: &Path,
    catalog: &Path,
    token: &str,
) -> anyhow::Result<(Server, String)> {
    let config = work.join("app-config.yaml");
    std::fs::write(
        &config,
        format!(
            "backend:\n  listen: {{host: 127.0.0.1, port: 0}}\n  auth:\n    externalAccess:\n      - type: static\n        options: {{token: {token}, subject: bench}}\ncatalog:\n  refreshIntervalSeconds: 86400\n  locations:\n    - type: file\n      target: '{}'\n",
            catalog.display()
        ),
    )?;
    let mut command = Command::new(portico);
    // PORTICO_* variables are configuration overrides for serve; the test scripts' own
    // (PORTICO_MCP_NODE, …) are not meant for it.
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("PORTICO_") {
            command.env_remove(name);
        }
    }
    let mut child = command
        .args(["serve", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(work.join("data"))
        .env("PORTICO_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| {
            format!(
                "starting {} (build it with cargo build --release -p portico)",
                portico.display()
            )
        })?;
    let mut stdout = BufReader::new(child.stdout.take().context("stdout")?);
    let server = Server {
        name: "portico",
        child,
    };
    let mut line = String::new();
    stdout.read_line(&mut line)?;
    let address = line
        .trim()
        .rsplit("http://")
        .next()
        .filter(|a| !a.is_empty())
        .with_context(|| format!("portico's first line is not its address: {line:?}"))?
        .to_string();
    // Keep reading so that a chatty server never blocks on a full pipe.
    std::thread::spawn(move || for _ in stdout.lines() {});
    Ok((server, format!("http://{address}")))
}

async fn get_json(http: &reqwest::Client, url: &str, token: &str) -> anyhow::Result<Value> {
    let response = http.get(url).bearer_auth(token).send().await?;
    let status = response.status();
    let bytes = response.bytes().await?;
    ensure!(
        status.is_success(),
        "GET {url}: HTTP {status}: {}",
        clip(&String::from_utf8_lossy(&bytes))
    );
    Ok(serde_json::from_slice(&bytes)?)
}

/// Every entity Portico holds, as its catalog API gives them.
async fn export(http: &reqwest::Client, base: &str, token: &str) -> anyhow::Result<Vec<Value>> {
    const PAGE: usize = 1000;
    let mut all = Vec::new();
    loop {
        let url = format!(
            "{base}/api/catalog/entities?offset={}&limit={PAGE}",
            all.len()
        );
        let page = get_json(http, &url, token).await?;
        let items = page.as_array().context("GET /entities is not an array")?;
        let n = items.len();
        all.extend(items.iter().cloned());
        if n < PAGE {
            return Ok(all);
        }
    }
}

fn python_version(python: &Path) -> String {
    Command::new(python)
        .args([
            "-c",
            "import importlib.metadata as m, sys; print(f\"mcp {m.version('mcp')}, uvicorn {m.version('uvicorn')}, Python {sys.version.split()[0]}\")",
        ])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "mcp (version unknown)".into())
}

fn row(server: &str, f: &Figures) {
    let server_cpu = f
        .server_cpu_ms
        .map_or_else(|| "-".to_string(), |ms| format!("{ms:.3}"));
    println!(
        "  {server:<16} {:>10.0} {:>10.3} {:>10.3} {server_cpu:>14} {:>14.3}",
        f.per_second, f.p50_ms, f.p99_ms, f.client_cpu_ms
    );
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    ensure!(
        args.calls > 0 && args.concurrency.iter().all(|&c| c > 0),
        "--calls and --concurrency must be positive"
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.client_threads)
        .enable_all()
        .build()?;
    runtime.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let out = here.join("out");
    std::fs::create_dir_all(&out)?;
    let catalog_path = out.join("catalog.yaml");
    let entities_path = out.join("entities.json");

    // 1. The catalog.
    let raw = catalog::generate(args.entities, SEED);
    catalog::check(&raw);
    catalog::write_yaml(&catalog_path, &raw)?;
    let stored = catalog::as_stored(&raw, &format!("file:{}", catalog_path.display()), SEED);
    std::fs::write(&entities_path, serde_json::to_vec(&stored)?)?;
    let count = |kind: &str| raw.iter().filter(|e| e["kind"] == kind).count();
    let production = raw
        .iter()
        .filter(|e| e["kind"] == "Component" && e["spec"]["lifecycle"] == "production")
        .count();
    println!(
        "bench/actions: {} entities ({} Components, {production} of them in production; {} APIs, {} Resources, {} Systems, {} Groups, {} Users) in {}",
        raw.len(),
        count("Component"),
        count("API"),
        count("Resource"),
        count("System"),
        count("Group"),
        count("User"),
        catalog_path.display()
    );

    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(60))
        .build()?;

    // 2. Portico.
    // Dropped in reverse order: Portico stops before its data folder goes.
    let mut work_dir = None;
    let mut portico_server = None;
    let mut targets: Vec<Target> = Vec::new();
    if !args.python_only {
        let (base, token) = match (&args.portico_url, &args.token) {
            (Some(url), Some(token)) => (url.trim_end_matches('/').to_string(), token.clone()),
            _ => {
                let work = std::env::temp_dir()
                    .join(format!("portico-bench-actions-{}", std::process::id()));
                let _ = std::fs::remove_dir_all(&work);
                std::fs::create_dir_all(&work)?;
                let work = work_dir.insert(TempDir(work)).0.clone();
                let token = format!(
                    "bench-actions-{:016x}",
                    catalog::Rng::new(std::process::id().into()).next_u64()
                );
                let started = Instant::now();
                let (mut server, base) =
                    start_portico(&args.portico, &work, &catalog_path, &token)?;
                let count_url = format!("{base}/api/catalog/entities/by-query?limit=1");
                loop {
                    tokio::time::sleep(Duration::from_millis(250)).await;
                    server.check_alive()?;
                    // Portico also serves its own built-in entity (the actions server).
                    if let Ok(body) = get_json(&http, &count_url, &token).await
                        && body["totalItems"].as_u64() >= Some(args.entities as u64)
                    {
                        break;
                    }
                    ensure!(
                        started.elapsed() < Duration::from_secs(900),
                        "Portico did not serve the {} entities within 15 minutes",
                        args.entities
                    );
                }
                println!(
                    "portico: serving the {} entities at {base} after {:.1} s",
                    args.entities,
                    started.elapsed().as_secs_f64()
                );
                // It refreshes the database's planner statistics right after the load.
                tokio::time::sleep(Duration::from_secs(3)).await;
                portico_server = Some(server);
                (base, token)
            }
        };
        // The Python server gets exactly what Portico holds.
        let exported = export(&http, &base, &token).await?;
        std::fs::write(&entities_path, serde_json::to_vec(&exported)?)?;
        println!(
            "portico: exported its {} entities to {} for the Python server",
            exported.len(),
            entities_path.display()
        );
        targets.push(Target {
            label: "portico".into(),
            url: format!("{base}/api/mcp-actions/v1"),
            token: Some(token),
            session: None,
            pid: portico_server.as_ref().map(|s: &Server| s.child.id()),
        });
    }

    // 3. The Python server.
    let python = args
        .python
        .clone()
        .or_else(|| std::env::var_os("PORTICO_MCP_PYTHON").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("python3"));
    let port = free_port()?;
    let started = Instant::now();
    let mut python_server = Server {
        name: "the Python server",
        child: Command::new(&python)
            .arg(here.join("python_server.py"))
            .arg("--entities")
            .arg(&entities_path)
            .args(["--port", &port.to_string()])
            .args(["--workers", &args.python_workers.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::inherit())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| {
                format!(
                    "starting {} (install_mcp_peers gives a Python with mcp)",
                    python.display()
                )
            })?,
    };
    let python_target = Target {
        label: "python (mcp)".into(),
        url: format!("http://127.0.0.1:{port}/mcp"),
        token: None,
        session: None,
        pid: Some(python_server.child.id()),
    };
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        python_server.check_alive()?;
        if query(&http, &python_target, 1, &query_arguments())
            .await
            .is_ok()
        {
            break;
        }
        ensure!(
            started.elapsed() < Duration::from_secs(120),
            "the Python server did not answer within 2 minutes"
        );
    }
    let python_about = python_version(&python);
    println!(
        "python: {python_about}, serving {} on 127.0.0.1:{port} after {:.1} s ({} worker{}, stateless, JSON responses, no auth)",
        entities_path.display(),
        started.elapsed().as_secs_f64(),
        args.python_workers,
        if args.python_workers == 1 { "" } else { "s" }
    );
    targets.push(python_target);

    // 4. Both answer the query alike.
    let mut answers = Vec::new();
    for t in targets.iter_mut() {
        let answer = connect(&http, t)
            .await
            .with_context(|| format!("{}: the benchmark query", t.label))?;
        answers.push((t.label.clone(), answer));
    }
    let (ref_label, reference) = &answers[0];
    for (label, answer) in &answers[1..] {
        if answer["totalItems"] != reference["totalItems"] || names(answer) != names(reference) {
            bail!(
                "the servers disagree on the benchmark query:\n  {ref_label}: totalItems {}, first page {:?}\n  {label}: totalItems {}, first page {:?}",
                reference["totalItems"],
                names(reference),
                answer["totalItems"],
                names(answer)
            );
        }
        if answer["items"] != reference["items"] {
            println!(
                "warning: same entities, but the items differ:\n  {ref_label}: {}\n  {label}: {}",
                clip(&reference["items"][0].to_string()),
                clip(&answer["items"][0].to_string())
            );
        }
    }
    let first = names(reference);
    println!(
        "query: {}\n  every server: totalItems {}, hasMoreEntities {}, first page {} … {} ({} items)",
        query_arguments(),
        reference["totalItems"],
        reference["hasMoreEntities"],
        first.first().map_or("-", String::as_str),
        first.last().map_or("-", String::as_str),
        first.len()
    );
    // The second page through each server's cursor (a warning only: the load uses page one).
    let mut seconds = Vec::new();
    for ((label, answer), t) in answers.iter().zip(&targets) {
        match answer["nextPageCursor"].as_str() {
            Some(cursor) => {
                let args2 =
                    json!({"cursor": cursor, "fields": query_arguments()["fields"], "limit": 20});
                match query(&http, t, 2, &args2).await {
                    Ok(page) => seconds.push((label.clone(), names(&page))),
                    Err(e) => println!("warning: {label}: the second page by cursor failed: {e:#}"),
                }
            }
            None => println!("warning: {label}: no nextPageCursor on the first page"),
        }
    }
    if seconds.windows(2).any(|w| w[0].1 != w[1].1) {
        println!("warning: the servers' second pages differ: {seconds:?}");
    }

    // 5. The load, one server at a time.
    let all: Vec<Arc<Target>> = targets.into_iter().map(Arc::new).collect();
    println!(
        "\n{TOOL}: {} calls per row after {} warm-up, closed loop over loopback HTTP, load generator on {} thread{}\n\
         CPU columns: CPU time per call of the server process (with its workers) and of the load generator",
        args.calls,
        args.warmup,
        args.client_threads,
        if args.client_threads == 1 { "" } else { "s" }
    );
    let mut summary = Vec::new();
    for &concurrency in &args.concurrency {
        println!("\nconcurrency {concurrency}");
        println!(
            "  {:<16} {:>10} {:>10} {:>10} {:>14} {:>14}",
            "server", "calls/s", "p50 ms", "p99 ms", "server CPU ms", "client CPU ms"
        );
        let mut figures = Vec::new();
        for t in &all {
            let f = measure(&http, t, concurrency, args.calls, args.warmup).await?;
            row(&t.label, &f);
            figures.push(f);
        }
        if figures.len() == 2 {
            let ratio = figures[0].per_second / figures[1].per_second;
            println!("  portico / python: calls/s {ratio:.2}x (goal >= 5x)");
            summary.push((concurrency, ratio));
        }
    }
    if !summary.is_empty() {
        let met = summary.iter().all(|(_, r)| *r >= 5.0);
        println!(
            "\ngoal (portico >= 5x the Python server's calls/s at every level): {}",
            if met { "met" } else { "NOT met" }
        );
    }
    drop(python_server);
    drop(portico_server);
    drop(work_dir);
    Ok(())
}
