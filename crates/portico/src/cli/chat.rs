//! `portico chat`: the assistant in the terminal. Asks one question (or reads questions line by
//! line), follows the run's events over Server-Sent Events — reconnecting with `Last-Event-ID`
//! when the connection drops — prints the answer as it streams, shows tool calls as spinners,
//! and asks on the terminal before a tool that needs approval runs.

use std::collections::HashMap;
use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use portico_assistant::RunEvent;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::sync::mpsc;

const DEFAULT_URL: &str = "http://127.0.0.1:7007";
/// Reconnections in a row before giving up on a run's event stream.
const RECONNECTS: u32 = 5;
/// The server sends a keep-alive every 15 s; this long without a byte means the stream is dead.
const IDLE: Duration = Duration::from_secs(45);
/// Exit status after Ctrl-C (128 + SIGINT).
const INTERRUPTED: u8 = 130;

/// Arguments of `portico chat`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Interactive mode (no QUESTION): each line is a message in the same conversation; /new starts a \
new conversation, /quit or end of input ends.

Exit status: 0 when the answer is complete, 1 when the run failed, 2 on usage or connection \
errors, 130 after Ctrl-C (the run is cancelled).")]
pub struct Args {
    /// Portico's address [env: PORTICO_URL; default: http://127.0.0.1:7007].
    #[arg(long, value_name = "URL")]
    url: Option<String>,
    /// Name of the environment variable holding the API token; when it is unset, guest sign-in
    /// is tried.
    #[arg(long, value_name = "VAR", default_value = "PORTICO_TOKEN")]
    token_env: String,
    /// Continue this conversation instead of starting a new one.
    #[arg(long, value_name = "ID")]
    conversation: Option<String>,
    /// Approve every tool call without asking.
    #[arg(long)]
    yes: bool,
    /// Ask this, print the answer and exit; without it, chat interactively.
    question: Option<String>,
}

/// Runs `portico chat`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(chat(args))
}

async fn chat(args: Args) -> anyhow::Result<ExitCode> {
    let url = args
        .url
        .clone()
        .or_else(|| std::env::var("PORTICO_URL").ok().filter(|v| !v.is_empty()))
        .unwrap_or_else(|| DEFAULT_URL.to_string());
    let mut api = Api::connect(&url, &args.token_env).await?;
    let mut session = Session {
        ui: Ui::new(),
        input: Input::default(),
        interrupts: interrupts(),
        yes: args.yes,
        conversation: args.conversation.clone(),
    };
    if let Some(question) = &args.question {
        return Ok(match session.ask(&mut api, question).await? {
            Outcome::Completed => ExitCode::SUCCESS,
            Outcome::Failed => ExitCode::from(1),
            Outcome::Interrupted => ExitCode::from(INTERRUPTED),
        });
    }

    let prompt = std::io::stdin().is_terminal();
    if prompt {
        println!("Portico at {url}. Type a question; /new starts a new conversation, /quit ends.");
    }
    loop {
        if prompt {
            print!("> ");
            let _ = std::io::stdout().flush();
        }
        let line = tokio::select! {
            line = session.input.line() => line,
            _ = session.interrupts.recv() => {
                println!();
                return Ok(ExitCode::from(INTERRUPTED));
            }
        };
        let Some(line) = line else { break };
        match line.trim() {
            "" => continue,
            "/quit" | "/exit" => break,
            "/new" => {
                session.conversation = None;
                println!("(new conversation)");
                continue;
            }
            text => match session.ask(&mut api, text).await {
                Ok(Outcome::Interrupted) => return Ok(ExitCode::from(INTERRUPTED)),
                Ok(_) => {}
                Err(e) => eprintln!("error: {e:#}"),
            },
        }
    }
    if prompt {
        println!();
    }
    Ok(ExitCode::SUCCESS)
}

/// How a run ended for the terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Completed,
    Failed,
    /// Ctrl-C: the run was cancelled.
    Interrupted,
}

/// Ctrl-C presses, as a channel that can be awaited again and again.
fn interrupts() -> mpsc::UnboundedReceiver<()> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while tokio::signal::ctrl_c().await.is_ok() {
            if tx.send(()).is_err() {
                break;
            }
        }
    });
    rx
}

/// Standard input, line by line, read by a thread started on first use (a plain thread, so a
/// pending read never keeps the process from exiting).
#[derive(Default)]
struct Input {
    lines: Option<mpsc::UnboundedReceiver<String>>,
}

impl Input {
    /// The next line, or `None` at the end of input.
    async fn line(&mut self) -> Option<String> {
        let lines = self.lines.get_or_insert_with(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            std::thread::spawn(move || {
                for line in std::io::stdin().lock().lines() {
                    let Ok(line) = line else { break };
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
            rx
        });
        lines.recv().await
    }
}

/// Portico's assistant API, with the caller's token.
struct Api {
    http: reqwest::Client,
    base: String,
    token: String,
    /// Whether the token came from guest sign-in (and can be renewed the same way).
    guest: bool,
}

impl Api {
    /// The API at `url` with the token from `$token_env`, or else a guest token.
    async fn connect(url: &str, token_env: &str) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .build()
            .context("building the HTTP client")?;
        let base = url.trim_end_matches('/').to_string();
        let mut api = Self {
            http,
            base,
            token: String::new(),
            guest: false,
        };
        match std::env::var(token_env) {
            Ok(token) if !token.trim().is_empty() => api.token = token.trim().to_string(),
            _ => match api.guest_token().await? {
                Some(token) => {
                    api.token = token;
                    api.guest = true;
                }
                None => bail!(
                    "no API token: {token_env} is not set and {} has no guest sign-in. Set \
                     {token_env} to a Portico token — a backend.auth.externalAccess static token, \
                     or the local token `portico serve` keeps in its data folder (export \
                     {token_env}=$(cat ~/.local/share/portico/api-token)) — or turn on guest \
                     sign-in (auth.providers.guest: {{}})",
                    api.base
                ),
            },
        }
        Ok(api)
    }

    /// A user token from guest sign-in, or `None` when the server has no guest sign-in.
    async fn guest_token(&self) -> anyhow::Result<Option<String>> {
        let url = format!("{}/api/auth/guest/refresh", self.base);
        let response = self
            .http
            .get(&url)
            .header("X-Requested-With", "XMLHttpRequest")
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .map_err(|e| self.unreachable(e))?;
        if !response.status().is_success() {
            return Ok(None);
        }
        let body: Value = response.json().await.unwrap_or(Value::Null);
        Ok(body["backstageIdentity"]["token"]
            .as_str()
            .filter(|t| !t.is_empty())
            .map(str::to_string))
    }

    fn unreachable(&self, e: reqwest::Error) -> anyhow::Error {
        anyhow::anyhow!(
            "cannot reach Portico at {}: {e} (is `portico serve` running? set --url or PORTICO_URL)",
            self.base
        )
    }

    /// Sends a request; a guest token that expired is renewed once.
    async fn send(
        &mut self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        last_event_id: Option<i64>,
    ) -> Result<reqwest::Response, reqwest::Error> {
        let mut renewed = false;
        loop {
            let mut request = self
                .http
                .request(method.clone(), format!("{}{path}", self.base))
                .bearer_auth(&self.token);
            if let Some(body) = body {
                request = request.json(body).timeout(Duration::from_secs(60));
            }
            if let Some(id) = last_event_id {
                request = request.header("Last-Event-ID", id.to_string());
            }
            let response = request.send().await?;
            if response.status() == StatusCode::UNAUTHORIZED && self.guest && !renewed {
                renewed = true;
                if let Ok(Some(token)) = self.guest_token().await {
                    self.token = token;
                    continue;
                }
            }
            return Ok(response);
        }
    }

    /// POSTs `body` to `path`; the JSON answer (`Null` when empty), or the server's error.
    async fn post(&mut self, path: &str, body: &Value) -> anyhow::Result<Value> {
        let response = self
            .send(Method::POST, path, Some(body), None)
            .await
            .map_err(|e| self.unreachable(e))?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if !status.is_success() {
            return Err(api_error(status, &text, &self.base));
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}

/// The server's error, in its words (`{error: {message}}`), with a hint for a refused token.
fn api_error(status: StatusCode, body: &str, base: &str) -> anyhow::Error {
    let message = serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
        .unwrap_or_else(|| body.trim().to_string());
    if status == StatusCode::UNAUTHORIZED {
        return anyhow::anyhow!(
            "Portico at {base} refused the token (401): check the token variable (--token-env)"
        );
    }
    anyhow::anyhow!("Portico answered {status}: {message}")
}

/// One terminal session: the conversation it writes to and how it talks to the user.
struct Session {
    ui: Ui,
    input: Input,
    interrupts: mpsc::UnboundedReceiver<()>,
    yes: bool,
    conversation: Option<String>,
}

impl Session {
    /// Sends `text` in the current conversation (starting one when there is none) and follows
    /// the run to its end.
    async fn ask(&mut self, api: &mut Api, text: &str) -> anyhow::Result<Outcome> {
        let conversation = match &self.conversation {
            Some(id) => id.clone(),
            None => {
                let title: String = text.chars().take(80).collect();
                let created = api
                    .post("/api/assistant/conversations", &json!({ "title": title }))
                    .await
                    .context("starting a conversation")?;
                let id = created["id"]
                    .as_str()
                    .context("the new conversation has no id")?
                    .to_string();
                eprintln!("(conversation {id}; continue it with --conversation {id})");
                self.conversation = Some(id.clone());
                id
            }
        };
        let run = api
            .post(
                &format!("/api/assistant/conversations/{conversation}/messages"),
                &json!({ "text": text }),
            )
            .await
            .context("sending the message")?;
        let run = run["id"].as_str().context("the run has no id")?.to_string();
        let outcome = self.follow(api, &run).await;
        self.ui.finish();
        outcome
    }

    /// Reads the run's events until it ends, reconnecting after a drop from the last event seen.
    async fn follow(&mut self, api: &mut Api, run: &str) -> anyhow::Result<Outcome> {
        let path = format!("/api/assistant/runs/{run}/events");
        let mut last = 0_i64;
        let mut failures = 0_u32;
        loop {
            let opened = tokio::select! {
                r = api.send(Method::GET, &path, None, (last > 0).then_some(last)) => r,
                _ = self.interrupts.recv() => return self.cancel(api, run).await,
            };
            let lost = match opened {
                Ok(response) if response.status().is_success() => {
                    let mut response = response;
                    let mut parser = SseParser::default();
                    loop {
                        let chunk = tokio::select! {
                            c = tokio::time::timeout(IDLE, response.chunk()) => c,
                            _ = self.interrupts.recv() => return self.cancel(api, run).await,
                        };
                        let bytes = match chunk {
                            Ok(Ok(Some(bytes))) => bytes,
                            Ok(Ok(None)) => break "the server closed the stream".to_string(),
                            Ok(Err(e)) => break e.to_string(),
                            Err(_) => break format!("nothing received for {} s", IDLE.as_secs()),
                        };
                        for (id, data) in parser.push(&bytes) {
                            // After a reconnection the server starts after `last`; never show
                            // an event twice all the same.
                            if id <= last {
                                continue;
                            }
                            last = id;
                            failures = 0;
                            let event = match serde_json::from_str::<RunEvent>(&data) {
                                Ok(event) => event,
                                Err(e) => {
                                    tracing::debug!(error = %e, data, "unknown run event skipped");
                                    continue;
                                }
                            };
                            if let Some(outcome) = self.handle(api, run, event).await? {
                                return Ok(outcome);
                            }
                        }
                    }
                }
                Ok(response) if response.status().is_server_error() => {
                    format!("Portico answered {}", response.status())
                }
                Ok(response) => {
                    let status = response.status();
                    let text = response.text().await.unwrap_or_default();
                    return Err(api_error(status, &text, &api.base))
                        .context("following the run's events");
                }
                Err(e) => e.to_string(),
            };
            failures += 1;
            if failures > RECONNECTS {
                bail!(
                    "lost the run's event stream ({lost}); it goes on in Portico: run {run} in conversation {}",
                    self.conversation.as_deref().unwrap_or("?")
                );
            }
            tracing::debug!(run, last, failures, reason = %lost, "reconnecting to the run's events");
            let wait = Duration::from_millis(250 << (failures - 1));
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                _ = self.interrupts.recv() => return self.cancel(api, run).await,
            }
        }
    }

    /// Ctrl-C during a run: cancel it in Portico.
    async fn cancel(&mut self, api: &mut Api, run: &str) -> anyhow::Result<Outcome> {
        self.ui.finish();
        let cancelled = tokio::time::timeout(
            Duration::from_secs(5),
            api.post(&format!("/api/assistant/runs/{run}/cancel"), &json!({})),
        )
        .await;
        match cancelled {
            Ok(Ok(_)) => eprintln!("Cancelled."),
            Ok(Err(e)) => eprintln!("Cancelling the run failed: {e:#}"),
            Err(_) => eprintln!("Cancelling the run timed out."),
        }
        Ok(Outcome::Interrupted)
    }

    /// Shows one event; the outcome when the run ended.
    async fn handle(
        &mut self,
        api: &mut Api,
        run: &str,
        event: RunEvent,
    ) -> anyhow::Result<Option<Outcome>> {
        match event {
            RunEvent::RunStarted {} | RunEvent::ToolsSelected { .. } => {}
            RunEvent::MessageDelta { text } => self.ui.delta(&text),
            RunEvent::MessageCompleted { text } => self.ui.completed(&text),
            RunEvent::ToolStarted {
                call_id,
                server,
                tool,
            } => self.ui.tool_started(call_id, &server, tool),
            RunEvent::ToolProgress {
                call_id,
                progress,
                total,
                message,
            } => self
                .ui
                .tool_progress(&call_id, progress, total, message.as_deref()),
            RunEvent::ToolCompleted {
                call_id,
                ms,
                is_error,
                summary,
            } => self.ui.tool_completed(&call_id, ms, is_error, &summary),
            RunEvent::AuthRequired {
                server,
                provider,
                login_url,
            } => {
                self.ui.line(&format!(
                    "Sign in to {provider} to use {}: {login_url}",
                    short_ref(&server)
                ));
                self.ui
                    .line("(waiting: the answer goes on once you have signed in)");
            }
            RunEvent::ApprovalRequired {
                call_id,
                server,
                tool,
                arguments,
                reason,
            } => {
                self.ui.line(&format!(
                    "Approval needed: {tool} on {}",
                    short_ref(&server)
                ));
                let pretty = serde_json::to_string_pretty(&arguments)
                    .unwrap_or_else(|_| arguments.to_string());
                for line in pretty.lines() {
                    self.ui.line(&format!("  {line}"));
                }
                self.ui.line(&format!("Why: {reason}"));
                let Some((approve, remember)) = self.decide().await else {
                    return self.cancel(api, run).await.map(Some);
                };
                api.post(
                    &format!("/api/assistant/runs/{run}/approvals/{call_id}"),
                    &json!({ "approve": approve, "remember": remember }),
                )
                .await
                .context("sending the approval")?;
            }
            RunEvent::RunCompleted {} => {
                self.ui.finish();
                return Ok(Some(Outcome::Completed));
            }
            RunEvent::RunFailed { error } => {
                self.ui.finish();
                eprintln!("The run failed: {error}");
                return Ok(Some(Outcome::Failed));
            }
        }
        Ok(None)
    }

    /// Asks whether to run a tool: (approve, remember), or `None` on Ctrl-C.
    async fn decide(&mut self) -> Option<(bool, bool)> {
        if self.yes {
            self.ui.line("Approved (--yes).");
            return Some((true, false));
        }
        let echo = !std::io::stdin().is_terminal();
        loop {
            self.ui.prompt("Run it? [y]es / [n]o / [a]lways ");
            let answer = tokio::select! {
                a = self.input.line() => a,
                _ = self.interrupts.recv() => {
                    println!();
                    return None;
                }
            };
            let Some(answer) = answer else {
                println!();
                self.ui
                    .line("No answer (standard input is closed): denied.");
                return Some((false, false));
            };
            let answer = answer.trim().to_lowercase();
            if echo {
                println!("{answer}");
            }
            match answer.as_str() {
                "y" | "yes" => {
                    self.ui.line("Approved.");
                    return Some((true, false));
                }
                "a" | "always" => {
                    self.ui
                        .line("Approved; Portico will not ask again for this tool.");
                    return Some((true, true));
                }
                "n" | "no" => {
                    self.ui.line("Denied.");
                    return Some((false, false));
                }
                _ => self.ui.line("Please answer y, n or a."),
            }
        }
    }
}

/// `api:default/github` → `github`; other kinds and namespaces stay.
fn short_ref(entity_ref: &str) -> &str {
    entity_ref
        .strip_prefix("api:default/")
        .or_else(|| entity_ref.strip_prefix("api:"))
        .unwrap_or(entity_ref)
}

/// A tool call being shown.
struct Call {
    label: String,
    tool: String,
    bar: Option<ProgressBar>,
}

/// What the terminal shows: answer text as it streams, tool calls as spinners on a terminal or
/// plain lines otherwise.
struct Ui {
    tty: bool,
    multi: MultiProgress,
    calls: HashMap<String, Call>,
    /// Text printed without its line ended.
    open_line: bool,
    /// The answer text streamed since the last other event.
    streamed: String,
}

impl Ui {
    fn new() -> Self {
        let tty = std::io::stdout().is_terminal();
        Self {
            tty,
            multi: MultiProgress::with_draw_target(if tty {
                ProgressDrawTarget::stdout()
            } else {
                ProgressDrawTarget::hidden()
            }),
            calls: HashMap::new(),
            open_line: false,
            streamed: String::new(),
        }
    }

    fn spinning(&self) -> bool {
        self.calls.values().any(|c| c.bar.is_some())
    }

    /// Prints answer text and flushes.
    fn write(&mut self, text: &str) {
        if text.is_empty() {
            return;
        }
        let out = || {
            let mut stdout = std::io::stdout().lock();
            let _ = stdout.write_all(text.as_bytes());
            let _ = stdout.flush();
        };
        if self.spinning() {
            self.multi.suspend(out);
        } else {
            out();
        }
        self.open_line = !text.ends_with('\n');
    }

    fn delta(&mut self, text: &str) {
        self.write(text);
        self.streamed.push_str(text);
    }

    /// The whole answer: whatever of it did not stream is printed now.
    fn completed(&mut self, text: &str) {
        let streamed = std::mem::take(&mut self.streamed);
        if streamed.is_empty() {
            self.write(text);
        } else if let Some(rest) = text.strip_prefix(streamed.as_str()) {
            self.write(rest);
        }
        self.end_line();
    }

    fn end_line(&mut self) {
        if self.open_line {
            self.open_line = false;
            self.print_line("");
        }
    }

    /// Prints a line: above the spinners while there are any (indicatif leaves the cursor at
    /// the end of what it drew, so plain output must wait until the last spinner is gone).
    fn print_line(&self, text: &str) {
        if self.spinning() {
            let _ = self.multi.println(text);
        } else {
            println!("{text}");
        }
    }

    /// A line of its own (above the spinners).
    fn line(&mut self, text: &str) {
        self.end_line();
        self.streamed.clear();
        self.print_line(text);
    }

    /// A question with the answer on the same line.
    fn prompt(&mut self, text: &str) {
        self.end_line();
        print!("{text}");
        let _ = std::io::stdout().flush();
    }

    fn tool_started(&mut self, call_id: String, server: &str, tool: String) {
        self.end_line();
        self.streamed.clear();
        let label = if server.is_empty() {
            tool.clone()
        } else {
            format!("{} · {tool}", short_ref(server))
        };
        let bar = if self.tty {
            let bar = self.multi.add(ProgressBar::new_spinner());
            bar.set_style(
                ProgressStyle::with_template("{spinner} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.set_message(label.clone());
            bar.enable_steady_tick(Duration::from_millis(100));
            Some(bar)
        } else {
            println!("… {label}");
            None
        };
        self.calls.insert(call_id, Call { label, tool, bar });
    }

    fn tool_progress(
        &mut self,
        call_id: &str,
        progress: f64,
        total: Option<f64>,
        message: Option<&str>,
    ) {
        let Some(call) = self.calls.get(call_id) else {
            return;
        };
        let mut text = call.label.clone();
        if let Some(message) = message.filter(|m| !m.is_empty()) {
            text.push_str(": ");
            text.push_str(message);
        }
        match total.filter(|t| *t > 0.0) {
            Some(total) => text.push_str(&format!(
                " ({:.0}%)",
                (progress / total * 100.0).clamp(0.0, 100.0)
            )),
            None if message.is_none() => text.push_str(&format!(" ({progress})")),
            None => {}
        }
        match &call.bar {
            Some(bar) => bar.set_message(text),
            None => println!("  {text}"),
        }
    }

    fn tool_completed(&mut self, call_id: &str, ms: u64, is_error: bool, summary: &str) {
        self.streamed.clear();
        let Some(call) = self.calls.remove(call_id) else {
            return;
        };
        let text = if is_error {
            format!("✗ {} ({ms} ms): {summary}", call.tool)
        } else {
            format!("✓ {} ({ms} ms)", call.tool)
        };
        if let Some(bar) = call.bar {
            bar.finish_and_clear();
            self.multi.remove(&bar);
        }
        self.print_line(&text);
    }

    /// The run ended or was left: no spinner stays, the last line is ended.
    fn finish(&mut self) {
        for (_, call) in self.calls.drain() {
            if let Some(bar) = call.bar {
                bar.finish_and_clear();
                self.multi.remove(&bar);
            }
        }
        self.end_line();
        self.streamed.clear();
    }
}

/// Splits a Server-Sent Events stream into (id, data) events, whatever the chunking.
#[derive(Default)]
struct SseParser {
    buffer: Vec<u8>,
    id: Option<i64>,
    data: Option<String>,
}

impl SseParser {
    fn push(&mut self, bytes: &[u8]) -> Vec<(i64, String)> {
        self.buffer.extend_from_slice(bytes);
        let mut out = Vec::new();
        while let Some(end) = self.buffer.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.buffer.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line);
            let line = line.trim_end_matches(['\n', '\r']);
            if line.is_empty() {
                if let (Some(id), Some(data)) = (self.id.take(), self.data.take()) {
                    out.push((id, data));
                }
                self.id = None;
                self.data = None;
                continue;
            }
            let (field, value) = line.split_once(':').unwrap_or((line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            match field {
                "id" => self.id = value.trim().parse().ok(),
                "data" => match &mut self.data {
                    Some(data) => {
                        data.push('\n');
                        data.push_str(value);
                    }
                    None => self.data = Some(value.to_string()),
                },
                // `event:` repeats the data's `type`; comments are keep-alives.
                _ => {}
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_read_whatever_the_chunking() {
        let stream = ": keep-alive\n\nid: 1\nevent: run.started\ndata: {\"type\":\"run.started\"}\n\nid: 2\r\nevent: message.delta\r\ndata: {\"type\":\"message.delta\",\r\ndata: \"text\":\"Hé\"}\r\n\r\n";
        let whole = SseParser::default().push(stream.as_bytes());
        assert_eq!(
            whole,
            [
                (1, "{\"type\":\"run.started\"}".to_string()),
                (
                    2,
                    "{\"type\":\"message.delta\",\n\"text\":\"Hé\"}".to_string()
                )
            ]
        );
        // Byte by byte (splitting the é too) gives the same events.
        let mut parser = SseParser::default();
        let mut bytewise = Vec::new();
        for b in stream.as_bytes() {
            bytewise.extend(parser.push(&[*b]));
        }
        assert_eq!(bytewise, whole);
        let event: RunEvent = serde_json::from_str(&whole[1].1).unwrap();
        assert_eq!(event, RunEvent::MessageDelta { text: "Hé".into() });
    }

    #[test]
    fn server_refs_are_shortened_for_display() {
        assert_eq!(short_ref("api:default/mcp-actions"), "mcp-actions");
        assert_eq!(short_ref("api:tools/github"), "tools/github");
        assert_eq!(short_ref("component:x/y"), "component:x/y");
    }
}
