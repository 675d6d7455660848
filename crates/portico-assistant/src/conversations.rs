//! Conversations and their messages, each owned by one user: another user's conversation does
//! not exist for them.

use portico_store::Store;
use portico_store::sqlx;
use serde::Serialize;

use crate::model::{Message, Role};
use crate::{AssistantError, now_ms};

/// A conversation as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Conversation {
    /// Its id.
    pub id: String,
    /// A title (the first question, shortened).
    pub title: String,
    /// Milliseconds since the epoch.
    pub created_at: i64,
    /// Milliseconds since the epoch of the last message.
    pub updated_at: i64,
}

/// Conversations in the store.
#[derive(Debug, Clone)]
pub struct Conversations {
    store: Store,
}

type Row = (String, String, i64, i64);

fn conversation((id, title, created_at, updated_at): Row) -> Conversation {
    Conversation {
        id,
        title,
        created_at,
        updated_at,
    }
}

impl Conversations {
    /// Conversations kept in `store`.
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// Starts a conversation for `user`.
    pub async fn create(&self, user: &str, title: &str) -> Result<Conversation, AssistantError> {
        let now = now_ms();
        let id = uuid::Uuid::new_v4().to_string();
        let title: String = title.chars().take(120).collect();
        let mut tx = self.store.begin_write().await?;
        sqlx::query(
            "INSERT INTO assistant_conversations (id, user_ref, title, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)",
        )
        .bind(&id)
        .bind(user)
        .bind(&title)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Conversation {
            id,
            title,
            created_at: now,
            updated_at: now,
        })
    }

    /// `user`'s conversations, newest first.
    pub async fn list(&self, user: &str) -> Result<Vec<Conversation>, AssistantError> {
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT id, title, created_at, updated_at FROM assistant_conversations WHERE user_ref = $1 ORDER BY updated_at DESC, id",
        )
        .bind(user)
        .fetch_all(self.store.pool())
        .await?;
        Ok(rows.into_iter().map(conversation).collect())
    }

    /// One of `user`'s conversations; `NotFound` for anyone else's.
    pub async fn get(&self, user: &str, id: &str) -> Result<Conversation, AssistantError> {
        let row: Option<Row> = sqlx::query_as(
            "SELECT id, title, created_at, updated_at FROM assistant_conversations WHERE id = $1 AND user_ref = $2",
        )
        .bind(id)
        .bind(user)
        .fetch_optional(self.store.pool())
        .await?;
        row.map(conversation)
            .ok_or_else(|| AssistantError::NotFound(format!("no conversation {id}")))
    }

    /// Deletes one of `user`'s conversations with its messages, runs and their events.
    pub async fn delete(&self, user: &str, id: &str) -> Result<(), AssistantError> {
        self.get(user, id).await?;
        let mut tx = self.store.begin_write().await?;
        for sql in [
            "DELETE FROM assistant_run_events WHERE run_id IN (SELECT id FROM assistant_runs WHERE conversation_id = $1)",
            "DELETE FROM assistant_runs WHERE conversation_id = $1",
            "DELETE FROM assistant_messages WHERE conversation_id = $1",
            "DELETE FROM assistant_conversations WHERE id = $1",
        ] {
            sqlx::query(sql).bind(id).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Appends messages to a conversation.
    pub async fn append(&self, id: &str, messages: &[Message]) -> Result<(), AssistantError> {
        let mut tx = self.store.begin_write().await?;
        let (last,): (Option<i64>,) =
            sqlx::query_as("SELECT MAX(seq) FROM assistant_messages WHERE conversation_id = $1")
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
        let mut seq = last.unwrap_or(0);
        let now = now_ms();
        for m in messages {
            seq += 1;
            let json =
                serde_json::to_string(m).map_err(|e| AssistantError::Corrupt(e.to_string()))?;
            sqlx::query(
                "INSERT INTO assistant_messages (conversation_id, seq, message, created_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(id)
            .bind(seq)
            .bind(json)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query("UPDATE assistant_conversations SET updated_at = $1 WHERE id = $2")
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Every message of a conversation, oldest first.
    pub async fn messages(&self, id: &str) -> Result<Vec<Message>, AssistantError> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT message FROM assistant_messages WHERE conversation_id = $1 ORDER BY seq",
        )
        .bind(id)
        .fetch_all(self.store.pool())
        .await?;
        rows.into_iter()
            .map(|(m,)| {
                serde_json::from_str(&m).map_err(|e| AssistantError::Corrupt(e.to_string()))
            })
            .collect()
    }
}

/// The most recent messages that fit in `budget` tokens (about four characters a token), never
/// starting with a tool result whose call was cut off.
pub fn within_budget(messages: &[Message], budget: usize) -> &[Message] {
    let mut used = 0;
    let mut start = messages.len();
    for (i, m) in messages.iter().enumerate().rev() {
        let cost = (m.content.len()
            + m.tool_calls
                .iter()
                .map(|c| c.name.len() + c.arguments.to_string().len())
                .sum::<usize>())
            / 4
            + 4;
        if used + cost > budget && start < messages.len() {
            break;
        }
        used += cost;
        start = i;
    }
    while start < messages.len() && messages[start].role == Role::Tool {
        start += 1;
    }
    &messages[start..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_keeps_the_newest_and_never_an_orphan_tool_result() {
        let long = "x".repeat(400);
        let messages = vec![
            Message::text(Role::User, long.clone()),
            Message::text(Role::Assistant, long.clone()),
            Message::tool_result("c1", long.clone()),
            Message::text(Role::User, "latest"),
        ];
        assert_eq!(within_budget(&messages, 10_000).len(), 4);
        let kept = within_budget(&messages, 150);
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].content, "latest");
        // Even a budget too small keeps the newest message.
        assert_eq!(within_budget(&messages, 0).len(), 1);
    }
}
