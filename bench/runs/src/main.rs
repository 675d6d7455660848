//! bench/runs: assistant runs through a real `portico serve` (release) with an instant scripted
//! model in this process, so that the figures are Portico's own run machinery: the time from
//! `POST …/messages` to the run's first event and to `run.completed`, events/s one at a time and
//! at concurrency 32, 1,000 runs in flight together (errors, wall time) and the memory an idle
//! conversation costs. Beside each figure, the floor: the same chat request sent to the model
//! directly (time to its first chunk and to `[DONE]`).
//!
//!   bench/runs/run.sh [--runs N] [--concurrent N] [--tool-calls] [--postgres URL]

mod model;
mod sse;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use axum::body::Bytes;
use clap::Parser;
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use crate::model::{GATE, Model};
use crate::sse::SseReader;

#[derive(Parser)]
#[command(
    about = "Assistant runs through portico serve with an instant scripted model, beside the model called directly"
)]
struct Args {
    /// The Portico binary to start.
    #[arg(long, default_value = "target/release/portico")]
    portico: PathBuf,
    /// Run on this PostgreSQL database (backend.database.url) instead of SQLite in a temporary
    /// folder. The bench only adds rows; a throwaway database is best.
    #[arg(long, value_name = "URL")]
    postgres: Option<String>,
    /// The model's first reply calls mcp-actions__auth_who_am_i, the second answers.
    #[arg(long)]
    tool_calls: bool,
    /// Warm-up runs (and as many direct model calls) before measuring.
    #[arg(long, default_value_t = 20)]
    warmup: usize,
    /// Sequential runs measured (and as many direct model calls).
    #[arg(long, default_value_t = 200)]
    runs: usize,
    /// Concurrency of the closed-loop row.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Runs in the closed-loop row (and as many direct model calls).
    #[arg(long, default_value_t = 640)]
    loop_runs: usize,
    /// Idle conversations (one completed run each) for the memory figure.
    #[arg(long, default_value_t = 1000)]
    idle: usize,
    /// Runs in flight together.
    #[arg(long, default_value_t = 1000)]
    concurrent: usize,
    /// Client-side bound on the POSTs (and event-stream opens) in progress at once while the
    /// concurrent runs start; the runs themselves all stay in flight.
    #[arg(long, default_value_t = 64)]
    post_concurrency: usize,
    /// Seconds a run may take before it counts as an error.
    #[arg(long, default_value_t = 120)]
    run_timeout: u64,
    /// Worker threads of this process (client and scripted model together).
    #[arg(long, default_value_t = 1)]
    client_threads: usize,
}

// ---------------------------------------------------------------------------------------------
// Portico, the process

/// `portico serve`, stopped on drop: SIGTERM, SIGKILL after 5 s.
struct Server {
    child: Child,
}

impl Server {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn check_alive(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!("portico exited early ({status})");
        }
        Ok(())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
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
}

/// A temporary folder, removed on drop.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Starts `portico serve` with the static token, the model, no catalog locations, and SQLite in
/// `work/data` (or `postgres`); returns it with its base URL.
fn start_portico(
    portico: &Path,
    work: &Path,
    token: &str,
    model_url: &str,
    postgres: Option<&str>,
) -> anyhow::Result<(Server, String)> {
    let database = postgres
        .map(|url| format!("  database: {{url: '{url}'}}\n"))
        .unwrap_or_default();
    // PostgreSQL means replicas, which must share the keys that seal stored tokens.
    let sealing = match postgres {
        Some(_) => {
            let mut key = [0u8; 32];
            std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom")?, &mut key)?;
            format!(
                "auth:\n  tokenEncryption:\n    keys: [{{id: bench, secret: '{}'}}]\n",
                base64(&key)
            )
        }
        None => String::new(),
    };
    // A port chosen here rather than `port: 0`: the built-in actions server's entity points at
    // `backend.baseUrl`, which must be the address Portico really listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let config = work.join("app-config.yaml");
    std::fs::write(
        &config,
        format!(
            "backend:\n  baseUrl: 'http://127.0.0.1:{port}'\n  listen: {{host: 127.0.0.1, port: {port}}}\n{database}  auth:\n    externalAccess:\n      - type: static\n        options: {{token: {token}, subject: bench}}\n\
             assistant:\n  model: {{provider: openai, baseUrl: '{model_url}', model: instant}}\n{sealing}"
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
        .stdin(Stdio::null())
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
    let server = Server { child };
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

/// Standard base64 with padding.
fn base64(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            out.push(if i <= chunk.len() {
                ABC[(n >> (18 - 6 * i) & 63) as usize] as char
            } else {
                '='
            });
        }
    }
    out
}

/// (VmRSS, VmHWM) of a process, in KiB.
fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => dir_bytes(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

/// User + system CPU seconds of a process, from /proc.
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which is in parentheses and may hold spaces).
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Some(ticks / hz)
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

// ---------------------------------------------------------------------------------------------
// The client

struct Ctx {
    http: reqwest::Client,
    base: String,
    token: String,
    model: Model,
    tool_calls: bool,
    run_timeout: Duration,
}

fn clip(s: &str) -> String {
    match s.char_indices().nth(300) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

async fn create_conversation(ctx: &Ctx, title: &str) -> anyhow::Result<String> {
    let response = ctx
        .http
        .post(format!("{}/api/assistant/conversations", ctx.base))
        .bearer_auth(&ctx.token)
        .json(&json!({ "title": title }))
        .send()
        .await?;
    let status = response.status();
    let bytes = response.bytes().await?;
    ensure!(
        status.as_u16() == 201,
        "POST /api/assistant/conversations: HTTP {status}: {}",
        clip(&String::from_utf8_lossy(&bytes))
    );
    let body: Value = serde_json::from_slice(&bytes)?;
    Ok(body["id"]
        .as_str()
        .context("the new conversation has no id")?
        .to_string())
}

/// How many requests Portico has served on `route` (from its own `/metrics`).
async fn served(ctx: &Ctx, route: &str) -> Option<f64> {
    let text = ctx
        .http
        .get(format!("{}/metrics", ctx.base))
        .bearer_auth(&ctx.token)
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    let label = format!("route=\"{route}\"");
    Some(
        text.lines()
            .filter(|l| l.starts_with("portico_http_requests_total{") && l.contains(&label))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum(),
    )
}

/// `n` new conversations, `concurrency` POSTs at a time.
async fn create_conversations(
    ctx: &Arc<Ctx>,
    n: usize,
    concurrency: usize,
    label: &str,
) -> anyhow::Result<Vec<String>> {
    let (_, results) = closed_loop(concurrency, n, {
        let ctx = ctx.clone();
        let label = label.to_string();
        move |i| {
            let ctx = ctx.clone();
            let title = format!("{label} {i}");
            async move { create_conversation(&ctx, &title).await }
        }
    })
    .await;
    results.into_iter().collect()
}

/// What can go wrong with a run, as counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Fault {
    /// A POST or the events request failed or was not 2xx.
    Http,
    /// `run.failed`, or a tool call that reported an error.
    Failed,
    /// The stream ended or broke without `run.completed`, or an expected event was missing or
    /// malformed, or the answer's text was not the model's.
    Missing,
    /// Event ids that were not 1, 2, 3 … in order, or an event after `run.completed`.
    Order,
    /// No `run.completed` within --run-timeout.
    Timeout,
}

impl Fault {
    const ALL: [Fault; 5] = [
        Fault::Http,
        Fault::Failed,
        Fault::Missing,
        Fault::Order,
        Fault::Timeout,
    ];

    fn label(self) -> &'static str {
        match self {
            Fault::Http => "HTTP errors",
            Fault::Failed => "run.failed",
            Fault::Missing => "missing events",
            Fault::Order => "out-of-order ids",
            Fault::Timeout => "timeouts",
        }
    }
}

/// One run as the client saw it; times from the POST.
#[derive(Debug, Default)]
struct Outcome {
    post_ms: Option<f64>,
    /// When the model first received the question.
    model_ms: Option<f64>,
    first_ms: Option<f64>,
    done_ms: Option<f64>,
    done_at: Option<Instant>,
    events: usize,
    /// The servers of `tools.selected`.
    servers: Vec<String>,
    /// The longest wait between two events (or the POST and the first), and the event after it.
    pause: Option<(f64, String)>,
    fault: Option<(Fault, String)>,
}

/// Fires once: the run has started (its POST and event-stream request are answered, or failed).
struct Signal<'a>(Option<&'a AtomicUsize>);

impl Signal<'_> {
    fn fire(&mut self) {
        if let Some(c) = self.0.take() {
            c.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// Sends `question` in `conversation`, opens the run's events right after the POST returns and
/// reads them to the end, checking them.
async fn run_once(
    ctx: &Ctx,
    conversation: &str,
    question: &str,
    permits: Option<&Semaphore>,
    started: Option<&AtomicUsize>,
) -> Outcome {
    let mut out = Outcome::default();
    let mut signal = Signal(started);
    let mut t0 = None;
    let result = tokio::time::timeout(
        ctx.run_timeout,
        drive_run(
            ctx,
            conversation,
            question,
            permits,
            &mut signal,
            &mut t0,
            &mut out,
        ),
    )
    .await;
    signal.fire();
    match result {
        Ok(Ok(())) => {}
        Ok(Err(fault)) => out.fault = Some(fault),
        Err(_) => {
            out.fault = Some((
                Fault::Timeout,
                format!(
                    "no run.completed within {} s ({} events)",
                    ctx.run_timeout.as_secs(),
                    out.events
                ),
            ))
        }
    }
    if let (Some(t0), Some(at)) = (t0, ctx.model.arrival(question)) {
        out.model_ms = Some(ms(at.saturating_duration_since(t0)));
    }
    out
}

async fn drive_run(
    ctx: &Ctx,
    conversation: &str,
    question: &str,
    permits: Option<&Semaphore>,
    signal: &mut Signal<'_>,
    t0_out: &mut Option<Instant>,
    out: &mut Outcome,
) -> Result<(), (Fault, String)> {
    let http = |what: &str, e: &dyn std::fmt::Display| (Fault::Http, format!("{what}: {e}"));
    let permit = match permits {
        Some(s) => Some(s.acquire().await.expect("the semaphore is never closed")),
        None => None,
    };
    let t0 = Instant::now();
    *t0_out = Some(t0);
    let response = ctx
        .http
        .post(format!(
            "{}/api/assistant/conversations/{conversation}/messages",
            ctx.base
        ))
        .bearer_auth(&ctx.token)
        .json(&json!({ "text": question }))
        .send()
        .await
        .map_err(|e| http("POST messages", &e))?;
    let status = response.status();
    let bytes = response
        .bytes()
        .await
        .map_err(|e| http("POST messages", &e))?;
    if status.as_u16() != 202 {
        return Err(http(
            "POST messages",
            &format!("HTTP {status}: {}", clip(&String::from_utf8_lossy(&bytes))),
        ));
    }
    out.post_ms = Some(ms(t0.elapsed()));
    let run: Value = serde_json::from_slice(&bytes).map_err(|e| http("POST messages", &e))?;
    let run_id = run["id"]
        .as_str()
        .ok_or_else(|| http("POST messages", &"no run id in the answer"))?;
    let response = ctx
        .http
        .get(format!("{}/api/assistant/runs/{run_id}/events", ctx.base))
        .bearer_auth(&ctx.token)
        .header("accept", "text/event-stream")
        .send()
        .await
        .map_err(|e| http("GET events", &e))?;
    let status = response.status();
    if !status.is_success() {
        let body = response.text().await.unwrap_or_default();
        return Err(http(
            "GET events",
            &format!("HTTP {status}: {}", clip(&body)),
        ));
    }
    drop(permit);
    signal.fire();

    let mut reader = SseReader::new(response);
    let mut types: Vec<String> = Vec::new();
    let mut deltas = String::new();
    let mut completed_text: Option<String> = None;
    let mut last_ms = 0.0;
    loop {
        let event = reader.next().await.map_err(|e| {
            (
                Fault::Missing,
                format!("the stream broke after {types:?}: {e:#}"),
            )
        })?;
        let Some(event) = event else {
            return Err((
                Fault::Missing,
                format!("the stream ended after {types:?} without run.completed"),
            ));
        };
        let now = ms(t0.elapsed());
        if out.first_ms.is_none() {
            out.first_ms = Some(now);
        }
        let gap = now - last_ms;
        last_ms = now;
        out.events += 1;
        let expected = out.events as i64;
        if event
            .id
            .as_deref()
            .and_then(|i| i.trim().parse::<i64>().ok())
            != Some(expected)
        {
            return Err((
                Fault::Order,
                format!(
                    "event {} ({:?}) has id {:?}, expected {expected}",
                    out.events, event.event, event.id
                ),
            ));
        }
        let data: Value = serde_json::from_str(&event.data).map_err(|e| {
            (
                Fault::Missing,
                format!(
                    "event {expected}: data is not JSON ({e}): {}",
                    clip(&event.data)
                ),
            )
        })?;
        let kind = data["type"].as_str().unwrap_or("").to_string();
        if event.event.as_deref() != Some(kind.as_str()) {
            return Err((
                Fault::Missing,
                format!(
                    "event {expected}: `event: {:?}` but data type {kind:?}",
                    event.event
                ),
            ));
        }
        match kind.as_str() {
            "message.delta" => deltas.push_str(data["text"].as_str().unwrap_or("")),
            "tools.selected" => {
                out.servers = data["servers"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            }
            "message.completed" => {
                completed_text = Some(data["text"].as_str().unwrap_or("").to_string())
            }
            "tool.completed" if data["isError"] != json!(false) => {
                return Err((
                    Fault::Failed,
                    format!("the tool call failed: {}", data["summary"]),
                ));
            }
            "run.failed" => {
                return Err((Fault::Failed, format!("run.failed: {}", data["error"])));
            }
            _ => {}
        }
        if out.pause.as_ref().is_none_or(|(p, _)| gap > *p) {
            out.pause = Some((gap, kind.clone()));
        }
        types.push(kind);
        if types.last().map(String::as_str) == Some("run.completed") {
            out.done_ms = Some(ms(t0.elapsed()));
            out.done_at = Some(Instant::now());
            break;
        }
    }
    // The stream ends after run.completed.
    match reader.next().await {
        Ok(None) => {}
        Ok(Some(e)) => {
            return Err((
                Fault::Order,
                format!("an event after run.completed: {:?} {:?}", e.id, e.event),
            ));
        }
        Err(e) => {
            return Err((
                Fault::Missing,
                format!("the stream broke after run.completed: {e:#}"),
            ));
        }
    }
    let answer = model::answer();
    let has = |t: &str| types.iter().any(|x| x == t);
    let mut missing: Vec<&str> = Vec::new();
    if types.first().map(String::as_str) != Some("run.started") {
        missing.push("run.started first");
    }
    if !has("tools.selected") {
        missing.push("tools.selected");
    }
    if ctx.tool_calls && !(has("tool.started") && has("tool.completed")) {
        missing.push("tool.started/tool.completed");
    }
    if deltas != answer {
        missing.push("message.delta (the deltas are not the answer)");
    }
    if completed_text.as_deref() != Some(answer.as_str()) {
        missing.push("message.completed with the answer");
    }
    if !missing.is_empty() {
        return Err((
            Fault::Missing,
            format!("missing {}; got {types:?}", missing.join(", ")),
        ));
    }
    Ok(())
}

/// One direct call of the model with each captured request in turn: (first chunk ms, [DONE]
/// ms, chunks), from the first request's send.
async fn floor_once(ctx: &Ctx, bodies: &[Bytes]) -> anyhow::Result<(f64, f64, usize)> {
    let url = format!("{}/chat/completions", ctx.model.base_url);
    let t0 = Instant::now();
    let mut first = None;
    let mut chunks = 0;
    for body in bodies {
        let response = ctx
            .http
            .post(&url)
            .header("content-type", "application/json")
            .header("accept", "text/event-stream, application/json")
            .body(body.clone())
            .send()
            .await?;
        ensure!(
            response.status().is_success(),
            "the model: HTTP {}",
            response.status()
        );
        let mut reader = SseReader::new(response);
        let mut done = false;
        while let Some(event) = reader.next().await? {
            first.get_or_insert_with(|| ms(t0.elapsed()));
            chunks += 1;
            if event.data.trim() == "[DONE]" {
                done = true;
                break;
            }
        }
        ensure!(done, "the model's stream ended without [DONE]");
        ensure!(
            reader.next().await?.is_none(),
            "the model sent more after [DONE]"
        );
    }
    Ok((
        first.context("the model sent nothing")?,
        ms(t0.elapsed()),
        chunks,
    ))
}

/// `total` jobs, `concurrency` at a time, each worker taking the next as soon as its last ends;
/// returns (seconds, results in job order).
async fn closed_loop<F, Fut, T>(concurrency: usize, total: usize, job: F) -> (f64, Vec<T>)
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = T> + Send,
    T: Send + 'static,
{
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency.min(total).max(1) {
        let (next, job) = (next.clone(), job.clone());
        tasks.push(tokio::spawn(async move {
            let mut done = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    return done;
                }
                done.push((i, job(i).await));
            }
        }));
    }
    let mut all = Vec::with_capacity(total);
    for t in tasks {
        all.extend(t.await.expect("a worker panicked"));
    }
    let seconds = started.elapsed().as_secs_f64();
    all.sort_by_key(|(i, _)| *i);
    (seconds, all.into_iter().map(|(_, r)| r).collect())
}

// ---------------------------------------------------------------------------------------------
// Figures

/// p50 and p99 of a sample.
#[derive(Clone, Copy)]
struct Dist {
    p50: f64,
    p99: f64,
}

fn dist(mut v: Vec<f64>) -> Option<Dist> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let at = |p: f64| v[((v.len() as f64 * p) as usize).min(v.len() - 1)];
    Some(Dist {
        p50: at(0.5),
        p99: at(0.99),
    })
}

/// Errors by kind, with the first few messages.
fn faults(outcomes: &[Outcome]) -> (usize, String) {
    let mut total = 0;
    let mut text = String::new();
    for kind in Fault::ALL {
        let of_kind: Vec<&String> = outcomes
            .iter()
            .filter_map(|o| o.fault.as_ref())
            .filter(|(k, _)| *k == kind)
            .map(|(_, m)| m)
            .collect();
        total += of_kind.len();
        text.push_str(&format!("{} {}, ", of_kind.len(), kind.label()));
        let mut shown: Vec<&String> = Vec::new();
        for m in of_kind {
            if shown.len() < 3 && !shown.contains(&m) {
                shown.push(m);
            }
        }
        for m in shown {
            text.push_str(&format!("\n      e.g. {}", clip(m)));
        }
    }
    let text = text.replace(", \n", "\n");
    (total, text.trim_end_matches(", ").to_string())
}

/// A pause between two events this long is a stall, not work (the model is instant).
const PAUSE_MS: f64 = 200.0;

fn header() {
    println!(
        "  {:<34} {:>10} {:>10}   {:>10} {:>10}   {:>8}",
        "", "portico", "", "model", "(floor)", "ratio"
    );
    println!(
        "  {:<34} {:>10} {:>10}   {:>10} {:>10}   {:>8}",
        "", "p50 ms", "p99 ms", "p50 ms", "p99 ms", "p50"
    );
}

fn row(label: &str, portico: Option<Dist>, floor: Option<Dist>) {
    let cell = |d: Option<Dist>, f: fn(&Dist) -> f64| {
        d.map_or_else(|| "-".to_string(), |d| format!("{:.3}", f(&d)))
    };
    let ratio = match (portico, floor) {
        (Some(p), Some(f)) if f.p50 > 0.0 => format!("{:.1}x", p.p50 / f.p50),
        _ => "-".into(),
    };
    println!(
        "  {label:<34} {:>10} {:>10}   {:>10} {:>10}   {ratio:>8}",
        cell(portico, |d| d.p50),
        cell(portico, |d| d.p99),
        cell(floor, |d| d.p50),
        cell(floor, |d| d.p99),
    );
}

fn rate_row(label: &str, portico: f64, floor: f64) {
    println!(
        "  {label:<34} {:>10.0} {:>10}   {:>10.0} {:>10}   {:>8}",
        portico,
        "",
        floor,
        "",
        format!("{:.3}x", portico / floor)
    );
}

/// The latency and rate rows of a set of runs beside the floor's calls.
fn table(
    outcomes: &[Outcome],
    seconds: f64,
    floor: &[(f64, f64, usize)],
    floor_seconds: f64,
) -> (Option<Dist>, Option<Dist>) {
    let pick = |f: fn(&Outcome) -> Option<f64>| dist(outcomes.iter().filter_map(f).collect());
    let first = pick(|o| o.first_ms);
    let done = pick(|o| o.done_ms);
    let floor_first = dist(floor.iter().map(|f| f.0).collect());
    let floor_done = dist(floor.iter().map(|f| f.1).collect());
    header();
    row("POST → 202 (run id)", pick(|o| o.post_ms), None);
    row(
        "POST → model receives the request",
        pick(|o| o.model_ms),
        None,
    );
    row("POST → first event / first chunk", first, floor_first);
    row("POST → run.completed / [DONE]", done, floor_done);
    let events: usize = outcomes.iter().map(|o| o.events).sum();
    let chunks: usize = floor.iter().map(|f| f.2).sum();
    let completed = outcomes.iter().filter(|o| o.fault.is_none()).count();
    rate_row(
        "runs/s / model calls/s",
        completed as f64 / seconds,
        floor.len() as f64 / floor_seconds,
    );
    rate_row(
        "events/s / chunks/s",
        events as f64 / seconds,
        chunks as f64 / floor_seconds,
    );
    println!(
        "  ({} events per run; the model sends {} chunks with [DONE] per run)",
        events as f64 / outcomes.len().max(1) as f64,
        chunks as f64 / floor.len().max(1) as f64
    );
    if let (Some(d), Some(f)) = (done, floor_done) {
        println!(
            "  Portico's own time per run (p50 run.completed − p50 [DONE]): {:.3} ms",
            d.p50 - f.p50
        );
    }
    let (n, text) = faults(outcomes);
    println!("  errors: {n} ({text})");
    let mut paused: Vec<&str> = outcomes
        .iter()
        .filter_map(|o| o.pause.as_ref())
        .filter(|(p, _)| *p >= PAUSE_MS)
        .map(|(_, kind)| kind.as_str())
        .collect();
    paused.sort();
    let mut before: Vec<String> = Vec::new();
    for kind in paused.iter().copied() {
        let n = paused.iter().filter(|k| **k == kind).count();
        let item = format!("{n} before {kind}");
        if !before.contains(&item) {
            before.push(item);
        }
    }
    println!(
        "  runs with a pause of {PAUSE_MS:.0} ms or more between two events: {}{}",
        paused.len(),
        if before.is_empty() {
            String::new()
        } else {
            format!(" ({})", before.join(", "))
        }
    );
    (first, done)
}

// ---------------------------------------------------------------------------------------------

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    ensure!(
        args.runs > 0 && args.concurrency > 0 && args.concurrent > 0 && args.post_concurrency > 0,
        "--runs, --concurrency, --concurrent and --post-concurrency must be positive"
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.client_threads)
        .enable_all()
        .build()?;
    runtime.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let model = Model::start(args.tool_calls).await?;

    // Dropped in reverse order: Portico stops before its data folder goes.
    let work = std::env::temp_dir().join(format!("portico-bench-runs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    let work = TempDir(work);
    let token = format!(
        "bench-runs-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .subsec_nanos()
    );
    let started = Instant::now();
    let (mut server, base) = start_portico(
        &args.portico,
        &work.0,
        &token,
        &model.base_url,
        args.postgres.as_deref(),
    )?;
    let pid = server.pid();
    let http = reqwest::Client::builder()
        .no_proxy()
        .connect_timeout(Duration::from_secs(10))
        .pool_idle_timeout(Duration::from_secs(300))
        .build()?;
    loop {
        server.check_alive()?;
        let ok = http
            .get(format!("{base}/api/assistant/conversations"))
            .bearer_auth(&token)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if ok {
            break;
        }
        ensure!(
            started.elapsed() < Duration::from_secs(60),
            "portico did not answer within a minute"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let backend = if args.postgres.is_some() {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    println!(
        "bench/runs: portico (pid {pid}) at {base} on {backend}, ready after {:.1} s; instant scripted model at {} ({}); client and model on {} thread{}",
        started.elapsed().as_secs_f64(),
        model.base_url,
        if args.tool_calls {
            "a call of mcp-actions__auth_who_am_i, then a text answer in 5 chunks"
        } else {
            "a text answer in 5 chunks, no tool calls"
        },
        args.client_threads,
        if args.client_threads == 1 { "" } else { "s" }
    );
    let ctx = Arc::new(Ctx {
        http,
        base,
        token,
        model: model.clone(),
        tool_calls: args.tool_calls,
        run_timeout: Duration::from_secs(args.run_timeout),
    });
    let question = |phase: &str, i: usize| format!("{phase} question {i}: is the catalog healthy?");

    // Warm-up: every run must come out right, or the set-up is wrong.
    let conversations = create_conversations(&ctx, args.warmup.max(1), 8, "warm-up").await?;
    for (i, c) in conversations.iter().enumerate() {
        let o = run_once(&ctx, c, &question("warm-up", i), None, None).await;
        if let Some((kind, message)) = o.fault {
            bail!("a warm-up run failed ({}): {message}", kind.label());
        }
        ensure!(
            o.servers.iter().any(|s| s == "api:default/mcp-actions"),
            "the built-in actions server is not among the run's tools ({:?}); see Portico's log",
            o.servers
        );
    }
    let bodies = model.captured();
    ensure!(
        bodies.len() == if args.tool_calls { 2 } else { 1 },
        "the model did not see the expected requests ({} captured)",
        bodies.len()
    );
    for _ in 0..args.warmup {
        floor_once(&ctx, &bodies).await?;
    }
    println!(
        "the floor replays Portico's own chat request{} ({} bytes{}) to the model directly, over the same client",
        if bodies.len() > 1 { "s" } else { "" },
        bodies[0].len(),
        if bodies.len() > 1 {
            format!(", then {} bytes with the tool result", bodies[1].len())
        } else {
            String::new()
        }
    );

    // 1. One run at a time.
    model.clear_arrivals();
    let conversations = create_conversations(&ctx, args.runs, 8, "sequential").await?;
    let mcp_before = served(&ctx, "/api/mcp-actions/v1").await;
    let t = Instant::now();
    let mut outcomes = Vec::with_capacity(args.runs);
    for (i, c) in conversations.iter().enumerate() {
        outcomes.push(run_once(&ctx, c, &question("sequential", i), None, None).await);
    }
    let seconds = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let mut floor = Vec::with_capacity(args.runs);
    for _ in 0..args.runs {
        floor.push(floor_once(&ctx, &bodies).await?);
    }
    let floor_seconds = t.elapsed().as_secs_f64();
    println!(
        "\n1. one run at a time: {} runs after {} warm-up, each in a new conversation (times from sending POST …/messages; the events stream is opened as soon as it returns)",
        args.runs, args.warmup
    );
    let (first, _) = table(&outcomes, seconds, &floor, floor_seconds);
    let mut all_errors = faults(&outcomes).0;
    if let (Some(a), Some(b)) = (mcp_before, served(&ctx, "/api/mcp-actions/v1").await) {
        println!(
            "  requests Portico made to its own /api/mcp-actions/v1 per run (from its /metrics): {:.2}",
            (b - a) / args.runs as f64
        );
    }

    // 2. Closed loop at concurrency N.
    model.clear_arrivals();
    let conversations =
        Arc::new(create_conversations(&ctx, args.loop_runs, args.concurrency, "loop").await?);
    let (seconds, outcomes) = closed_loop(args.concurrency, args.loop_runs, {
        let (ctx, conversations) = (ctx.clone(), conversations.clone());
        move |i| {
            let (ctx, conversations) = (ctx.clone(), conversations.clone());
            async move { run_once(&ctx, &conversations[i], &question("loop", i), None, None).await }
        }
    })
    .await;
    let bodies = Arc::new(bodies);
    let (floor_seconds, floor) = closed_loop(args.concurrency, args.loop_runs, {
        let (ctx, bodies) = (ctx.clone(), bodies.clone());
        move |_| {
            let (ctx, bodies) = (ctx.clone(), bodies.clone());
            async move { floor_once(&ctx, &bodies).await }
        }
    })
    .await;
    let floor = floor.into_iter().collect::<anyhow::Result<Vec<_>>>()?;
    println!(
        "\n2. closed loop at concurrency {}: {} runs, each in a new conversation",
        args.concurrency, args.loop_runs
    );
    table(&outcomes, seconds, &floor, floor_seconds);
    all_errors += faults(&outcomes).0;

    // 3. Memory per idle conversation.
    let data_dir = work.0.join("data");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (rss_before, _) = memory_kib(pid);
    let db_before = dir_bytes(&data_dir);
    model.clear_arrivals();
    let conversations = Arc::new(create_conversations(&ctx, args.idle, 8, "idle").await?);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (rss_created, _) = memory_kib(pid);
    let (idle_seconds, outcomes) = closed_loop(8, args.idle, {
        let (ctx, conversations) = (ctx.clone(), conversations.clone());
        move |i| {
            let (ctx, conversations) = (ctx.clone(), conversations.clone());
            async move { run_once(&ctx, &conversations[i], &question("idle", i), None, None).await }
        }
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (rss_idle, _) = memory_kib(pid);
    let db_idle = dir_bytes(&data_dir);
    let (idle_errors, idle_text) = faults(&outcomes);
    all_errors += idle_errors;
    println!(
        "\n3. memory: {} idle conversations, each with one completed run (made 8 at a time in {:.1} s; errors: {idle_errors} ({idle_text}))",
        args.idle, idle_seconds
    );
    println!(
        "  portico RSS {:.1} MiB before, {:.1} MiB after (2 s later) → {:.2} KiB per idle conversation",
        mib(rss_before),
        mib(rss_idle),
        (rss_idle as f64 - rss_before as f64) / args.idle as f64
    );
    println!(
        "  (of which the conversations alone, before their runs: {:.2} KiB each; the runs: {:.2} KiB each)",
        (rss_created as f64 - rss_before as f64) / args.idle as f64,
        (rss_idle as f64 - rss_created as f64) / args.idle as f64
    );
    if args.postgres.is_none() {
        println!(
            "  (the SQLite files grew by {:.1} KiB per conversation: {:.1} MiB → {:.1} MiB)",
            (db_idle as f64 - db_before as f64) / 1024.0 / args.idle as f64,
            db_before as f64 / 1048576.0,
            db_idle as f64 / 1048576.0
        );
    }

    // 4. N runs in flight together: each question waits at the model until all have arrived.
    let conversations =
        Arc::new(create_conversations(&ctx, args.concurrent, 32, "concurrent").await?);
    model.clear_arrivals();
    model.close_gate();
    let permits = Arc::new(Semaphore::new(args.post_concurrency));
    let started_count = Arc::new(AtomicUsize::new(0));
    let finished = Arc::new(AtomicUsize::new(0));
    let t_start = Instant::now();
    let mut tasks = Vec::with_capacity(args.concurrent);
    for i in 0..args.concurrent {
        let (ctx, conversations, permits, started_count, finished) = (
            ctx.clone(),
            conversations.clone(),
            permits.clone(),
            started_count.clone(),
            finished.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let question = format!("{GATE} question {i}: is the catalog healthy?");
            let o = run_once(
                &ctx,
                &conversations[i],
                &question,
                Some(&permits),
                Some(&started_count),
            )
            .await;
            finished.fetch_add(1, Ordering::SeqCst);
            o
        }));
    }
    let deadline = t_start + Duration::from_secs(args.run_timeout);
    let mut all_started_at = None;
    loop {
        let (s, h, f) = (
            started_count.load(Ordering::SeqCst),
            model.held(),
            finished.load(Ordering::SeqCst),
        );
        if s == args.concurrent && all_started_at.is_none() {
            all_started_at = Some(t_start.elapsed());
        }
        if h + f >= args.concurrent || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let in_flight = model.held();
    let in_flight_at = t_start.elapsed();
    let (rss_in_flight, _) = memory_kib(pid);
    // What waiting costs: Portico's CPU while every run waits on the model.
    let cpu0 = cpu_seconds(pid);
    let t_cpu = Instant::now();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let waiting_cpu = match (cpu0, cpu_seconds(pid)) {
        (Some(a), Some(b)) => Some((b - a) / t_cpu.elapsed().as_secs_f64()),
        _ => None,
    };
    let t_release = Instant::now();
    model.open_gate();
    let mut outcomes = Vec::with_capacity(args.concurrent);
    for t in tasks {
        outcomes.push(t.await?);
    }
    let last_done = outcomes.iter().filter_map(|o| o.done_at).max();
    let end = last_done.unwrap_or_else(Instant::now);
    let wall = end.saturating_duration_since(t_start).as_secs_f64();
    let drain = end.saturating_duration_since(t_release).as_secs_f64();
    let (rss_after, _) = memory_kib(pid);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (rss_settled, hwm) = memory_kib(pid);
    let (errors, error_text) = faults(&outcomes);
    let events: usize = outcomes.iter().map(|o| o.events).sum();
    let completed = outcomes.iter().filter(|o| o.fault.is_none()).count();
    println!(
        "\n4. {} runs in flight together (POSTs {} at a time; the model holds every question until all have reached it, then answers them all at once)",
        args.concurrent, args.post_concurrency
    );
    println!(
        "  all {} runs started (POST answered, events stream open) after {:.2} s; {} waiting at the model together after {:.2} s",
        started_count.load(Ordering::SeqCst),
        all_started_at.unwrap_or(in_flight_at).as_secs_f64(),
        in_flight,
        in_flight_at.as_secs_f64()
    );
    if let Some(cpu) = waiting_cpu {
        println!(
            "  while they all waited on the model, Portico used {:.0}% of a core",
            cpu * 100.0
        );
    }
    let pick = |f: fn(&Outcome) -> Option<f64>| dist(outcomes.iter().filter_map(f).collect());
    header();
    row("POST → 202 (under load)", pick(|o| o.post_ms), None);
    row(
        "POST → first event (under load)",
        pick(|o| o.first_ms),
        None,
    );
    println!(
        "  completed {completed}/{}: wall {wall:.2} s from the first POST to the last run.completed; {drain:.2} s from the model's release to the last run.completed",
        args.concurrent
    );
    println!(
        "  events: {events} ({:.0} events/s over the wall time; {:.0} runs/s)",
        events as f64 / wall,
        completed as f64 / wall
    );
    println!("  errors: {errors} ({error_text})");
    println!(
        "  portico RSS {:.1} MiB idle before, {:.1} MiB with the runs in flight ({:+.1} KiB per run), {:.1} MiB right after, {:.1} MiB 2 s later; peak (VmHWM) {:.1} MiB",
        mib(rss_idle),
        mib(rss_in_flight),
        (rss_in_flight as f64 - rss_idle as f64) / args.concurrent as f64,
        mib(rss_after),
        mib(rss_settled),
        mib(hwm)
    );
    server.check_alive()?;

    println!("\ngoals");
    match first {
        Some(f) => println!(
            "  first event ≤ 5 ms p50 (one run at a time): {:.3} ms — {}",
            f.p50,
            if f.p50 <= 5.0 { "met" } else { "NOT met" }
        ),
        None => println!("  first event ≤ 5 ms p50: no run gave an event — NOT met"),
    }
    println!(
        "  0 errors at {} runs in flight: {errors} — {}",
        args.concurrent,
        if errors == 0 { "met" } else { "NOT met" }
    );
    if all_errors > 0 {
        println!("  (and {all_errors} errors in rows 1–3, shown above)");
    }
    drop(server);
    drop(work);
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_pads() {
        assert_eq!(super::base64(b"Man"), "TWFu");
        assert_eq!(super::base64(b"Ma"), "TWE=");
        assert_eq!(super::base64(b"M"), "TQ==");
        assert_eq!(super::base64(&[0xff; 32]).len(), 44);
    }
}
