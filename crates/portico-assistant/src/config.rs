//! `assistant.*` configuration.

use serde::{Deserialize, Serialize};

use crate::model::ModelConfig;

/// When a tool call needs the user's approval.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ToolApproval {
    /// Never ask: every tool runs on its own (the product page's behaviour).
    Never,
    /// Ask for tools not marked read-only.
    #[default]
    Writes,
    /// Ask for every tool.
    Always,
}

/// Everything under `assistant`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AssistantConfig {
    /// The model; with none, the assistant says how to configure one.
    #[serde(default)]
    pub model: ModelConfig,
    /// When tool calls need approval.
    #[serde(default)]
    pub tool_approval: ToolApproval,
    /// Model turns per run before it is stopped.
    pub max_steps: u32,
    /// Above this many tools, a retriever picks which ones the model sees.
    pub max_tools: usize,
    /// Conversation history given to the model, in (approximate) tokens.
    pub history_tokens: usize,
}

impl Default for AssistantConfig {
    fn default() -> Self {
        Self {
            model: ModelConfig::default(),
            tool_approval: ToolApproval::Writes,
            max_steps: 8,
            max_tools: 40,
            history_tokens: 6000,
        }
    }
}
