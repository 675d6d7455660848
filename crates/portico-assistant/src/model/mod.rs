//! Model providers behind one trait: a chat request (messages and the tools the model may call)
//! in, the model's text and tool calls out, with text deltas streamed as they arrive. Clients are
//! hand-written on reqwest: OpenAI-compatible chat completions (OpenAI, Ollama, vLLM,
//! llama-server) and Anthropic Messages.

pub mod anthropic;
pub mod config;
pub mod openai;
mod retry;
mod sse;

use std::future::Future;
use std::pin::Pin;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::mpsc;

pub use config::{ModelConfig, ProviderKind, ToolFieldOrder, provider_from_config};

/// Who said a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Instructions to the model.
    System,
    /// The user.
    User,
    /// The model.
    Assistant,
    /// A tool's result.
    Tool,
}

/// A tool call the model asked for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    /// The provider's id of the call, echoed back with the result.
    pub id: String,
    /// The tool's (model-safe) name.
    pub name: String,
    /// The arguments, a JSON object.
    pub arguments: Value,
}

/// One message of the conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// Who said it.
    pub role: Role,
    /// The text (for a tool message: the tool's result as text).
    pub content: String,
    /// For an assistant message: the tool calls it made.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// For a tool message: the call it answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
}

impl Message {
    /// A message with text only.
    pub fn text(role: Role, content: impl Into<String>) -> Self {
        Self {
            role,
            content: content.into(),
            tool_calls: Vec::new(),
            tool_call_id: None,
        }
    }

    /// A tool result for call `id`.
    pub fn tool_result(id: impl Into<String>, content: impl Into<String>) -> Self {
        Self {
            role: Role::Tool,
            content: content.into(),
            tool_calls: Vec::new(),
            tool_call_id: Some(id.into()),
        }
    }
}

/// A tool the model may call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolDef {
    /// Model-safe name (`[a-zA-Z0-9_-]`, at most 64 characters).
    pub name: String,
    /// What it does.
    pub description: String,
    /// JSON Schema of the arguments (an object schema).
    pub parameters: Value,
}

/// What the model is asked.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChatRequest {
    /// The conversation so far, system message first.
    pub messages: Vec<Message>,
    /// Tools it may call (none: it can only answer).
    pub tools: Vec<ToolDef>,
}

/// Why the model stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// It answered.
    Stop,
    /// It wants tool calls run.
    ToolCalls,
    /// It hit the output token limit.
    Length,
    /// Anything else the provider said.
    Other,
}

/// Token counts, when the provider reports them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    /// Prompt tokens.
    pub input_tokens: u64,
    /// Completion tokens.
    pub output_tokens: u64,
}

/// What the model answered.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatResponse {
    /// Its text (possibly empty when it only calls tools).
    pub text: String,
    /// Tool calls to run, in order.
    pub tool_calls: Vec<ToolCall>,
    /// Why it stopped.
    pub finish: FinishReason,
    /// Token counts.
    pub usage: Option<Usage>,
}

/// Why a model call failed; the message is meant for the user, in plain words, and never
/// carries the API key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    /// No model is configured.
    #[error("no model is configured: {0}")]
    NotConfigured(String),
    /// The configuration is wrong.
    #[error("the model configuration is not valid: {0}")]
    Config(String),
    /// The provider cannot be reached.
    #[error("the model provider at {url} cannot be reached: {message}")]
    Unreachable {
        /// Base URL (no key).
        url: String,
        /// Why.
        message: String,
    },
    /// The provider refused the API key.
    #[error("the model provider refused the API key (HTTP {status}): check assistant.model.apiKey")]
    Unauthorized {
        /// 401 or 403.
        status: u16,
    },
    /// Still rate limited after retries.
    #[error("the model provider is rate limiting requests; try again in a moment")]
    RateLimited,
    /// The provider answered with an error.
    #[error("the model provider answered HTTP {status}: {message}")]
    Provider {
        /// HTTP status.
        status: u16,
        /// The provider's own message.
        message: String,
    },
    /// The answer could not be understood.
    #[error("the model provider's answer could not be read: {0}")]
    Protocol(String),
    /// The call was cancelled.
    #[error("cancelled")]
    Cancelled,
}

/// Text as it streams in.
pub type Deltas = mpsc::UnboundedSender<String>;

/// A boxed model call.
pub type ModelFuture<'a> =
    Pin<Box<dyn Future<Output = Result<ChatResponse, ModelError>> + Send + 'a>>;

/// A chat model with tool calling.
pub trait ModelProvider: Send + Sync {
    /// A short name for logs and errors (`openai:gpt-4o-mini`).
    fn name(&self) -> String;
    /// Runs one model turn; text deltas go to `deltas` as they arrive.
    fn complete<'a>(&'a self, request: &'a ChatRequest, deltas: Option<Deltas>) -> ModelFuture<'a>;
}
