//! Runs: the agent loop. The tool set is the user's enabled, available servers (the built-in
//! actions among them); the model picks tools; read-only calls run at once and together, others
//! wait for approval; a server that needs a sign-in makes the run wait. Waiting is durable: the
//! run's state is stored, and whichever replica receives the approval (or the sign-in) claims the
//! run and drives it on. Every event is stored before anyone sees it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use portico_mcp::{
    CancellationToken, CredentialError, ExposedTool, McpError, McpTools, ServerSpec,
};
use portico_store::Store;
use portico_store::sqlx;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use crate::audit::{Audit, AuditRecord, arguments_digest};
use crate::config::AssistantConfig;
use crate::conversations::{Conversations, within_budget};
use crate::enablement::{Enablement, KnownTools};
use crate::events::{EventLog, RunEvent};
use crate::model::{ChatRequest, Message, ModelError, ModelProvider, Role, ToolCall, ToolDef};
use crate::policy::{Decision, Policy};
use crate::retrieval;
use crate::{AssistantError, now_ms};

const SYSTEM_PROMPT: &str = "You are Portico, an assistant for a software catalog. Answer the user's question. When a tool can help, call it with precise arguments; prefer tools over guessing. Keep answers short and cite entity refs, file paths and links the tools return.";

/// Said when no model is installed or configured, so the assistant still answers something useful.
pub const NO_MODEL: &str = "No model is configured, so I cannot answer yet. Either install the embedded offline model with `portico model install` (about 1.1 GB; `--size 0.5b` for a smaller, less accurate one) and restart Portico, or set assistant.model in app-config.yaml to a remote model — for example provider: openai with baseUrl http://127.0.0.1:11434/v1 and model: qwen2.5 for a local Ollama, or provider: anthropic with an apiKey — and restart Portico.";

/// A tool call the run holds while it waits or runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct PendingCall {
    call_id: String,
    name: String,
    server: String,
    tool: String,
    arguments: Value,
    definition_hash: String,
    /// `None` while waiting for the user; `Some(true)` to run, `Some(false)` denied.
    decision: Option<bool>,
    /// Whether the user (not the policy) decided.
    asked: bool,
}

/// What a run needs to go on after a wait, on any replica.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct RunState {
    started: bool,
    step: u32,
    /// This run's part of the conversation so far (tool calls and their results).
    transcript: Vec<Message>,
    pending: Vec<PendingCall>,
    /// Providers the user must sign in to before the run goes on.
    waiting_for_login: Vec<String>,
}

/// A run as its owner sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunInfo {
    /// Its id.
    pub id: String,
    /// Its conversation.
    pub conversation_id: String,
    /// `running`, `waiting`, `completed`, `failed`, `cancelled`.
    pub status: String,
}

/// Drives runs.
#[derive(Clone)]
pub struct Runner {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    events: EventLog,
    conversations: Conversations,
    enablement: Enablement,
    tools: Arc<dyn McpTools>,
    model: Option<Arc<dyn ModelProvider>>,
    config: AssistantConfig,
    policy: Policy,
    audit: Audit,
    cancels: Mutex<HashMap<String, CancellationToken>>,
}

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Runner")
    }
}

/// What the runner is built from.
pub struct RunnerParts {
    /// Storage.
    pub store: Store,
    /// Run events.
    pub events: EventLog,
    /// Conversations.
    pub conversations: Conversations,
    /// Enabled servers.
    pub enablement: Enablement,
    /// The MCP client pool.
    pub tools: Arc<dyn McpTools>,
    /// The model, when configured.
    pub model: Option<Arc<dyn ModelProvider>>,
    /// `assistant.*`.
    pub config: AssistantConfig,
    /// The audit trail.
    pub audit: Audit,
}

fn definition_hash(tool: &ExposedTool) -> String {
    let json = serde_json::to_string(&tool.tool).unwrap_or_default();
    Sha256::digest(json.as_bytes())
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A short, plain description of a tool result, for the `tool.completed` event.
fn summarize(text: &str) -> String {
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() > 160 {
        format!("{}…", one_line.chars().take(160).collect::<String>())
    } else {
        one_line
    }
}

impl Runner {
    /// The model's short name (`embedded:…`, `openai:…`), or `None` when no model is set up.
    pub fn model_name(&self) -> Option<String> {
        self.inner.model.as_ref().map(|m| m.name())
    }

    /// A runner over its parts.
    pub fn new(parts: RunnerParts) -> Self {
        let policy = Policy::new(parts.store.clone(), parts.config.tool_approval);
        Self {
            inner: Arc::new(Inner {
                store: parts.store,
                events: parts.events,
                conversations: parts.conversations,
                enablement: parts.enablement,
                tools: parts.tools,
                model: parts.model,
                config: parts.config,
                policy,
                audit: parts.audit,
                cancels: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Starts a run answering `text` in one of `user`'s conversations; returns its id.
    pub async fn start(
        &self,
        user: &str,
        conversation_id: &str,
        text: &str,
    ) -> Result<RunInfo, AssistantError> {
        self.inner.conversations.get(user, conversation_id).await?;
        if text.trim().is_empty() {
            return Err(AssistantError::Input("the message is empty".into()));
        }
        self.inner
            .conversations
            .append(conversation_id, &[Message::text(Role::User, text)])
            .await?;
        let id = uuid::Uuid::new_v4().to_string();
        let now = now_ms();
        let state = serde_json::to_string(&RunState::default()).unwrap_or_default();
        let mut tx = self.inner.store.begin_write().await?;
        sqlx::query(
            "INSERT INTO assistant_runs (id, conversation_id, user_ref, status, state, created_at, updated_at)
             VALUES ($1, $2, $3, 'running', $4, $5, $5)",
        )
        .bind(&id)
        .bind(conversation_id)
        .bind(user)
        .bind(state)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.spawn(id.clone());
        Ok(RunInfo {
            id,
            conversation_id: conversation_id.to_string(),
            status: "running".into(),
        })
    }

    /// One of `user`'s runs; `NotFound` for anyone else's.
    pub async fn get(&self, user: &str, run_id: &str) -> Result<RunInfo, AssistantError> {
        let row: Option<(String, String)> = sqlx::query_as(
            "SELECT conversation_id, status FROM assistant_runs WHERE id = $1 AND user_ref = $2",
        )
        .bind(run_id)
        .bind(user)
        .fetch_optional(self.inner.store.pool())
        .await?;
        let (conversation_id, status) =
            row.ok_or_else(|| AssistantError::NotFound(format!("no run {run_id}")))?;
        Ok(RunInfo {
            id: run_id.to_string(),
            conversation_id,
            status,
        })
    }

    /// `user`'s runs of one conversation, oldest first: one per question asked, so a client can
    /// show each answer with its tool calls by replaying the run's events.
    pub async fn of_conversation(
        &self,
        user: &str,
        conversation_id: &str,
    ) -> Result<Vec<RunInfo>, AssistantError> {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT id, status FROM assistant_runs WHERE conversation_id = $1 AND user_ref = $2 \
             ORDER BY created_at, id",
        )
        .bind(conversation_id)
        .bind(user)
        .fetch_all(self.inner.store.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|(id, status)| RunInfo {
                id,
                conversation_id: conversation_id.to_string(),
                status,
            })
            .collect())
    }

    /// The event log (for streaming a run's events).
    pub fn events(&self) -> &EventLog {
        &self.inner.events
    }

    /// Records the user's decision on a waiting call and, once nothing waits, drives the run on.
    pub async fn decide(
        &self,
        user: &str,
        run_id: &str,
        call_id: &str,
        approve: bool,
        remember: bool,
    ) -> Result<(), AssistantError> {
        self.get(user, run_id).await?;
        let mut tx = self.inner.store.begin_write().await?;
        let row: Option<(String, String)> =
            sqlx::query_as("SELECT status, state FROM assistant_runs WHERE id = $1")
                .bind(run_id)
                .fetch_optional(&mut *tx)
                .await?;
        let (status, state) =
            row.ok_or_else(|| AssistantError::NotFound(format!("no run {run_id}")))?;
        if matches!(status.as_str(), "completed" | "failed" | "cancelled") {
            return Err(AssistantError::Input(format!(
                "run {run_id} has ended ({status})"
            )));
        }
        let mut state: RunState =
            serde_json::from_str(&state).map_err(|e| AssistantError::Corrupt(e.to_string()))?;
        let call = state
            .pending
            .iter_mut()
            .find(|c| c.call_id == call_id && c.decision.is_none())
            .ok_or_else(|| {
                AssistantError::NotFound(format!(
                    "no tool call {call_id} waits for approval in run {run_id}"
                ))
            })?;
        call.decision = Some(approve);
        let remembered = (approve && remember).then(|| {
            (
                call.server.clone(),
                call.tool.clone(),
                call.definition_hash.clone(),
            )
        });
        let ready = state.pending.iter().all(|c| c.decision.is_some())
            && state.waiting_for_login.is_empty();
        let new_status = if ready && status == "waiting" {
            "running"
        } else {
            status.as_str()
        };
        sqlx::query(
            "UPDATE assistant_runs SET state = $1, status = $2, updated_at = $3 WHERE id = $4",
        )
        .bind(serde_json::to_string(&state).unwrap_or_default())
        .bind(new_status)
        .bind(now_ms())
        .bind(run_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        if let Some((server, tool, hash)) = remembered {
            self.inner
                .policy
                .remember(user, &server, &tool, &hash)
                .await?;
        }
        if ready && status == "waiting" {
            self.spawn(run_id.to_string());
        }
        Ok(())
    }

    /// After `user` signed in somewhere: every run of theirs waiting for a sign-in goes on.
    pub async fn resume_after_login(&self, user: &str) -> Result<usize, AssistantError> {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT id, state FROM assistant_runs WHERE user_ref = $1 AND status = 'waiting'",
        )
        .bind(user)
        .fetch_all(self.inner.store.pool())
        .await?;
        let mut resumed = 0;
        for (id, state) in rows {
            let Ok(mut state) = serde_json::from_str::<RunState>(&state) else {
                continue;
            };
            if state.waiting_for_login.is_empty() {
                continue;
            }
            state.waiting_for_login.clear();
            if self.claim(&id, &state).await? {
                self.spawn(id);
                resumed += 1;
            }
        }
        Ok(resumed)
    }

    /// Stops one of `user`'s runs.
    pub async fn cancel(&self, user: &str, run_id: &str) -> Result<(), AssistantError> {
        let run = self.get(user, run_id).await?;
        if matches!(run.status.as_str(), "completed" | "failed" | "cancelled") {
            return Ok(());
        }
        if let Some(token) = self
            .inner
            .cancels
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(run_id)
        {
            token.cancel();
        }
        self.set_status(run_id, "cancelled").await?;
        self.emit(
            run_id,
            RunEvent::RunFailed {
                error: "cancelled by the user".into(),
            },
        )
        .await?;
        Ok(())
    }

    /// Takes a waiting run for this replica (only one replica wins).
    async fn claim(&self, run_id: &str, state: &RunState) -> Result<bool, AssistantError> {
        let mut tx = self.inner.store.begin_write().await?;
        let done = sqlx::query(
            "UPDATE assistant_runs SET status = 'running', state = $1, updated_at = $2 WHERE id = $3 AND status = 'waiting'",
        )
        .bind(serde_json::to_string(state).unwrap_or_default())
        .bind(now_ms())
        .bind(run_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    fn spawn(&self, run_id: String) {
        let runner = self.clone();
        let cancel = CancellationToken::new();
        self.inner
            .cancels
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(run_id.clone(), cancel.clone());
        tokio::spawn(async move {
            if let Err(e) = runner.drive(&run_id, &cancel).await {
                tracing::error!(run = %run_id, error = %e, "run failed");
                let _ = runner.set_status(&run_id, "failed").await;
                let _ = runner
                    .emit(
                        &run_id,
                        RunEvent::RunFailed {
                            error: e.to_string(),
                        },
                    )
                    .await;
            }
            runner
                .inner
                .cancels
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&run_id);
        });
    }

    async fn emit(&self, run_id: &str, event: RunEvent) -> Result<i64, AssistantError> {
        self.inner.events.append(run_id, &event).await
    }

    async fn set_status(&self, run_id: &str, status: &str) -> Result<(), AssistantError> {
        let mut tx = self.inner.store.begin_write().await?;
        sqlx::query("UPDATE assistant_runs SET status = $1, updated_at = $2 WHERE id = $3")
            .bind(status)
            .bind(now_ms())
            .bind(run_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn save(
        &self,
        run_id: &str,
        status: &str,
        state: &RunState,
    ) -> Result<(), AssistantError> {
        let mut tx = self.inner.store.begin_write().await?;
        sqlx::query(
            "UPDATE assistant_runs SET status = $1, state = $2, updated_at = $3 WHERE id = $4 AND status <> 'cancelled'",
        )
        .bind(status)
        .bind(serde_json::to_string(state).unwrap_or_default())
        .bind(now_ms())
        .bind(run_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn cancelled(&self, run_id: &str) -> Result<bool, AssistantError> {
        let (status,): (String,) =
            sqlx::query_as("SELECT status FROM assistant_runs WHERE id = $1")
                .bind(run_id)
                .fetch_one(self.inner.store.pool())
                .await?;
        Ok(status == "cancelled")
    }

    async fn finish(
        &self,
        run_id: &str,
        conversation: &str,
        state: &RunState,
        text: String,
    ) -> Result<(), AssistantError> {
        let mut messages = state.transcript.clone();
        messages.push(Message::text(Role::Assistant, text.clone()));
        self.inner
            .conversations
            .append(conversation, &messages)
            .await?;
        self.emit(run_id, RunEvent::MessageCompleted { text })
            .await?;
        self.save(run_id, "completed", state).await?;
        self.emit(run_id, RunEvent::RunCompleted {}).await?;
        Ok(())
    }

    async fn drive(&self, run_id: &str, cancel: &CancellationToken) -> Result<(), AssistantError> {
        let (user, conversation, state): (String, String, String) = sqlx::query_as(
            "SELECT user_ref, conversation_id, state FROM assistant_runs WHERE id = $1",
        )
        .bind(run_id)
        .fetch_one(self.inner.store.pool())
        .await?;
        let mut state: RunState =
            serde_json::from_str(&state).map_err(|e| AssistantError::Corrupt(e.to_string()))?;
        if !state.started {
            state.started = true;
            self.emit(run_id, RunEvent::RunStarted {}).await?;
        }
        let Some(model) = self.inner.model.clone() else {
            return self
                .finish(run_id, &conversation, &state, NO_MODEL.to_string())
                .await;
        };

        // The tool set: enabled, available servers; a server needing a sign-in stops the run
        // until the user has signed in.
        let servers = self.inner.enablement.enabled_servers(&user).await?;
        let specs: Vec<ServerSpec> = servers
            .iter()
            .filter_map(|s| {
                let transport = s.server.transport.as_ref()?;
                Some(ServerSpec {
                    id: s.entity_ref.clone(),
                    remote: portico_mcp::Remote {
                        transport: match transport.transport {
                            portico_catalog::Transport::StreamableHttp => {
                                portico_mcp::TransportKind::StreamableHttp
                            }
                            portico_catalog::Transport::Sse => portico_mcp::TransportKind::Sse,
                        },
                        url: transport.url.clone(),
                    },
                })
            })
            .collect();
        let listing = self.inner.tools.tools(&user, &specs, cancel).await;
        let mut logins = Vec::new();
        for (server, error) in &listing.failures {
            if let McpError::Credential(CredentialError::SignInRequired {
                provider,
                login_url,
                ..
            }) = error
            {
                if !logins
                    .iter()
                    .any(|(p, _, _): &(String, String, String)| p == provider)
                {
                    logins.push((provider.clone(), server.clone(), login_url.clone()));
                }
            } else {
                tracing::warn!(run = %run_id, server = %server, error = %error, "a server's tools could not be listed; the run goes on without them");
            }
        }
        if !logins.is_empty() {
            // Waiting is stored before anyone is told, so a sign-in that comes back at once
            // finds the run waiting.
            state.waiting_for_login = logins.iter().map(|(p, _, _)| p.clone()).collect();
            self.save(run_id, "waiting", &state).await?;
            for (provider, server, login_url) in logins {
                let event = RunEvent::AuthRequired {
                    server,
                    provider,
                    login_url,
                };
                self.emit(run_id, event).await?;
            }
            return Ok(());
        }
        let mut by_server: HashMap<&str, KnownTools> = HashMap::new();
        for t in &listing.tools {
            let known = by_server.entry(t.server.as_str()).or_default();
            known.count += 1;
            known.writes += usize::from(!t.tool.read_only);
        }
        for (server, known) in by_server {
            self.inner.enablement.learn(server, known);
        }

        let history = self.inner.conversations.messages(&conversation).await?;
        let question = history
            .iter()
            .rev()
            .find(|m| m.role == Role::User)
            .map(|m| m.content.clone())
            .unwrap_or_default();
        let docs: Vec<retrieval::ToolDoc> = listing
            .tools
            .iter()
            .map(|t| retrieval::ToolDoc {
                name: &t.name,
                description: t.tool.description.as_deref().unwrap_or(""),
                server: &t.server,
            })
            .collect();
        let chosen: Vec<&ExposedTool> =
            retrieval::select(&question, &docs, self.inner.config.max_tools)
                .into_iter()
                .map(|i| &listing.tools[i])
                .collect();
        if state.step == 0 && state.pending.is_empty() {
            let mut servers: Vec<String> = chosen.iter().map(|t| t.server.clone()).collect();
            servers.sort();
            servers.dedup();
            self.emit(
                run_id,
                RunEvent::ToolsSelected {
                    servers,
                    tools: chosen.iter().map(|t| t.name.clone()).collect(),
                },
            )
            .await?;
        }
        let defs: Vec<ToolDef> = chosen
            .iter()
            .map(|t| ToolDef {
                name: t.name.clone(),
                description: t
                    .tool
                    .description
                    .clone()
                    .unwrap_or_else(|| t.tool.name.clone()),
                parameters: t.tool.input_schema.clone(),
            })
            .collect();

        loop {
            if self.cancelled(run_id).await? {
                return Ok(());
            }
            if !state.pending.is_empty() {
                self.run_calls(run_id, &user, &mut state, cancel).await?;
                state.step += 1;
                self.save(run_id, "running", &state).await?;
            }
            if state.step >= self.inner.config.max_steps {
                let text = format!(
                    "I stopped after {} steps without a final answer; try a narrower question.",
                    state.step
                );
                return self.finish(run_id, &conversation, &state, text).await;
            }
            let mut messages = vec![Message::text(Role::System, SYSTEM_PROMPT)];
            messages.extend_from_slice(within_budget(&history, self.inner.config.history_tokens));
            messages.extend(state.transcript.iter().cloned());
            let request = ChatRequest {
                messages,
                tools: defs.clone(),
            };
            let (tx, mut rx) = mpsc::unbounded_channel::<String>();
            let forward = {
                let runner = self.clone();
                let run_id = run_id.to_string();
                tokio::spawn(async move {
                    while let Some(text) = rx.recv().await {
                        if !text.is_empty() {
                            let _ = runner.emit(&run_id, RunEvent::MessageDelta { text }).await;
                        }
                    }
                })
            };
            let response = tokio::select! {
                r = model.complete(&request, Some(tx)) => r,
                _ = cancel.cancelled() => Err(ModelError::Cancelled),
            };
            let _ = forward.await;
            let response = match response {
                Ok(r) => r,
                Err(ModelError::Cancelled) => return Ok(()),
                Err(e) => {
                    self.save(run_id, "failed", &state).await?;
                    self.emit(
                        run_id,
                        RunEvent::RunFailed {
                            error: e.to_string(),
                        },
                    )
                    .await?;
                    return Ok(());
                }
            };
            if response.tool_calls.is_empty() {
                return self
                    .finish(run_id, &conversation, &state, response.text)
                    .await;
            }
            let mut assistant = Message::text(Role::Assistant, response.text.clone());
            assistant.tool_calls = response.tool_calls.clone();
            state.transcript.push(assistant);
            let mut questions = Vec::new();
            for call in &response.tool_calls {
                let (pending, question) = self.plan(&user, call, &chosen).await?;
                questions.extend(question);
                state.pending.push(pending);
            }
            if !questions.is_empty() {
                // Stored as waiting before the questions go out, so an answer that comes back
                // at once (on any replica) finds the run waiting.
                self.save(run_id, "waiting", &state).await?;
                for question in questions {
                    self.emit(run_id, question).await?;
                }
                return Ok(());
            }
        }
    }

    /// Turns a model's tool call into a pending call, with the approval question to ask when the
    /// policy says so.
    async fn plan(
        &self,
        user: &str,
        call: &ToolCall,
        tools: &[&ExposedTool],
    ) -> Result<(PendingCall, Option<RunEvent>), AssistantError> {
        let Some(tool) = tools.iter().find(|t| t.name == call.name) else {
            let unknown = PendingCall {
                call_id: call.id.clone(),
                name: call.name.clone(),
                server: String::new(),
                tool: call.name.clone(),
                arguments: call.arguments.clone(),
                definition_hash: String::new(),
                decision: Some(false),
                asked: false,
            };
            return Ok((unknown, None));
        };
        let hash = definition_hash(tool);
        let decision = self
            .inner
            .policy
            .decide(
                user,
                &tool.server,
                &tool.tool.name,
                tool.tool.read_only,
                &hash,
            )
            .await?;
        let mut pending = PendingCall {
            call_id: call.id.clone(),
            name: call.name.clone(),
            server: tool.server.clone(),
            tool: tool.tool.name.clone(),
            arguments: call.arguments.clone(),
            definition_hash: hash,
            decision: Some(true),
            asked: false,
        };
        let Decision::Ask(reason) = decision else {
            return Ok((pending, None));
        };
        pending.decision = None;
        pending.asked = true;
        let question = RunEvent::ApprovalRequired {
            call_id: call.id.clone(),
            server: tool.server.clone(),
            tool: tool.tool.name.clone(),
            arguments: call.arguments.clone(),
            reason,
        };
        Ok((pending, Some(question)))
    }

    /// Runs every decided pending call (approved ones together), records the results.
    async fn run_calls(
        &self,
        run_id: &str,
        user: &str,
        state: &mut RunState,
        cancel: &CancellationToken,
    ) -> Result<(), AssistantError> {
        let pending = std::mem::take(&mut state.pending);
        let calls = pending
            .iter()
            .map(|call| self.run_call(run_id, user, call, cancel));
        let results = futures::future::join_all(calls).await;
        for (call, result) in pending.iter().zip(results) {
            state
                .transcript
                .push(Message::tool_result(&call.call_id, result?));
        }
        Ok(())
    }

    async fn run_call(
        &self,
        run_id: &str,
        user: &str,
        call: &PendingCall,
        cancel: &CancellationToken,
    ) -> Result<String, AssistantError> {
        let mut record = AuditRecord {
            user_ref: user.to_string(),
            run_id: run_id.to_string(),
            server_ref: call.server.clone(),
            tool: call.tool.clone(),
            arguments_digest: arguments_digest(&call.arguments),
            decision: match (call.asked, call.decision) {
                (_, Some(false)) => "denied",
                (true, _) => "approved",
                (false, _) => "auto",
            }
            .into(),
            duration_ms: 0,
            outcome: "not run".into(),
            created_at: 0,
        };
        if call.server.is_empty() {
            record.outcome = "unknown tool".into();
            self.inner.audit.record(&record).await?;
            let text = format!("There is no tool named {}.", call.name);
            self.emit(
                run_id,
                RunEvent::ToolStarted {
                    call_id: call.call_id.clone(),
                    server: String::new(),
                    tool: call.name.clone(),
                },
            )
            .await?;
            self.emit(
                run_id,
                RunEvent::ToolCompleted {
                    call_id: call.call_id.clone(),
                    ms: 0,
                    is_error: true,
                    summary: text.clone(),
                },
            )
            .await?;
            return Ok(text);
        }
        if call.decision != Some(true) {
            self.inner.audit.record(&record).await?;
            return Ok("The user denied this tool call; do not retry it.".into());
        }
        self.emit(
            run_id,
            RunEvent::ToolStarted {
                call_id: call.call_id.clone(),
                server: call.server.clone(),
                tool: call.tool.clone(),
            },
        )
        .await?;
        let (ptx, mut prx) = mpsc::unbounded_channel::<portico_mcp::Progress>();
        let forward = {
            let runner = self.clone();
            let run_id = run_id.to_string();
            let call_id = call.call_id.clone();
            tokio::spawn(async move {
                while let Some(p) = prx.recv().await {
                    let _ = runner
                        .emit(
                            &run_id,
                            RunEvent::ToolProgress {
                                call_id: call_id.clone(),
                                progress: p.progress,
                                total: p.total,
                                message: p.message,
                            },
                        )
                        .await;
                }
            })
        };
        let started = Instant::now();
        let arguments = call.arguments.as_object().cloned();
        let outcome = self
            .inner
            .tools
            .call(user, &call.name, arguments, Some(ptx), cancel)
            .await;
        let _ = forward.await;
        let ms = started.elapsed().as_millis() as u64;
        let (text, is_error) = match outcome {
            Ok(out) => {
                let text: String = out
                    .content
                    .iter()
                    .filter_map(|c| c.get("text").and_then(Value::as_str))
                    .collect::<Vec<_>>()
                    .join("\n");
                let text = if text.is_empty() {
                    out.structured.map(|s| s.to_string()).unwrap_or_default()
                } else {
                    text
                };
                (text, out.is_error)
            }
            Err(e) => (format!("The tool call failed: {e}"), true),
        };
        record.duration_ms = ms as i64;
        record.outcome = if is_error {
            format!("error: {}", summarize(&text))
        } else {
            "ok".into()
        };
        self.inner.audit.record(&record).await?;
        self.emit(
            run_id,
            RunEvent::ToolCompleted {
                call_id: call.call_id.clone(),
                ms,
                is_error,
                summary: summarize(&text),
            },
        )
        .await?;
        Ok(text)
    }
}
