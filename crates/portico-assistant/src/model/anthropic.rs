//! Anthropic Messages: `POST {baseUrl}/v1/messages` with `x-api-key` and `anthropic-version`,
//! `stream: true`. System messages go to the top-level `system`; tool calls and results travel as
//! `tool_use` and `tool_result` content blocks. The stream's events (`message_start`,
//! `content_block_*`, `message_delta`, `message_stop`, `ping`, `error`) are folded into one
//! answer. An `error` event counts as the HTTP status its type stands for (`overloaded_error` is
//! 529, `rate_limit_error` 429, ...) and, while no text has been streamed yet, is retried as that
//! status would be.

use std::collections::BTreeMap;

use reqwest::header::{ACCEPT, HeaderValue};
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::config::{ModelConfig, Settings};
use super::retry::{self, Failure};
use super::sse::{self, EventStream};
use super::{
    ChatRequest, ChatResponse, Deltas, FinishReason, ModelError, ModelFuture, ModelProvider, Role,
    ToolCall, Usage,
};

/// The API version Portico speaks.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";

/// A client of the Anthropic Messages API.
pub struct AnthropicProvider {
    settings: Settings,
    client: reqwest::Client,
    url: String,
}

impl AnthropicProvider {
    /// A client for `config` (whose provider is `anthropic`).
    pub fn from_config(config: &ModelConfig) -> Result<Self, ModelError> {
        Self::new(Settings::from_config(config)?)
    }

    pub(crate) fn new(settings: Settings) -> Result<Self, ModelError> {
        Ok(Self {
            client: settings.client()?,
            url: format!("{}/v1/messages", settings.base_url),
            settings,
        })
    }

    async fn attempt(
        &self,
        body: &Value,
        deltas: Option<&Deltas>,
    ) -> Result<ChatResponse, Failure> {
        let mut req = self
            .client
            .post(&self.url)
            .header(ACCEPT, "text/event-stream, application/json")
            .header("anthropic-version", ANTHROPIC_VERSION)
            .json(body);
        if let Some(key) = &self.settings.api_key {
            let mut value = HeaderValue::from_str(key.expose_secret()).map_err(|_| {
                ModelError::Config(
                    "assistant.model.apiKey holds characters that cannot be sent in an HTTP header"
                        .into(),
                )
            })?;
            value.set_sensitive(true);
            req = req.header("x-api-key", value);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| self.settings.endpoint.transport_error(&e))?;
        if !resp.status().is_success() {
            return Err(retry::status_failure(resp, self.settings.api_key.as_ref()).await);
        }
        let mut answer = Answer::default();
        if sse::is_json(&resp) {
            let message: WireMessage = sse::read_json(resp, &self.settings.endpoint).await?;
            answer.message(message, deltas);
        } else {
            let mut events = EventStream::new(resp, self.settings.endpoint.clone());
            while let Some(ev) = events.next().await? {
                let event: Event = sse::decode(&ev.data)?;
                if answer.event(event, deltas)? {
                    break;
                }
            }
        }
        Ok(answer.finish()?)
    }
}

impl ModelProvider for AnthropicProvider {
    fn name(&self) -> String {
        self.settings.name()
    }

    fn complete<'a>(&'a self, request: &'a ChatRequest, deltas: Option<Deltas>) -> ModelFuture<'a> {
        Box::pin(async move {
            let body = request_body(&self.settings, request)?;
            retry::with_retries(self.settings.max_retries, || {
                self.attempt(&body, deltas.as_ref())
            })
            .await
        })
    }
}

/// The request JSON.
fn request_body(settings: &Settings, request: &ChatRequest) -> Result<Value, ModelError> {
    let mut system: Vec<&str> = Vec::new();
    let mut messages: Vec<Value> = Vec::with_capacity(request.messages.len());
    // Whether the last message is a user message made of tool results, which the next tool
    // result joins.
    let mut open_results = false;
    for m in &request.messages {
        let was_open = std::mem::replace(&mut open_results, false);
        match m.role {
            Role::System => {
                system.push(&m.content);
                open_results = was_open;
            }
            Role::User => messages.push(json!({"role": "user", "content": m.content})),
            Role::Assistant if m.tool_calls.is_empty() => {
                messages.push(json!({"role": "assistant", "content": m.content}));
            }
            Role::Assistant => {
                let mut blocks = Vec::with_capacity(m.tool_calls.len() + 1);
                if !m.content.is_empty() {
                    blocks.push(json!({"type": "text", "text": m.content}));
                }
                for c in &m.tool_calls {
                    blocks.push(json!({"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments}));
                }
                messages.push(json!({"role": "assistant", "content": blocks}));
            }
            Role::Tool => {
                let id = m.tool_call_id.as_deref().ok_or_else(|| {
                    ModelError::Protocol("a tool result does not say which call it answers".into())
                })?;
                let block = json!({"type": "tool_result", "tool_use_id": id, "content": m.content});
                match messages.last_mut().and_then(|last| last.get_mut("content")) {
                    Some(Value::Array(blocks)) if was_open => blocks.push(block),
                    _ => messages.push(json!({"role": "user", "content": [block]})),
                }
                open_results = true;
            }
        }
    }
    let mut body = Map::new();
    body.insert("model".into(), json!(settings.model));
    body.insert("max_tokens".into(), json!(settings.max_tokens));
    if !system.is_empty() {
        body.insert("system".into(), json!(system.join("\n\n")));
    }
    body.insert("messages".into(), Value::Array(messages));
    if !request.tools.is_empty() {
        let tools: Vec<Value> = request
            .tools
            .iter()
            .map(|t| json!({"name": t.name, "description": t.description, "input_schema": t.parameters}))
            .collect();
        body.insert("tools".into(), Value::Array(tools));
    }
    body.insert("stream".into(), json!(true));
    if let Some(t) = settings.temperature {
        body.insert("temperature".into(), json!(t));
    }
    Ok(Value::Object(body))
}

/// One streamed event (its `type` is the same as the SSE event name).
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Event {
    MessageStart {
        message: WireMessage,
    },
    ContentBlockStart {
        index: u64,
        content_block: Block,
    },
    ContentBlockDelta {
        index: u64,
        delta: BlockDelta,
    },
    ContentBlockStop {},
    MessageDelta {
        #[serde(default)]
        delta: MessageDelta,
        #[serde(default)]
        usage: Option<WireUsage>,
    },
    MessageStop {},
    Ping {},
    Error {
        error: WireError,
    },
    /// New event types may appear; they are skipped.
    #[serde(other)]
    Unknown,
}

/// A message, as `message_start` opens it or as a whole non-streamed body.
#[derive(Deserialize, Default)]
struct WireMessage {
    #[serde(default)]
    content: Vec<Block>,
    #[serde(default)]
    stop_reason: Option<String>,
    #[serde(default)]
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Block {
    Text {
        #[serde(default)]
        text: String,
    },
    ToolUse {
        id: String,
        name: String,
        #[serde(default)]
        input: Value,
    },
    /// Thinking and other blocks carry nothing Portico uses.
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum BlockDelta {
    TextDelta {
        text: String,
    },
    InputJsonDelta {
        partial_json: String,
    },
    #[serde(other)]
    Other,
}

#[derive(Deserialize, Default)]
struct MessageDelta {
    #[serde(default)]
    stop_reason: Option<String>,
}

#[derive(Deserialize, Default)]
struct WireUsage {
    #[serde(default)]
    input_tokens: Option<u64>,
    #[serde(default)]
    output_tokens: Option<u64>,
}

#[derive(Deserialize)]
struct WireError {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    message: String,
}

/// A content block being assembled.
enum Part {
    Text,
    ToolUse {
        id: String,
        name: String,
        /// `input` as `content_block_start` gave it (used when no JSON fragment follows).
        input: Value,
        json: String,
    },
    Other,
}

/// The answer being assembled.
#[derive(Default)]
struct Answer {
    text: String,
    parts: BTreeMap<u64, Part>,
    stop_reason: Option<String>,
    usage: Option<Usage>,
    stopped: bool,
    streamed: bool,
}

impl Answer {
    /// Folds one event in; true once the message has stopped.
    fn event(&mut self, event: Event, deltas: Option<&Deltas>) -> Result<bool, Failure> {
        match event {
            Event::MessageStart { message } => {
                self.add_usage(message.usage);
            }
            Event::ContentBlockStart {
                index,
                content_block,
            } => {
                let part = match content_block {
                    Block::Text { text } => {
                        self.push_text(&text, deltas);
                        Part::Text
                    }
                    Block::ToolUse { id, name, input } => Part::ToolUse {
                        id,
                        name,
                        input,
                        json: String::new(),
                    },
                    Block::Other => Part::Other,
                };
                self.parts.insert(index, part);
            }
            Event::ContentBlockDelta { index, delta } => match delta {
                BlockDelta::TextDelta { text } => self.push_text(&text, deltas),
                BlockDelta::InputJsonDelta { partial_json } => match self.parts.get_mut(&index) {
                    Some(Part::ToolUse { json, .. }) => json.push_str(&partial_json),
                    _ => {
                        return Err(ModelError::Protocol(format!(
                            "tool input arrived for content block {index}, which is not a tool call"
                        ))
                        .into());
                    }
                },
                BlockDelta::Other => {}
            },
            Event::MessageDelta { delta, usage } => {
                if delta.stop_reason.is_some() {
                    self.stop_reason = delta.stop_reason;
                }
                self.add_usage(usage);
            }
            Event::MessageStop {} => {
                self.stopped = true;
                return Ok(true);
            }
            Event::Error { error } => return Err(self.stream_error(error)),
            Event::ContentBlockStop {} | Event::Ping {} | Event::Unknown => {}
        }
        Ok(false)
    }

    fn push_text(&mut self, text: &str, deltas: Option<&Deltas>) {
        if !text.is_empty() {
            sse::send_delta(deltas, text);
            self.text.push_str(text);
            self.streamed = true;
        }
    }

    /// Input tokens come with `message_start`, output tokens (a running total) with
    /// `message_delta`.
    fn add_usage(&mut self, usage: Option<WireUsage>) {
        let Some(u) = usage else { return };
        let current = self.usage.get_or_insert_with(Usage::default);
        if let Some(i) = u.input_tokens.filter(|&i| i > 0) {
            current.input_tokens = i;
        }
        if let Some(o) = u.output_tokens {
            current.output_tokens = o;
        }
    }

    /// An `error` event, with the status its type stands for; retried (when nothing was
    /// streamed yet) as that status would be.
    fn stream_error(&self, error: WireError) -> Failure {
        let status = match error.kind.as_str() {
            "invalid_request_error" => 400,
            "authentication_error" => 401,
            "permission_error" => 403,
            "not_found_error" => 404,
            "request_too_large" => 413,
            "rate_limit_error" => 429,
            "overloaded_error" => 529,
            _ => 500,
        };
        let message = if error.message.is_empty() {
            error.kind
        } else {
            error.message
        };
        match retry::classify(status, message, None) {
            Failure::Retry { error, .. } if self.streamed => Failure::Final(error),
            other => other,
        }
    }

    fn message(&mut self, message: WireMessage, deltas: Option<&Deltas>) {
        for (index, block) in message.content.into_iter().enumerate() {
            let part = match block {
                Block::Text { text } => {
                    self.push_text(&text, deltas);
                    Part::Text
                }
                Block::ToolUse { id, name, input } => Part::ToolUse {
                    id,
                    name,
                    input,
                    json: String::new(),
                },
                Block::Other => Part::Other,
            };
            self.parts.insert(index as u64, part);
        }
        self.add_usage(message.usage);
        self.stop_reason = message.stop_reason;
        self.stopped = true;
    }

    fn finish(self) -> Result<ChatResponse, ModelError> {
        if !self.stopped && self.stop_reason.is_none() {
            return Err(ModelError::Protocol(
                "the stream ended before the answer was complete".into(),
            ));
        }
        let mut tool_calls = Vec::new();
        for part in self.parts.into_values() {
            if let Part::ToolUse {
                id,
                name,
                input,
                json,
            } = part
            {
                let arguments = if json.trim().is_empty() && input.is_object() {
                    input
                } else {
                    sse::tool_arguments(&name, &json)?
                };
                tool_calls.push(ToolCall {
                    id,
                    name,
                    arguments,
                });
            }
        }
        let finish = match self.stop_reason.as_deref() {
            Some("end_turn" | "stop_sequence") | None => FinishReason::Stop,
            Some("tool_use") => FinishReason::ToolCalls,
            Some("max_tokens") => FinishReason::Length,
            Some(_) => FinishReason::Other,
        };
        Ok(ChatResponse {
            text: self.text,
            tool_calls,
            finish,
            usage: self.usage,
        })
    }
}
