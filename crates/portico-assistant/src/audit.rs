//! The audit trail: one record per tool call (user, server, tool, a digest of the arguments with
//! secrets redacted, the decision, duration and outcome), readable by admins.

use portico_store::Store;
use portico_store::sqlx;
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::{AssistantError, now_ms};

/// One audited tool call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditRecord {
    /// Who.
    pub user_ref: String,
    /// In which run.
    pub run_id: String,
    /// Which server.
    pub server_ref: String,
    /// Which tool.
    pub tool: String,
    /// SHA-256 of the arguments, secrets redacted first.
    pub arguments_digest: String,
    /// `auto`, `approved`, `denied`.
    pub decision: String,
    /// How long the call took.
    pub duration_ms: i64,
    /// `ok`, `error: …`, `not run`.
    pub outcome: String,
    /// When (milliseconds since the epoch).
    pub created_at: i64,
}

/// Writes and reads audit records.
#[derive(Debug, Clone)]
pub struct Audit {
    store: Store,
}

/// Argument keys whose values are never kept, even digested with the rest.
fn secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    [
        "token",
        "secret",
        "password",
        "passwd",
        "apikey",
        "api_key",
        "authorization",
        "credential",
        "cookie",
        "private",
    ]
    .iter()
    .any(|s| k.contains(s))
}

fn redact(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let v = if secret_key(k) {
                        Value::String("[redacted]".into())
                    } else {
                        redact(v)
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(redact).collect()),
        other => other.clone(),
    }
}

/// The digest of `arguments` with secret-looking values redacted.
pub fn arguments_digest(arguments: &Value) -> String {
    let digest = Sha256::digest(redact(arguments).to_string().as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

impl Audit {
    /// Records kept in `store`.
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// Writes one record.
    pub async fn record(&self, record: &AuditRecord) -> Result<(), AssistantError> {
        let mut tx = self.store.begin_write().await?;
        sqlx::query(
            "INSERT INTO assistant_audit (id, user_ref, run_id, server_ref, tool, arguments_digest, decision, duration_ms, outcome, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(&record.user_ref)
        .bind(&record.run_id)
        .bind(&record.server_ref)
        .bind(&record.tool)
        .bind(&record.arguments_digest)
        .bind(&record.decision)
        .bind(record.duration_ms)
        .bind(&record.outcome)
        .bind(if record.created_at == 0 { now_ms() } else { record.created_at })
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The newest records, optionally of one user.
    pub async fn list(
        &self,
        user: Option<&str>,
        limit: i64,
    ) -> Result<Vec<AuditRecord>, AssistantError> {
        type Row = (
            String,
            String,
            String,
            String,
            String,
            String,
            i64,
            String,
            i64,
        );
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT user_ref, run_id, server_ref, tool, arguments_digest, decision, duration_ms, outcome, created_at
             FROM assistant_audit WHERE ($1 = '' OR user_ref = $1) ORDER BY created_at DESC LIMIT $2",
        )
        .bind(user.unwrap_or(""))
        .bind(limit)
        .fetch_all(self.store.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(
                |(
                    user_ref,
                    run_id,
                    server_ref,
                    tool,
                    arguments_digest,
                    decision,
                    duration_ms,
                    outcome,
                    created_at,
                )| AuditRecord {
                    user_ref,
                    run_id,
                    server_ref,
                    tool,
                    arguments_digest,
                    decision,
                    duration_ms,
                    outcome,
                    created_at,
                },
            )
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_do_not_reach_the_digest() {
        let a = serde_json::json!({"repo": "x", "apiToken": "one", "nested": [{"password": "p1"}]});
        let b = serde_json::json!({"repo": "x", "apiToken": "two", "nested": [{"password": "p2"}]});
        let c = serde_json::json!({"repo": "y", "apiToken": "one", "nested": [{"password": "p1"}]});
        assert_eq!(arguments_digest(&a), arguments_digest(&b));
        assert_ne!(arguments_digest(&a), arguments_digest(&c));
        assert_eq!(arguments_digest(&a).len(), 64);
    }
}
