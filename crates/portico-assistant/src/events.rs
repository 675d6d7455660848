//! Run events, one vocabulary for the UI, the terminal client, storage and tests (DESIGN §5).
//! Every event is stored with the next sequence number of its run before anyone is told of it,
//! so a client that reconnects with `Last-Event-ID` on any replica misses nothing and sees
//! nothing twice.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use portico_store::Store;
use portico_store::sqlx;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::Notify;

use crate::{AssistantError, now_ms};

/// One thing that happened in a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum RunEvent {
    /// The run began.
    #[serde(rename = "run.started")]
    RunStarted {},
    /// The servers and tools the model was given.
    #[serde(rename = "tools.selected")]
    ToolsSelected {
        /// Server entity refs.
        servers: Vec<String>,
        /// Model-safe tool names.
        tools: Vec<String>,
    },
    /// A server needs the user to sign in at a provider; the run waits.
    #[serde(rename = "auth.required")]
    AuthRequired {
        /// The server's entity ref.
        server: String,
        /// The provider id.
        provider: String,
        /// Where to start the sign-in.
        #[serde(rename = "loginUrl")]
        login_url: String,
    },
    /// A tool call waits for the user's approval.
    #[serde(rename = "approval.required")]
    ApprovalRequired {
        /// The call to approve.
        #[serde(rename = "callId")]
        call_id: String,
        /// The server's entity ref.
        server: String,
        /// The tool's own name.
        tool: String,
        /// The arguments the model chose.
        arguments: Value,
        /// Why approval is needed.
        reason: String,
    },
    /// A tool call started.
    #[serde(rename = "tool.started")]
    ToolStarted {
        /// The call.
        #[serde(rename = "callId")]
        call_id: String,
        /// The server's entity ref.
        server: String,
        /// The tool's own name.
        tool: String,
    },
    /// A tool reported progress.
    #[serde(rename = "tool.progress")]
    ToolProgress {
        /// The call.
        #[serde(rename = "callId")]
        call_id: String,
        /// Progress so far.
        progress: f64,
        /// Total, when known.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        total: Option<f64>,
        /// What it is doing.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        message: Option<String>,
    },
    /// A tool call ended.
    #[serde(rename = "tool.completed")]
    ToolCompleted {
        /// The call.
        #[serde(rename = "callId")]
        call_id: String,
        /// How long it took.
        ms: u64,
        /// Whether it failed.
        #[serde(rename = "isError")]
        is_error: bool,
        /// A short description of the result.
        summary: String,
    },
    /// Answer text as it streams.
    #[serde(rename = "message.delta")]
    MessageDelta {
        /// The new text.
        text: String,
    },
    /// The whole answer.
    #[serde(rename = "message.completed")]
    MessageCompleted {
        /// The answer.
        text: String,
    },
    /// The run ended well.
    #[serde(rename = "run.completed")]
    RunCompleted {},
    /// The run ended badly.
    #[serde(rename = "run.failed")]
    RunFailed {
        /// What went wrong, in plain words.
        error: String,
    },
}

impl RunEvent {
    /// The event's type name (`tool.started` …).
    pub fn kind(&self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.get("type").and_then(Value::as_str).map(str::to_string))
            .unwrap_or_default()
    }

    /// Whether the run ends with this event.
    pub fn is_terminal(&self) -> bool {
        matches!(self, RunEvent::RunCompleted {} | RunEvent::RunFailed { .. })
    }

    /// The event's data, without its type.
    pub fn data(&self) -> Value {
        let mut v = serde_json::to_value(self).unwrap_or(Value::Null);
        if let Some(map) = v.as_object_mut() {
            map.remove("type");
        }
        v
    }
}

/// A stored event: its run's sequence number and the event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredEvent {
    /// 1, 2, 3 … within the run; the SSE id.
    pub seq: i64,
    /// The event.
    #[serde(flatten)]
    pub event: RunEvent,
}

/// Per run in this process: who waits for its events, and the lock that orders its appends
/// (one replica runs a run at a time; its concurrent tool calls append through here).
#[derive(Default)]
struct Slot {
    notify: Arc<Notify>,
    append: tokio::sync::Mutex<()>,
}

/// Appends and reads run events; wakes local listeners when a run gets a new one.
#[derive(Clone)]
pub struct EventLog {
    store: Store,
    slots: Arc<Mutex<HashMap<String, Arc<Slot>>>>,
}

impl std::fmt::Debug for EventLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EventLog")
    }
}

impl EventLog {
    /// Events kept in `store`.
    pub fn new(store: Store) -> Self {
        Self {
            store,
            slots: Arc::default(),
        }
    }

    /// Stores `event` as the run's next one and wakes its listeners; returns its sequence.
    pub async fn append(&self, run_id: &str, event: &RunEvent) -> Result<i64, AssistantError> {
        let slot = self.slot(run_id);
        let _order = slot.append.lock().await;
        let mut tx = self.store.begin_write().await?;
        let (last,): (Option<i64>,) =
            sqlx::query_as("SELECT MAX(seq) FROM assistant_run_events WHERE run_id = $1")
                .bind(run_id)
                .fetch_one(&mut *tx)
                .await?;
        let seq = last.unwrap_or(0) + 1;
        sqlx::query(
            "INSERT INTO assistant_run_events (run_id, seq, type, data, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(run_id)
        .bind(seq)
        .bind(event.kind())
        .bind(event.data().to_string())
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        slot.notify.notify_waiters();
        Ok(seq)
    }

    /// The run's events after `after`, in order.
    pub async fn after(
        &self,
        run_id: &str,
        after: i64,
    ) -> Result<Vec<StoredEvent>, AssistantError> {
        let rows: Vec<(i64, String, String)> = sqlx::query_as(
            "SELECT seq, type, data FROM assistant_run_events WHERE run_id = $1 AND seq > $2 ORDER BY seq",
        )
        .bind(run_id)
        .bind(after)
        .fetch_all(self.store.pool())
        .await?;
        rows.into_iter()
            .map(|(seq, kind, data)| {
                let mut value: Value = serde_json::from_str(&data)
                    .map_err(|e| AssistantError::Corrupt(e.to_string()))?;
                if let Some(map) = value.as_object_mut() {
                    map.insert("type".into(), Value::String(kind));
                }
                let event = serde_json::from_value(value)
                    .map_err(|e| AssistantError::Corrupt(e.to_string()))?;
                Ok(StoredEvent { seq, event })
            })
            .collect()
    }

    /// Completes when this process next appends to the run (other replicas' appends are seen
    /// by polling [`EventLog::after`]). Call `enable()` on it before reading, so an append in
    /// between is not missed.
    pub fn changed(&self, run_id: &str) -> tokio::sync::futures::OwnedNotified {
        self.slot(run_id).notify.clone().notified_owned()
    }

    fn slot(&self, run_id: &str) -> Arc<Slot> {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots.retain(|_, s| Arc::strong_count(s) > 1 || Arc::strong_count(&s.notify) > 1);
        slots.entry(run_id.to_string()).or_default().clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_serialize_in_the_design_vocabulary() {
        let e = RunEvent::ToolCompleted {
            call_id: "c1".into(),
            ms: 12,
            is_error: false,
            summary: "ok".into(),
        };
        assert_eq!(e.kind(), "tool.completed");
        assert_eq!(
            e.data(),
            serde_json::json!({"callId": "c1", "ms": 12, "isError": false, "summary": "ok"})
        );
        let auth = RunEvent::AuthRequired {
            server: "api:default/github".into(),
            provider: "github".into(),
            login_url: "http://x/start".into(),
        };
        assert_eq!(auth.data()["loginUrl"], "http://x/start");
        assert!(RunEvent::RunCompleted {}.is_terminal());
        assert_eq!(RunEvent::RunStarted {}.data(), serde_json::json!({}));
    }
}
