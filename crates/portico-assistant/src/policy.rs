//! The tool policy: read-only tools run on their own, others wait for the user's approval
//! (`assistant.toolApproval`); an approval the user asked to remember holds only while the
//! tool's definition stays the same.

use portico_store::Store;
use portico_store::sqlx;

use crate::config::ToolApproval;
use crate::{AssistantError, now_ms};

/// What to do with a tool call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Run it.
    Run,
    /// Ask the user first, saying why.
    Ask(String),
}

/// Decides per call, and remembers approvals.
#[derive(Debug, Clone)]
pub struct Policy {
    store: Store,
    mode: ToolApproval,
}

impl Policy {
    /// A policy in `mode`, remembering approvals in `store`.
    pub fn new(store: Store, mode: ToolApproval) -> Self {
        Self { store, mode }
    }

    /// Whether `user` must approve a call of `tool` on `server`.
    pub async fn decide(
        &self,
        user: &str,
        server: &str,
        tool: &str,
        read_only: bool,
        definition_hash: &str,
    ) -> Result<Decision, AssistantError> {
        let reason = match self.mode {
            ToolApproval::Never => return Ok(Decision::Run),
            ToolApproval::Writes if read_only => return Ok(Decision::Run),
            ToolApproval::Writes => "this tool is not marked read-only, so it may change things",
            ToolApproval::Always => {
                "every tool call needs your approval (assistant.toolApproval: always)"
            }
        };
        let remembered: Option<(String,)> = sqlx::query_as(
            "SELECT definition_hash FROM assistant_approvals WHERE user_ref = $1 AND server_ref = $2 AND tool = $3",
        )
        .bind(user)
        .bind(server)
        .bind(tool)
        .fetch_optional(self.store.pool())
        .await?;
        Ok(match remembered {
            Some((hash,)) if hash == definition_hash => Decision::Run,
            Some(_) => Decision::Ask(format!(
                "{reason}; its definition changed since you approved it"
            )),
            None => Decision::Ask(reason.to_string()),
        })
    }

    /// Remembers that `user` approved `tool` as currently defined.
    pub async fn remember(
        &self,
        user: &str,
        server: &str,
        tool: &str,
        definition_hash: &str,
    ) -> Result<(), AssistantError> {
        let mut tx = self.store.begin_write().await?;
        sqlx::query(
            "INSERT INTO assistant_approvals (user_ref, server_ref, tool, definition_hash, created_at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (user_ref, server_ref, tool) DO UPDATE SET definition_hash = excluded.definition_hash, created_at = excluded.created_at",
        )
        .bind(user)
        .bind(server)
        .bind(tool)
        .bind(definition_hash)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }
}
