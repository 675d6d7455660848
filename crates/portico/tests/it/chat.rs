//! `portico chat` as a real process against the real `portico serve`, with a scripted
//! OpenAI-compatible model (fixed replies and tool calls per test) and the built-in Portal
//! Actions server as the tool: one-shot answers with tool lines, approvals answered on stdin,
//! no model configured, a dropped event stream resumed without duplicates, and Ctrl-C.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::post;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::serve_support::{Server, Setup, TOKEN};

pub(crate) const GET_ENTITY: &str = "mcp-actions__catalog_get_catalog_entity";

/// One scripted model reply.
pub(crate) enum Reply {
    /// Answer with this text (streamed in two pieces).
    Text(&'static str),
    /// Call this tool with these arguments.
    Tool(&'static str, Value),
}

/// A scripted OpenAI-compatible model: each chat-completions request gets the next reply,
/// streamed as OpenAI chunks, a little late so that run events arrive one by one.
pub(crate) async fn scripted_model(replies: Vec<Reply>) -> String {
    let script = Arc::new(Mutex::new(VecDeque::from(replies)));
    let app = Router::new()
        .route("/v1/chat/completions", post(complete))
        .with_state(script);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base_url = format!("http://{}/v1", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base_url
}

fn chunk(delta: Value, finish: Option<&str>) -> String {
    let body = json!({
        "id": "chatcmpl-test", "object": "chat.completion.chunk", "created": 1, "model": "scripted",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]
    });
    format!("data: {body}\n\n")
}

async fn complete(State(script): State<Arc<Mutex<VecDeque<Reply>>>>) -> impl IntoResponse {
    tokio::time::sleep(Duration::from_millis(200)).await;
    let reply = script.lock().unwrap().pop_front();
    let mut out = chunk(json!({"role": "assistant", "content": ""}), None);
    match reply.unwrap_or(Reply::Text("(the script has no more replies)")) {
        Reply::Text(text) => {
            let (a, b) = text.split_at(text.len() / 2);
            out.push_str(&chunk(json!({"content": a}), None));
            out.push_str(&chunk(json!({"content": b}), None));
            out.push_str(&chunk(json!({}), Some("stop")));
        }
        Reply::Tool(name, args) => {
            out.push_str(&chunk(
                json!({"tool_calls": [{"index": 0, "id": "call_0", "type": "function",
                    "function": {"name": name, "arguments": args.to_string()}}]}),
                None,
            ));
            out.push_str(&chunk(json!({}), Some("tool_calls")));
        }
    }
    out.push_str("data: [DONE]\n\n");
    ([("content-type", "text/event-stream")], out)
}

/// The tool call and the answer of most tests.
fn lookup_then_answer() -> Vec<Reply> {
    vec![
        Reply::Tool(GET_ENTITY, json!({"name": "mcp-actions"})),
        Reply::Text("It is the actions server."),
    ]
}

/// `portico serve` with the static token (no guest sign-in), on a known port so the built-in
/// actions server's URL (from `backend.baseUrl`) reaches it; `model` is the scripted model's
/// `/v1` URL, `approval` is `assistant.toolApproval`.
async fn serve(model: Option<&str>, approval: Option<&str>) -> (Setup, Server) {
    let mut setup = Setup::new(&[], "");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut config: Value =
        serde_json::from_str(&std::fs::read_to_string(&setup.config).unwrap()).unwrap();
    config["backend"]["baseUrl"] = json!(format!("http://127.0.0.1:{port}"));
    config["backend"]["listen"]["port"] = json!(port);
    let mut assistant = json!({});
    if let Some(url) = model {
        assistant["model"] = json!({"provider": "openai", "baseUrl": url, "model": "scripted"});
    }
    if let Some(approval) = approval {
        assistant["toolApproval"] = json!(approval);
    }
    config["assistant"] = assistant;
    std::fs::write(
        &setup.config,
        serde_json::to_string_pretty(&config).unwrap(),
    )
    .unwrap();
    let server = setup.start().await;
    (setup, server)
}

/// A running `portico chat`, its output collected as it comes; killed when dropped.
struct Chat {
    child: Child,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
}

/// What a finished `portico chat` left.
struct Finished {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl std::fmt::Display for Finished {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

fn collect(mut from: impl Read + Send + 'static) -> Arc<Mutex<String>> {
    let text = Arc::new(Mutex::new(String::new()));
    let sink = text.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = from.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    text
}

impl Chat {
    /// `portico chat --url URL ARGS…` with the static token in `PORTICO_TOKEN`; `stdin` is
    /// written and closed, or (`None`) left open.
    fn spawn(url: &str, args: &[&str], stdin: Option<&str>) -> Chat {
        let mut command = Command::new(env!("CARGO_BIN_EXE_portico"));
        command
            .arg("chat")
            .arg("--url")
            .arg(url)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env("NO_COLOR", "1");
        for (name, _) in std::env::vars() {
            if name.starts_with("PORTICO_") {
                command.env_remove(name);
            }
        }
        command.env("PORTICO_TOKEN", TOKEN);
        let mut child = command.spawn().expect("portico chat starts");
        let mut input = child.stdin.take().unwrap();
        if let Some(text) = stdin {
            input.write_all(text.as_bytes()).unwrap();
        } else {
            // Kept open for the process's life.
            std::mem::forget(input);
        }
        let stdout = collect(child.stdout.take().unwrap());
        let stderr = collect(child.stderr.take().unwrap());
        Chat {
            child,
            stdout,
            stderr,
        }
    }

    /// Waits until stdout contains `text`.
    async fn wait_for_output(&self, text: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self.stdout.lock().unwrap().contains(text) {
            assert!(
                Instant::now() < deadline,
                "no {text:?} on stdout within 60 s:\n{}\n--- stderr\n{}",
                self.stdout.lock().unwrap(),
                self.stderr.lock().unwrap()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits (at most a minute) for the process to exit.
    async fn finish(mut self) -> Finished {
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "portico chat did not exit within 60 s:\n{}\n--- stderr\n{}",
                self.stdout.lock().unwrap(),
                self.stderr.lock().unwrap()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        // The reader threads end at EOF, right after the exit.
        tokio::time::sleep(Duration::from_millis(100)).await;
        Finished {
            code: status.code(),
            stdout: self.stdout.lock().unwrap().clone(),
            stderr: self.stderr.lock().unwrap().clone(),
        }
    }
}

impl Drop for Chat {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_question_shows_the_tool_call_and_the_answer() {
    let model = scripted_model(lookup_then_answer()).await;
    let (_setup, server) = serve(Some(&model), None).await;
    let out = Chat::spawn(&server.base, &["What is mcp-actions?"], Some(""))
        .finish()
        .await;
    assert_eq!(out.code, Some(0), "{out}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(
        lines.contains(&"… mcp-actions · catalog_get_catalog_entity"),
        "the call is announced as server · tool: {out}"
    );
    let done = lines
        .iter()
        .position(|l| l.starts_with("✓ catalog_get_catalog_entity (") && l.ends_with(" ms)"))
        .unwrap_or_else(|| panic!("no ✓ line: {out}"));
    let answer = lines
        .iter()
        .position(|l| *l == "It is the actions server.")
        .unwrap_or_else(|| panic!("no answer line: {out}"));
    assert!(done < answer, "{out}");
    assert_eq!(out.stdout.matches("It is the actions server.").count(), 1);
    // Not a terminal: plain lines, no escape codes; and the token is never shown.
    assert!(!out.stdout.contains('\u{1b}'), "{out}");
    assert!(!out.stdout.contains(TOKEN) && !out.stderr.contains(TOKEN));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approvals_are_asked_on_stdin() {
    let model = scripted_model(vec![
        Reply::Tool(GET_ENTITY, json!({"name": "mcp-actions"})),
        Reply::Text("It is the actions server."),
        Reply::Tool(GET_ENTITY, json!({"name": "mcp-actions"})),
        Reply::Text("I could not look it up."),
        Reply::Tool(GET_ENTITY, json!({"name": "mcp-actions"})),
        Reply::Text("Not looked up."),
    ])
    .await;
    let (_setup, server) = serve(Some(&model), Some("always")).await;

    // Approved: the call runs and the answer prints.
    let out = Chat::spawn(&server.base, &["What is mcp-actions?"], Some("y\n"))
        .finish()
        .await;
    assert_eq!(out.code, Some(0), "{out}");
    for expected in [
        "Approval needed: catalog_get_catalog_entity on mcp-actions",
        "\"name\": \"mcp-actions\"",
        "Why: every tool call needs your approval (assistant.toolApproval: always)",
        "Run it? [y]es / [n]o / [a]lways y",
        "Approved.",
        "✓ catalog_get_catalog_entity (",
        "It is the actions server.",
    ] {
        assert!(out.stdout.contains(expected), "no {expected:?}: {out}");
    }

    // Denied: no call, and the run still completes.
    let out = Chat::spawn(&server.base, &["What is mcp-actions?"], Some("n\n"))
        .finish()
        .await;
    assert_eq!(out.code, Some(0), "{out}");
    assert!(out.stdout.contains("Denied."), "{out}");
    assert!(!out.stdout.contains('✓'), "{out}");
    assert!(out.stdout.contains("I could not look it up."), "{out}");

    // No answer at all (stdin closed): denied, and said so.
    let out = Chat::spawn(&server.base, &["What is mcp-actions?"], Some(""))
        .finish()
        .await;
    assert_eq!(out.code, Some(0), "{out}");
    assert!(
        out.stdout
            .contains("No answer (standard input is closed): denied."),
        "{out}"
    );
    assert!(!out.stdout.contains('✓'), "{out}");
    assert!(out.stdout.contains("Not looked up."), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interactive_lines_share_a_conversation_and_yes_approves() {
    let model = scripted_model(vec![
        Reply::Text("Hello."),
        Reply::Tool(GET_ENTITY, json!({"name": "mcp-actions"})),
        Reply::Text("It is the actions server."),
    ])
    .await;
    let (_setup, server) = serve(Some(&model), Some("always")).await;
    let out = Chat::spawn(
        &server.base,
        &["--yes"],
        Some("Hi\n\nWhat is mcp-actions?\n/quit\nnever sent\n"),
    )
    .finish()
    .await;
    assert_eq!(out.code, Some(0), "{out}");
    assert!(out.stdout.contains("Hello.\n"), "{out}");
    assert!(out.stdout.contains("Approved (--yes)."), "{out}");
    assert!(
        out.stdout.contains("✓ catalog_get_catalog_entity ("),
        "{out}"
    );
    assert!(out.stdout.contains("It is the actions server."), "{out}");
    assert!(!out.stdout.contains("no more replies"), "{out}");
    // One conversation for both lines.
    assert_eq!(out.stderr.matches("(conversation ").count(), 1, "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_model_the_server_says_how_to_configure_one() {
    let (_setup, server) = serve(None, None).await;
    let out = Chat::spawn(&server.base, &["Hello?"], Some(""))
        .finish()
        .await;
    assert_eq!(out.code, Some(0), "{out}");
    assert!(
        out.stdout.contains("No model is configured")
            && out.stdout.contains("portico model install")
            && out.stdout.contains("assistant.model"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_token_or_guest_sign_in_it_says_how_to_get_one() {
    let (_setup, server) = serve(None, None).await;
    let out = Chat::spawn(
        &server.base,
        &["--token-env", "NO_SUCH_TOKEN_VAR", "Hi"],
        Some(""),
    )
    .finish()
    .await;
    assert_eq!(out.code, Some(2), "{out}");
    assert!(
        out.stderr.contains("NO_SUCH_TOKEN_VAR is not set")
            && out.stderr.contains("auth.providers.guest"),
        "{out}"
    );
}

/// A TCP proxy to `upstream` that cuts the first connection whose answer carries a
/// `tool.completed` event, right after passing it on; counts event requests that resume with
/// `Last-Event-ID`.
async fn cutting_proxy(upstream: String) -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let cut = Arc::new(AtomicBool::new(false));
    let resumed = Arc::new(AtomicUsize::new(0));
    let counter = resumed.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let server = tokio::net::TcpStream::connect(&upstream).await.unwrap();
            let (mut client_read, mut client_write) = client.into_split();
            let (mut server_read, mut server_write) = server.into_split();
            let counter = counter.clone();
            let up = tokio::spawn(async move {
                let mut buf = vec![0u8; 16384];
                while let Ok(n) = client_read.read(&mut buf).await {
                    let text = String::from_utf8_lossy(&buf[..n]).to_lowercase();
                    if text.contains("/events") && text.contains("last-event-id:") {
                        counter.fetch_add(1, Ordering::SeqCst);
                    }
                    if n == 0 || server_write.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
            let cut = cut.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 16384];
                while let Ok(n) = server_read.read(&mut buf).await {
                    if n == 0 || client_write.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                    let text = String::from_utf8_lossy(&buf[..n]);
                    if text.contains("event: tool.completed") && !cut.swap(true, Ordering::SeqCst) {
                        break;
                    }
                }
                up.abort();
            });
        }
    });
    (base, resumed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_event_stream_resumes_without_duplicates() {
    let model = scripted_model(lookup_then_answer()).await;
    let (_setup, server) = serve(Some(&model), None).await;
    let (proxy, resumed) = cutting_proxy(server.base.trim_start_matches("http://").into()).await;
    let out = Chat::spawn(&proxy, &["What is mcp-actions?"], Some(""))
        .finish()
        .await;
    assert_eq!(out.code, Some(0), "{out}");
    assert!(
        resumed.load(Ordering::SeqCst) >= 1,
        "the stream was resumed with Last-Event-ID: {out}"
    );
    assert_eq!(out.stdout.matches("… mcp-actions").count(), 1, "{out}");
    assert_eq!(out.stdout.matches('✓').count(), 1, "{out}");
    assert_eq!(
        out.stdout.matches("It is the actions server.").count(),
        1,
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_cancels_the_run() {
    let model = scripted_model(lookup_then_answer()).await;
    let (_setup, server) = serve(Some(&model), Some("always")).await;
    let chat = Chat::spawn(&server.base, &["What is mcp-actions?"], None);
    chat.wait_for_output("Run it?").await;
    let status = Command::new("kill")
        .args(["-INT", &chat.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = chat.finish().await;
    assert_eq!(out.code, Some(130), "{out}");
    assert!(out.stderr.contains("Cancelled."), "{out}");
}
