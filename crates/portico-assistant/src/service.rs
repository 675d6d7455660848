//! The assistant service: the pieces wired together once, shared by the HTTP layer.

use std::sync::Arc;

use portico_auth::Auth;
use portico_catalog::service::Catalog;
use portico_mcp::McpTools;
use portico_store::Store;

use crate::audit::Audit;
use crate::config::AssistantConfig;
use crate::conversations::Conversations;
use crate::enablement::Enablement;
use crate::events::EventLog;
use crate::model::ModelProvider;
use crate::run::{Runner, RunnerParts};

/// What the assistant is built from.
pub struct AssistantParts {
    /// Storage.
    pub store: Store,
    /// The catalog (its MCP servers).
    pub catalog: Catalog,
    /// Auth (sign-in state for servers).
    pub auth: Auth,
    /// The MCP client pool, with the credential source behind it.
    pub tools: Arc<dyn McpTools>,
    /// The model, when one is configured.
    pub model: Option<Arc<dyn ModelProvider>>,
    /// `assistant.*`.
    pub config: AssistantConfig,
}

/// The assistant.
#[derive(Clone, Debug)]
pub struct Assistant {
    /// Conversations.
    pub conversations: Conversations,
    /// Enabled servers.
    pub enablement: Enablement,
    /// Runs.
    pub runs: Runner,
    /// The audit trail.
    pub audit: Audit,
}

impl Assistant {
    /// Wires the assistant.
    pub fn new(parts: AssistantParts) -> Self {
        let conversations = Conversations::new(parts.store.clone());
        let enablement = Enablement::new(parts.store.clone(), parts.catalog, parts.auth);
        let audit = Audit::new(parts.store.clone());
        let runs = Runner::new(RunnerParts {
            events: EventLog::new(parts.store.clone()),
            store: parts.store,
            conversations: conversations.clone(),
            enablement: enablement.clone(),
            tools: parts.tools,
            model: parts.model,
            config: parts.config,
            audit: audit.clone(),
        });
        Self {
            conversations,
            enablement,
            runs,
            audit,
        }
    }
}
