//! Conversations and their messages, always filtered by the owning user in SQL.

use serde::Deserialize;

use worker::wasm_bindgen::JsValue;
use worker::D1PreparedStatement;

use super::{n, opt, s, Listing, Store};
use crate::core::chat::Turn;
use crate::core::error::ApiError;

#[derive(Debug, Clone, Deserialize)]
pub struct ConversationRow {
    pub id: String,
    pub user_id: String,
    pub twin_id: String,
    pub title: String,
    pub message_count: i64,
    pub created_at: String,
    pub updated_at: String,
    pub last_message_at: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ChatContext {
    pub system_prompt: String,
    pub model: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct MessageRow {
    pub id: String,
    pub conversation_id: String,
    pub role: String,
    pub content: String,
    pub status: String,
    pub model: Option<String>,
    pub prompt_tokens: Option<i64>,
    pub completion_tokens: Option<i64>,
    pub total_tokens: Option<i64>,
    pub latency_ms: Option<i64>,
    pub created_at: String,
}

const CONVERSATION_COLUMNS: &str =
    "id, user_id, twin_id, title, message_count, created_at, updated_at, last_message_at";
pub(crate) const MESSAGE_COLUMNS: &str = "id, conversation_id, role, content, status, model, prompt_tokens, completion_tokens, total_tokens, latency_ms, created_at";

impl Store {
    pub async fn insert_conversation(&self, c: &ConversationRow) -> Result<(), ApiError> {
        self.run(
            "INSERT INTO conversations (id, user_id, twin_id, title, message_count, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, 0, ?5, ?5)",
            &[s(&c.id), s(&c.user_id), s(&c.twin_id), s(&c.title), s(&c.created_at)],
        )
        .await
        .map(|_| ())
    }

    /// Newest activity first.
    pub async fn conversations_of(
        &self,
        user_id: &str,
        twin_id: Option<&str>,
        limit: u64,
        offset: u64,
    ) -> Result<(Vec<ConversationRow>, u64), ApiError> {
        let (filter, args) = match twin_id {
            Some(t) => ("user_id = ?1 AND twin_id = ?2", vec![s(user_id), s(t)]),
            None => ("user_id = ?1", vec![s(user_id)]),
        };
        let list = Listing {
            table: "conversations",
            columns: CONVERSATION_COLUMNS,
            filter,
            order: "updated_at DESC, rowid DESC",
        };
        self.page(list, &args, limit, offset).await
    }

    pub async fn conversation(
        &self,
        user_id: &str,
        id: &str,
    ) -> Result<Option<ConversationRow>, ApiError> {
        let sql = format!(
            "SELECT {CONVERSATION_COLUMNS} FROM conversations WHERE id = ?1 AND user_id = ?2"
        );
        self.first(&sql, &[s(id), s(user_id)]).await
    }

    pub async fn rename_conversation(
        &self,
        user_id: &str,
        id: &str,
        title: &str,
        now: &str,
    ) -> Result<Option<ConversationRow>, ApiError> {
        let changed = self
            .run(
                "UPDATE conversations SET title = ?3, updated_at = ?4 WHERE id = ?1 AND user_id = ?2",
                &[s(id), s(user_id), s(title), s(now)],
            )
            .await?;
        if changed == 0 {
            return Ok(None);
        }
        self.conversation(user_id, id).await
    }

    /// Deletes the conversation and (by cascade) its messages.
    pub async fn delete_conversation(&self, user_id: &str, id: &str) -> Result<bool, ApiError> {
        let changed = self
            .run(
                "DELETE FROM conversations WHERE id = ?1 AND user_id = ?2",
                &[s(id), s(user_id)],
            )
            .await?;
        Ok(changed > 0)
    }

    /// History, oldest first; rowid breaks ties within one millisecond.
    pub async fn messages_of(
        &self,
        user_id: &str,
        conversation_id: &str,
        limit: u64,
        offset: u64,
    ) -> Result<(Vec<MessageRow>, u64), ApiError> {
        let list = Listing {
            table: "messages",
            columns: MESSAGE_COLUMNS,
            filter: "conversation_id = ?1 AND user_id = ?2",
            order: "created_at, rowid",
        };
        self.page(list, &[s(conversation_id), s(user_id)], limit, offset)
            .await
    }
}

/// The user owns the conversation and can still see its twin (`?1` user, `?3` conversation).
const CAN_CHAT: &str = "EXISTS (SELECT 1 FROM conversations c JOIN twins t ON t.id = c.twin_id \
     WHERE c.id = ?3 AND c.user_id = ?1 AND (t.visibility = 'public' OR t.owner_id = ?1))";

impl Store {
    /// Opens a turn in one round trip and one transaction: reads the twin's persona and the
    /// history, and stores the user's message — the insert guarded in SQL by the same rule as
    /// the read, so nothing is stored for a conversation the user cannot chat in. `None` then.
    pub async fn open_turn(
        &self,
        user_id: &str,
        question: &MessageRow,
        history_rows: u64,
    ) -> Result<Option<(ChatContext, Vec<Turn>)>, ApiError> {
        #[derive(Deserialize)]
        struct Row {
            role: String,
            content: String,
        }
        let conversation = &question.conversation_id;
        let context = self.stmt(
            "SELECT t.system_prompt, t.model FROM conversations c JOIN twins t ON t.id = c.twin_id \
             WHERE c.id = ?1 AND c.user_id = ?2 AND (t.visibility = 'public' OR t.owner_id = ?2)",
            &[s(conversation), s(user_id)],
        )?;
        let history = self.stmt(
            "SELECT role, content FROM messages WHERE conversation_id = ?1 AND user_id = ?2 AND status != 'failed' \
             ORDER BY created_at DESC, rowid DESC LIMIT ?3",
            &[s(conversation), s(user_id), n(history_rows as i64)],
        )?;
        let [insert, bump] = self.message_statements(user_id, question, Some(CAN_CHAT))?;
        let results = self.batch(vec![context, history, insert, bump]).await?;
        let Some(context) = results[0]
            .results::<ChatContext>()
            .map_err(super::d1_err)?
            .into_iter()
            .next()
        else {
            return Ok(None);
        };
        let rows: Vec<Row> = results[1].results().map_err(super::d1_err)?;
        let turns = rows
            .into_iter()
            .rev()
            .map(|r| Turn {
                role: r.role,
                content: r.content,
            })
            .collect();
        Ok(Some((context, turns)))
    }

    /// Stores a message and moves the conversation's counters, in one transaction.
    pub async fn add_message(&self, user_id: &str, m: &MessageRow) -> Result<(), ApiError> {
        self.batch(self.message_statements(user_id, m, None)?.into())
            .await
            .map(|_| ())
    }

    /// The insert and the counter update for a message, optionally both guarded by `condition`.
    fn message_statements(
        &self,
        user_id: &str,
        m: &MessageRow,
        condition: Option<&str>,
    ) -> Result<[D1PreparedStatement; 2], ApiError> {
        let usage = |v: Option<i64>| v.map_or(JsValue::NULL, n);
        let guard = condition.map(|c| format!(" WHERE {c}")).unwrap_or_default();
        let insert = self.stmt(
            &format!(
                "INSERT INTO messages (user_id, {MESSAGE_COLUMNS}) \
                 SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12{guard}"
            ),
            &[
                s(user_id),
                s(&m.id),
                s(&m.conversation_id),
                s(&m.role),
                s(&m.content),
                s(&m.status),
                opt(m.model.as_deref()),
                usage(m.prompt_tokens),
                usage(m.completion_tokens),
                usage(m.total_tokens),
                usage(m.latency_ms),
                s(&m.created_at),
            ],
        )?;
        let guard = condition.map(|c| format!(" AND {c}")).unwrap_or_default();
        let bump = self.stmt(
            &format!(
                "UPDATE conversations SET message_count = message_count + 1, last_message_at = ?4, updated_at = ?4 \
                 WHERE id = ?3 AND user_id = ?1{guard}"
            ),
            &[s(user_id), s(&m.id), s(&m.conversation_id), s(&m.created_at)],
        )?;
        Ok([insert, bump])
    }
}
