//! Conversations and their messages, always filtered by the owning user in SQL.

use serde::Deserialize;

use worker::wasm_bindgen::JsValue;

use super::{n, opt, s, Store};
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
        let next = args.len() + 1;
        let count = format!("SELECT COUNT(*) AS n FROM conversations WHERE {filter}");
        let page = format!(
            "SELECT {CONVERSATION_COLUMNS} FROM conversations WHERE {filter} ORDER BY updated_at DESC, rowid DESC LIMIT ?{next} OFFSET ?{}",
            next + 1
        );
        self.page(&count, &page, &args, limit, offset).await
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
        let filter = "conversation_id = ?1 AND user_id = ?2";
        let count = format!("SELECT COUNT(*) AS n FROM messages WHERE {filter}");
        let page = format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE {filter} ORDER BY created_at, rowid LIMIT ?3 OFFSET ?4"
        );
        self.page(
            &count,
            &page,
            &[s(conversation_id), s(user_id)],
            limit,
            offset,
        )
        .await
    }
}

impl Store {
    /// The conversation's recent turns, oldest first (failed replies left out).
    pub async fn recent_turns(
        &self,
        user_id: &str,
        conversation_id: &str,
        limit: u64,
    ) -> Result<Vec<Turn>, ApiError> {
        #[derive(Deserialize)]
        struct Row {
            role: String,
            content: String,
        }
        let rows: Vec<Row> = self
            .all(
                "SELECT role, content FROM messages WHERE conversation_id = ?1 AND user_id = ?2 AND status != 'failed' ORDER BY created_at DESC, rowid DESC LIMIT ?3",
                &[s(conversation_id), s(user_id), n(limit as i64)],
            )
            .await?;
        Ok(rows
            .into_iter()
            .rev()
            .map(|r| Turn {
                role: r.role,
                content: r.content,
            })
            .collect())
    }

    /// Stores a message and moves the conversation's counters, in one transaction.
    pub async fn add_message(&self, user_id: &str, m: &MessageRow) -> Result<(), ApiError> {
        let usage = |v: Option<i64>| v.map_or(JsValue::NULL, n);
        let insert = self.stmt(
            &format!("INSERT INTO messages (user_id, {MESSAGE_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"),
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
        let bump = self.stmt(
            "UPDATE conversations SET message_count = message_count + 1, last_message_at = ?3, updated_at = ?3 WHERE id = ?1 AND user_id = ?2",
            &[s(&m.conversation_id), s(user_id), s(&m.created_at)],
        )?;
        self.batch(vec![insert, bump]).await.map(|_| ())
    }
}
