//! A scripted OpenAI-compatible model server for the assistant's tests: each chat-completions
//! request gets the next scripted reply (text, or tool calls), streamed in OpenAI's chunk format;
//! every request is kept so tests can check what the model was shown.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::post;
use serde_json::{Value, json};

/// One scripted reply.
#[derive(Debug, Clone)]
pub enum Reply {
    /// Answer with this text (streamed in two pieces).
    Text(String),
    /// Call these tools: (name, arguments).
    Tools(Vec<(String, Value)>),
}

#[derive(Default)]
struct Script {
    replies: VecDeque<Reply>,
    requests: Vec<Value>,
}

/// The running model server.
#[derive(Clone)]
pub struct ScriptedModel {
    /// `http://127.0.0.1:PORT/v1`.
    pub base_url: String,
    script: Arc<Mutex<Script>>,
}

impl ScriptedModel {
    /// Starts a server that answers with `replies`, in order.
    pub async fn start(replies: Vec<Reply>) -> Self {
        let script = Arc::new(Mutex::new(Script {
            replies: replies.into(),
            requests: Vec::new(),
        }));
        let app = Router::new()
            .route("/v1/chat/completions", post(complete))
            .with_state(script.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}/v1", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { base_url, script }
    }

    /// Every request the model received.
    pub fn requests(&self) -> Vec<Value> {
        self.script.lock().unwrap().requests.clone()
    }

    /// The `assistant:` config block pointing at this server.
    pub fn config(&self) -> String {
        format!(
            "assistant:\n  model: {{provider: openai, baseUrl: '{}', model: scripted}}\n",
            self.base_url
        )
    }
}

fn chunk(delta: Value, finish: Option<&str>) -> String {
    let body = json!({
        "id": "chatcmpl-test", "object": "chat.completion.chunk", "created": 1, "model": "scripted",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]
    });
    format!("data: {body}\n\n")
}

async fn complete(State(script): State<Arc<Mutex<Script>>>, body: String) -> impl IntoResponse {
    let request: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let reply = {
        let mut s = script.lock().unwrap();
        s.requests.push(request);
        s.replies
            .pop_front()
            .unwrap_or_else(|| Reply::Text("(the script has no more replies)".into()))
    };
    let mut out = chunk(json!({"role": "assistant", "content": ""}), None);
    match reply {
        Reply::Text(text) => {
            let mid = text
                .char_indices()
                .nth(text.chars().count() / 2)
                .map_or(0, |(i, _)| i);
            out.push_str(&chunk(json!({"content": &text[..mid]}), None));
            out.push_str(&chunk(json!({"content": &text[mid..]}), None));
            out.push_str(&chunk(json!({}), Some("stop")));
        }
        Reply::Tools(calls) => {
            for (i, (name, args)) in calls.iter().enumerate() {
                let arguments = args.to_string();
                let (a, b) = arguments.split_at(arguments.len() / 2);
                out.push_str(&chunk(
                    json!({"tool_calls": [{"index": i, "id": format!("call_{i}_{name}"), "type": "function", "function": {"name": name, "arguments": a}}]}),
                    None,
                ));
                out.push_str(&chunk(
                    json!({"tool_calls": [{"index": i, "function": {"arguments": b}}]}),
                    None,
                ));
            }
            out.push_str(&chunk(json!({}), Some("tool_calls")));
        }
    }
    out.push_str("data: [DONE]\n\n");
    ([("content-type", "text/event-stream")], out)
}
