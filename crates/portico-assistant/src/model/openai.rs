//! OpenAI chat completions, spoken by OpenAI and by OpenAI-compatible servers (Ollama, vLLM,
//! llama-server): `POST {baseUrl}/chat/completions` with `stream: true`. Text deltas are passed
//! on as they arrive; tool-call fragments are assembled by their `index`; usage comes in the last
//! chunk. A server that ignores `stream` and answers one JSON body is understood too.

use reqwest::header::ACCEPT;
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

/// A client of an OpenAI-compatible chat completions API.
pub struct OpenAiProvider {
    settings: Settings,
    client: reqwest::Client,
    url: String,
}

impl OpenAiProvider {
    /// A client for `config` (whose provider is `openai`).
    pub fn from_config(config: &ModelConfig) -> Result<Self, ModelError> {
        Self::new(Settings::from_config(config)?)
    }

    pub(crate) fn new(settings: Settings) -> Result<Self, ModelError> {
        Ok(Self {
            client: settings.client()?,
            url: format!("{}/chat/completions", settings.base_url),
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
            .json(body);
        if let Some(key) = &self.settings.api_key {
            req = req.bearer_auth(key.expose_secret());
        }
        let resp = req
            .send()
            .await
            .map_err(|e| self.settings.endpoint.transport_error(&e))?;
        if !resp.status().is_success() {
            return Err(retry::status_failure(resp, self.settings.api_key.as_ref()).await);
        }
        let status = resp.status().as_u16();
        let mut answer = Answer::default();
        if sse::is_json(&resp) {
            let completion: Completion = sse::read_json(resp, &self.settings.endpoint).await?;
            answer.completion(completion, deltas)?;
        } else {
            let mut events = EventStream::new(resp, self.settings.endpoint.clone());
            while let Some(ev) = events.next().await? {
                if ev.data.trim() == "[DONE]" {
                    answer.done = true;
                    break;
                }
                let chunk: Chunk = sse::decode(&ev.data)?;
                answer.chunk(chunk, status, deltas)?;
            }
        }
        Ok(answer.finish()?)
    }
}

impl ModelProvider for OpenAiProvider {
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
    let mut messages = Vec::with_capacity(request.messages.len());
    for m in &request.messages {
        messages.push(match m.role {
            Role::System => json!({"role": "system", "content": m.content}),
            Role::User => json!({"role": "user", "content": m.content}),
            Role::Assistant if m.tool_calls.is_empty() => {
                json!({"role": "assistant", "content": m.content})
            }
            Role::Assistant => {
                let calls: Vec<Value> = m
                    .tool_calls
                    .iter()
                    .map(|c| {
                        json!({
                            "id": c.id,
                            "type": "function",
                            "function": {"name": c.name, "arguments": c.arguments.to_string()},
                        })
                    })
                    .collect();
                let content = if m.content.is_empty() {
                    Value::Null
                } else {
                    Value::String(m.content.clone())
                };
                json!({"role": "assistant", "content": content, "tool_calls": calls})
            }
            Role::Tool => {
                let id = m.tool_call_id.as_deref().ok_or_else(|| {
                    ModelError::Protocol("a tool result does not say which call it answers".into())
                })?;
                json!({"role": "tool", "tool_call_id": id, "content": m.content})
            }
        });
    }
    let mut body = Map::new();
    body.insert("model".into(), json!(settings.model));
    body.insert("messages".into(), Value::Array(messages));
    if !request.tools.is_empty() {
        let tools: Vec<Value> = request
            .tools
            .iter()
            .map(|t| {
                json!({
                    "type": "function",
                    "function": {"name": t.name, "description": t.description, "parameters": t.parameters},
                })
            })
            .collect();
        body.insert("tools".into(), Value::Array(tools));
    }
    body.insert("stream".into(), json!(true));
    body.insert("stream_options".into(), json!({"include_usage": true}));
    body.insert("max_tokens".into(), json!(settings.max_tokens));
    if let Some(t) = settings.temperature {
        body.insert("temperature".into(), json!(t));
    }
    Ok(Value::Object(body))
}

/// One `chat.completion.chunk`; every field may be missing or null.
#[derive(Deserialize)]
struct Chunk {
    #[serde(default)]
    choices: Option<Vec<ChunkChoice>>,
    #[serde(default)]
    usage: Option<WireUsage>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Deserialize)]
struct ChunkChoice {
    #[serde(default)]
    delta: Option<Delta>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct Delta {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<WireToolCall>>,
}

/// A tool call, whole (non-streamed) or a fragment of one (streamed).
#[derive(Deserialize)]
struct WireToolCall {
    #[serde(default)]
    index: Option<usize>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    function: Option<WireFunction>,
}

#[derive(Deserialize)]
struct WireFunction {
    #[serde(default)]
    name: Option<String>,
    /// A JSON string (fragment), as OpenAI sends it; an object is accepted too.
    #[serde(default)]
    arguments: Option<Value>,
}

#[derive(Deserialize, Default)]
struct WireUsage {
    #[serde(default)]
    prompt_tokens: Option<u64>,
    #[serde(default)]
    completion_tokens: Option<u64>,
}

impl From<WireUsage> for Usage {
    fn from(u: WireUsage) -> Self {
        Usage {
            input_tokens: u.prompt_tokens.unwrap_or(0),
            output_tokens: u.completion_tokens.unwrap_or(0),
        }
    }
}

/// A `chat.completion` body.
#[derive(Deserialize)]
struct Completion {
    #[serde(default)]
    choices: Vec<CompletionChoice>,
    #[serde(default)]
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct CompletionChoice {
    message: Delta,
    #[serde(default)]
    finish_reason: Option<String>,
}

/// A tool call being assembled.
#[derive(Default)]
struct PartialCall {
    id: String,
    name: String,
    arguments: String,
}

/// The answer being assembled.
#[derive(Default)]
struct Answer {
    text: String,
    calls: Vec<PartialCall>,
    finish: Option<String>,
    usage: Option<Usage>,
    done: bool,
}

impl Answer {
    fn chunk(&mut self, chunk: Chunk, status: u16, deltas: Option<&Deltas>) -> Result<(), Failure> {
        if let Some(error) = chunk.error {
            // An error in the middle of the stream (vLLM, OpenAI on a broken generation).
            let message = error
                .get("message")
                .and_then(Value::as_str)
                .or_else(|| error.as_str())
                .unwrap_or("the stream reported an error")
                .to_string();
            let code = error
                .get("code")
                .and_then(Value::as_u64)
                .and_then(|c| u16::try_from(c).ok())
                .filter(|c| (400..600).contains(c))
                .unwrap_or(status);
            return Err(Failure::Final(ModelError::Provider {
                status: code,
                message,
            }));
        }
        if let Some(u) = chunk.usage {
            self.usage = Some(u.into());
        }
        let Some(choice) = chunk.choices.and_then(|c| c.into_iter().next()) else {
            return Ok(());
        };
        if let Some(delta) = choice.delta {
            self.delta(delta, deltas);
        }
        if let Some(reason) = choice.finish_reason {
            self.finish = Some(reason);
        }
        Ok(())
    }

    fn delta(&mut self, delta: Delta, deltas: Option<&Deltas>) {
        if let Some(text) = delta.content {
            sse::send_delta(deltas, &text);
            self.text.push_str(&text);
        }
        for fragment in delta.tool_calls.unwrap_or_default() {
            let slot = match fragment.index {
                Some(i) => i,
                // No index (some compatible servers): a new id starts a new call.
                None => match (&fragment.id, self.calls.last()) {
                    (Some(id), Some(last)) if *id != last.id => self.calls.len(),
                    (_, Some(_)) => self.calls.len() - 1,
                    (_, None) => 0,
                },
            };
            if slot >= self.calls.len() {
                self.calls.resize_with(slot + 1, PartialCall::default);
            }
            let call = &mut self.calls[slot];
            if let Some(id) = fragment.id.filter(|id| !id.is_empty()) {
                call.id = id;
            }
            let Some(function) = fragment.function else {
                continue;
            };
            if let Some(name) = function.name.filter(|n| !n.is_empty()) {
                call.name = name;
            }
            match function.arguments {
                Some(Value::String(s)) => call.arguments.push_str(&s),
                Some(Value::Null) | None => {}
                Some(other) => call.arguments = other.to_string(),
            }
        }
    }

    fn completion(
        &mut self,
        completion: Completion,
        deltas: Option<&Deltas>,
    ) -> Result<(), ModelError> {
        self.usage = completion.usage.map(Usage::from);
        let choice = completion
            .choices
            .into_iter()
            .next()
            .ok_or_else(|| ModelError::Protocol("the answer has no choices".into()))?;
        self.delta(choice.message, deltas);
        self.finish = Some(choice.finish_reason.unwrap_or_else(|| "stop".into()));
        self.done = true;
        Ok(())
    }

    fn finish(self) -> Result<ChatResponse, ModelError> {
        if !self.done && self.finish.is_none() {
            return Err(ModelError::Protocol(
                "the stream ended before the answer was complete".into(),
            ));
        }
        let mut tool_calls = Vec::with_capacity(self.calls.len());
        for (i, call) in self.calls.into_iter().enumerate() {
            if call.name.is_empty() {
                return Err(ModelError::Protocol(format!("tool call {i} has no name")));
            }
            let arguments = sse::tool_arguments(&call.name, &call.arguments)?;
            let id = if call.id.is_empty() {
                format!("call_{i}")
            } else {
                call.id
            };
            tool_calls.push(ToolCall {
                id,
                name: call.name,
                arguments,
            });
        }
        let mut finish = match self.finish.as_deref() {
            Some("stop") | None => FinishReason::Stop,
            Some("tool_calls" | "function_call") => FinishReason::ToolCalls,
            Some("length") => FinishReason::Length,
            Some(_) => FinishReason::Other,
        };
        // Some compatible servers say "stop" while calling tools.
        if finish == FinishReason::Stop && !tool_calls.is_empty() {
            finish = FinishReason::ToolCalls;
        }
        Ok(ChatResponse {
            text: self.text,
            tool_calls,
            finish,
            usage: self.usage,
        })
    }
}
