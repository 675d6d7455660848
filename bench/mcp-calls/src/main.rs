//! bench/mcp-calls: `tools/call` through Portico's MCP pool, through the official TypeScript
//! SDK client and through a raw HTTP POST loop (the floor), in one run, at concurrency 1 and 32,
//! against a minimal Rust echo server (a child process, so it is not counted as client CPU) and
//! against server-everything. Prints calls/s, p50/p99 latency and the client's own CPU time
//! per call, and the ratios the issue sets as goals.
//!
//!   cargo run --release -p bench-mcp-calls -- [--calls N] [--everything URL]
//!       [--only echo|everything] [--concurrency N] [--workers N (client runtime threads, 2)]
//!
//! Needs `install_mcp_peers` (scripts/lib/mcp-peers.sh) for Node 22 and the TypeScript SDK;
//! the server-everything rows need `start_mcp_peers` (or `--everything URL`).

mod echo;

/// The allocator the `portico` binary uses, so the client runs as it does in Portico.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use portico_mcp::{
    CancellationToken, Connector, Limits, NoCredentials, Pool, PoolConfig, Remote, ServerSpec,
    TransportKind, UrlPolicy,
};
use serde_json::{Value, json};

/// One measured run.
#[derive(Debug, Clone, Copy)]
struct Figures {
    calls: usize,
    seconds: f64,
    p50_ms: f64,
    p99_ms: f64,
    cpu_ms_per_call: f64,
}

impl Figures {
    fn per_second(&self) -> f64 {
        self.calls as f64 / self.seconds
    }
}

fn cpu_seconds() -> f64 {
    // SAFETY: getrusage only writes into the struct we pass.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    t(usage.ru_utime) + t(usage.ru_stime)
}

fn percentiles(mut latencies: Vec<f64>) -> (f64, f64) {
    latencies.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    (pct(0.5), pct(0.99))
}

/// Runs `calls` calls of `call` with `concurrency` in flight; measures latency and CPU.
async fn measure<F, Fut>(calls: usize, concurrency: usize, call: F) -> anyhow::Result<Figures>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send,
{
    let call = Arc::new(call);
    for i in 0..50 {
        call(i).await?;
    }
    let next = Arc::new(AtomicUsize::new(0));
    let cpu0 = cpu_seconds();
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let call = call.clone();
        let next = next.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= calls {
                    return Ok::<_, anyhow::Error>(lat);
                }
                let start = Instant::now();
                call(i + 1000).await?;
                lat.push(start.elapsed().as_secs_f64() * 1e3);
            }
        }));
    }
    let mut latencies = Vec::with_capacity(calls);
    for t in tasks {
        latencies.extend(t.await??);
    }
    let seconds = t0.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    let (p50_ms, p99_ms) = percentiles(latencies);
    Ok(Figures {
        calls,
        seconds,
        p50_ms,
        p99_ms,
        cpu_ms_per_call: cpu * 1e3 / calls as f64,
    })
}

async fn portico(url: &str, concurrency: usize, calls: usize) -> anyhow::Result<Figures> {
    let limits = Limits {
        max_concurrent_calls: 64,
        ..Limits::default()
    };
    let connector = Connector::new(UrlPolicy::loopback_allowed(), limits)?;
    let pool = Arc::new(Pool::new(
        connector,
        Arc::new(NoCredentials),
        PoolConfig::default(),
    ));
    let servers = [ServerSpec {
        id: "api:default/bench".into(),
        remote: Remote {
            transport: TransportKind::StreamableHttp,
            url: url.into(),
        },
    }];
    let cancel = CancellationToken::new();
    let listing = pool.list("bench", &servers, &cancel).await;
    if let Some((_, e)) = listing.failures.first() {
        bail!("portico could not list tools: {e}");
    }
    let args = json!({"message": "hello"}).as_object().cloned();
    let p = pool.clone();
    let figures = measure(calls, concurrency, move |_| {
        let p = p.clone();
        let args = args.clone();
        let cancel = cancel.clone();
        async move {
            let out = p
                .call_tool("bench", "bench__echo", args, None, &cancel)
                .await?;
            if out.is_error {
                bail!("tool error");
            }
            Ok(())
        }
    })
    .await;
    pool.close_all().await;
    figures
}

async fn raw(url: &str, concurrency: usize, calls: usize) -> anyhow::Result<Figures> {
    let http = reqwest::Client::builder().no_proxy().build()?;
    let post = |body: Value, session: Option<String>| {
        let mut r = http
            .post(url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-11-25");
        if let Some(s) = session {
            r = r.header("mcp-session-id", s);
        }
        r.body(body.to_string())
    };
    let init = post(
        json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {},
            "clientInfo": {"name": "raw", "version": "1"}}}),
        None,
    )
    .send()
    .await?;
    let session = init
        .headers()
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    init.bytes().await?;
    post(
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        session.clone(),
    )
    .send()
    .await?
    .bytes()
    .await?;
    let url = url.to_string();
    measure(calls, concurrency, move |i| {
        let mut r = http
            .post(&url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-11-25");
        if let Some(s) = &session {
            r = r.header("mcp-session-id", s.as_str());
        }
        let body = format!(
            r#"{{"jsonrpc":"2.0","id":{i},"method":"tools/call","params":{{"name":"echo","arguments":{{"message":"hello"}},"_meta":{{"progressToken":{i}}}}}}}"#
        );
        async move {
            let bytes = r.body(body).send().await?.bytes().await?;
            if !bytes.windows(8).any(|w| w == b"\"result\"") {
                bail!("no result in {}", String::from_utf8_lossy(&bytes));
            }
            Ok(())
        }
    })
    .await
}

fn typescript(
    node: &PathBuf,
    modules: &PathBuf,
    url: &str,
    concurrency: usize,
    calls: usize,
) -> anyhow::Result<Figures> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("ts-client.mjs");
    let out = Command::new(node)
        .arg("--no-warnings")
        .arg(script)
        .arg(modules)
        .arg(url)
        .arg("echo")
        .arg(r#"{"message":"hello"}"#)
        .arg(concurrency.to_string())
        .arg(calls.to_string())
        .stderr(Stdio::inherit())
        .output()
        .context("running the TypeScript client")?;
    if !out.status.success() {
        bail!("the TypeScript client failed");
    }
    let v: Value = serde_json::from_slice(&out.stdout).context("TypeScript client output")?;
    let f = |k: &str| v[k].as_f64().unwrap_or(f64::NAN);
    Ok(Figures {
        calls: f("calls") as usize,
        seconds: f("seconds"),
        p50_ms: f("p50_ms"),
        p99_ms: f("p99_ms"),
        cpu_ms_per_call: f("cpu_ms_per_call"),
    })
}

struct EchoChild(std::process::Child);

impl Drop for EchoChild {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_echo() -> anyhow::Result<(EchoChild, String)> {
    let mut child = Command::new(std::env::current_exe()?)
        .arg("serve-echo")
        .stdout(Stdio::piped())
        .spawn()?;
    let stdout = child.stdout.take().context("echo server stdout")?;
    let child = EchoChild(child);
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line)?;
    let port: u16 = line.trim().parse().context("echo server port")?;
    Ok((child, format!("http://127.0.0.1:{port}/mcp")))
}

fn row(name: &str, f: &Figures) {
    println!(
        "  {name:<12} {:>9.0} {:>9.3} {:>9.3} {:>12.3}",
        f.per_second(),
        f.p50_ms,
        f.p99_ms,
        f.cpu_ms_per_call
    );
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("serve-echo") {
        return echo::serve();
    }
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let calls: usize = flag("--calls")
        .map(|c| c.parse())
        .transpose()?
        .unwrap_or(2000);
    let everything =
        flag("--everything").or_else(|| std::env::var("PORTICO_TEST_MCP_EVERYTHING_HTTP").ok());
    let peers = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/mcp-servers");
    let node = std::env::var("PORTICO_MCP_NODE")
        .map(PathBuf::from)
        .unwrap_or_else(|_| peers.join("node_modules/.bin/node"));
    let modules = peers.join("node_modules");

    let only = flag("--only").unwrap_or_default();
    let (_echo, echo_url) = start_echo()?;
    let mut targets = Vec::new();
    if only != "everything" {
        targets.push(("rust echo", echo_url));
    }
    match everything {
        Some(url) if only != "echo" => targets.push(("server-everything", url)),
        Some(_) => {}
        None => println!(
            "(server-everything rows skipped: no --everything URL or PORTICO_TEST_MCP_EVERYTHING_HTTP)"
        ),
    }
    let levels: Vec<usize> = match flag("--concurrency") {
        Some(c) => vec![c.parse()?],
        None => vec![1, 32],
    };
    let workers: usize = flag("--workers")
        .map(|w| w.parse())
        .transpose()?
        .unwrap_or(2);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()?;
    println!(
        "tools/call, {calls} calls per row (after 50 warm-up calls); CPU is the client process's own"
    );
    for (target, url) in &targets {
        for &concurrency in &levels {
            println!("\n{target}, concurrency {concurrency}");
            println!(
                "  {:<12} {:>9} {:>9} {:>9} {:>12}",
                "client", "calls/s", "p50 ms", "p99 ms", "CPU ms/call"
            );
            let raw = runtime.block_on(raw(url, concurrency, calls))?;
            row("raw POST", &raw);
            let portico = runtime.block_on(portico(url, concurrency, calls))?;
            row("portico", &portico);
            let ts = typescript(&node, &modules, url, concurrency, calls)?;
            row("typescript", &ts);
            println!(
                "  portico vs typescript: CPU/call {:.2}x (goal <= 0.20), calls/s {:.2}x; p50 over the raw floor {:+.3} ms (goal <= 0.1)",
                portico.cpu_ms_per_call / ts.cpu_ms_per_call,
                portico.per_second() / ts.per_second(),
                portico.p50_ms - raw.p50_ms,
            );
        }
    }
    std::thread::sleep(Duration::from_millis(10));
    Ok(())
}
