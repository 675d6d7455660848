//! The instant scripted model: an OpenAI-compatible `POST /v1/chat/completions` in this process
//! that answers at once, streamed in OpenAI's chunk format, so that a run measures Portico's own
//! machinery. A text answer is five chunks (the role, three pieces of text, the finish reason)
//! and `data: [DONE]`, each chunk its own body frame. With `--tool-calls`, a request whose last
//! message is not a tool result gets a call of [`TOOL`] instead, and the one after the result
//! gets the text.
//!
//! It also keeps, for the benchmark: when each question first reached it (to split Portico's
//! time before the model from the rest), the first request of each kind (the floor replays
//! them), and a gate that holds questions carrying [`GATE`] until it opens (so that 1,000 runs
//! are in flight together).

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::response::Response;
use axum::routing::post;
use axum::serve::ListenerExt;
use serde_json::{Value, json};
use tokio::sync::watch;

/// The answer, in the pieces it is streamed in.
pub const ANSWER_PARTS: [&str; 3] = ["Everything in ", "the catalog ", "looks fine."];
/// The tool called in `--tool-calls` mode (read-only, on the built-in actions server).
pub const TOOL: &str = "mcp-actions__auth_who_am_i";
/// A question holding this waits at the model until the gate opens.
pub const GATE: &str = "[gate]";

/// The whole answer.
pub fn answer() -> String {
    ANSWER_PARTS.concat()
}

struct Shared {
    tool_calls: bool,
    /// Question → when a request for it first arrived.
    arrivals: Mutex<HashMap<String, Instant>>,
    /// The first request whose last message was not a tool result, and the first that was.
    first_request: Mutex<Option<Bytes>>,
    second_request: Mutex<Option<Bytes>>,
    /// `true` while open.
    gate: watch::Sender<bool>,
    /// Gated requests waiting now.
    held: AtomicUsize,
}

/// The running model server.
#[derive(Clone)]
pub struct Model {
    /// `http://127.0.0.1:PORT/v1`.
    pub base_url: String,
    shared: Arc<Shared>,
}

impl Model {
    /// Starts the server on a free loopback port (with TCP_NODELAY, as any streaming model
    /// server should have).
    pub async fn start(tool_calls: bool) -> anyhow::Result<Self> {
        let shared = Arc::new(Shared {
            tool_calls,
            arrivals: Mutex::default(),
            first_request: Mutex::default(),
            second_request: Mutex::default(),
            gate: watch::Sender::new(true),
            held: AtomicUsize::new(0),
        });
        let app = Router::new()
            .route("/v1/chat/completions", post(complete))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base_url = format!("http://{}/v1", listener.local_addr()?);
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                eprintln!("the scripted model server stopped: {e}");
            }
        });
        Ok(Self { base_url, shared })
    }

    /// When a request for `question` first arrived.
    pub fn arrival(&self, question: &str) -> Option<Instant> {
        self.shared.arrivals.lock().unwrap().get(question).copied()
    }

    /// Forgets the arrivals (between phases).
    pub fn clear_arrivals(&self) {
        self.shared.arrivals.lock().unwrap().clear();
    }

    /// The requests Portico sent for one run: the question, and in `--tool-calls` mode the
    /// follow-up with the tool result.
    pub fn captured(&self) -> Vec<Bytes> {
        let first = self.shared.first_request.lock().unwrap().clone();
        let second = self.shared.second_request.lock().unwrap().clone();
        first.into_iter().chain(second).collect()
    }

    pub fn close_gate(&self) {
        self.shared.gate.send_replace(false);
    }

    pub fn open_gate(&self) {
        self.shared.gate.send_replace(true);
    }

    /// Gated requests waiting now.
    pub fn held(&self) -> usize {
        self.shared.held.load(Ordering::SeqCst)
    }
}

fn chunk(delta: Value, finish: Option<&str>) -> String {
    let body = json!({
        "id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1, "model": "instant",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]
    });
    format!("data: {body}\n\n")
}

async fn complete(State(s): State<Arc<Shared>>, body: Bytes) -> Response {
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let messages = request["messages"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let after_tool = messages.last().is_some_and(|m| m["role"] == "tool");
    let question = messages
        .iter()
        .rev()
        .find(|m| m["role"] == "user")
        .and_then(|m| m["content"].as_str())
        .unwrap_or("")
        .to_string();
    let now = Instant::now();
    {
        let slot = if after_tool {
            &s.second_request
        } else {
            s.arrivals
                .lock()
                .unwrap()
                .entry(question.clone())
                .or_insert(now);
            &s.first_request
        };
        let mut slot = slot.lock().unwrap();
        if slot.is_none() {
            *slot = Some(body.clone());
        }
    }
    if !after_tool && question.contains(GATE) {
        let mut open = s.gate.subscribe();
        s.held.fetch_add(1, Ordering::SeqCst);
        let _ = open.wait_for(|open| *open).await;
        s.held.fetch_sub(1, Ordering::SeqCst);
    }
    let mut chunks = vec![chunk(json!({"role": "assistant", "content": ""}), None)];
    if s.tool_calls && !after_tool {
        let name = TOOL;
        chunks.push(chunk(
            json!({"tool_calls": [{"index": 0, "id": "call_0", "type": "function",
                "function": {"name": name, "arguments": "{"}}]}),
            None,
        ));
        chunks.push(chunk(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "}"}}]}),
            None,
        ));
        chunks.push(chunk(json!({}), Some("tool_calls")));
    } else {
        for part in ANSWER_PARTS {
            chunks.push(chunk(json!({"content": part}), None));
        }
        chunks.push(chunk(json!({}), Some("stop")));
    }
    chunks.push("data: [DONE]\n\n".to_string());
    Response::builder()
        .header("content-type", "text/event-stream")
        .header("cache-control", "no-cache")
        .body(Body::from_stream(futures::stream::iter(
            chunks.into_iter().map(Ok::<_, Infallible>),
        )))
        .expect("a valid response")
}
