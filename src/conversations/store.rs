//! Conversations, always filtered by the owning user in SQL.

use serde::Deserialize;

use crate::conversations::model::{Activity, Conversation};
use crate::http::cursor::{desc, Cursor};
use crate::platform::d1::params;
use crate::platform::d1::Store;
use crate::platform::d1::StoreResult;
use crate::platform::d1::{Listed, Listing};
use crate::twins::store::accessible;

/// What a turn in a conversation needs of its twin and row.
#[derive(Debug, Clone, Deserialize)]
pub struct ChatContext {
    pub system_prompt: String,
    pub model: Option<String>,
    pub twin_id: String,
    pub end_user_id: Option<String>,
    /// How many documents the twin has (its object is asked for passages only when any).
    pub knowledge_docs: u64,
}

const CONVERSATION_COLUMNS: &str =
    "id, user_id, twin_id, title, end_user_id, message_count, created_at, updated_at, last_message_at";

impl Store {
    pub async fn insert_conversation(&self, c: &Conversation) -> StoreResult<()> {
        self.run(
            "INSERT INTO conversations (id, user_id, twin_id, title, end_user_id, message_count, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?6, 0, ?5, ?5)",
            &params![c.id, c.user_id, c.twin_id, c.title, c.created_at, c.end_user_id],
        )
        .await
        .map(|_| ())
    }

    /// Newest activity first.
    pub async fn conversations_of(
        &self,
        user_id: &str,
        twin_id: Option<&str>,
        end_user_id: Option<&str>,
        limit: u64,
        offset: u64,
        cursor: Option<&Cursor>,
    ) -> StoreResult<Listed<Conversation>> {
        let (filter, args) = match (twin_id, end_user_id) {
            (Some(t), Some(e)) => (
                "user_id = ?1 AND twin_id = ?2 AND end_user_id = ?3",
                params![user_id, t, e].to_vec(),
            ),
            (Some(t), None) => (
                "user_id = ?1 AND twin_id = ?2",
                params![user_id, t].to_vec(),
            ),
            (None, Some(e)) => (
                "user_id = ?1 AND end_user_id = ?2",
                params![user_id, e].to_vec(),
            ),
            (None, None) => ("user_id = ?1", params![user_id].to_vec()),
        };
        let list = Listing {
            table: "conversations",
            columns: CONVERSATION_COLUMNS,
            filter,
            keys: &[desc("updated_at"), desc("rowid")],
        };
        self.page(list, &args, limit, offset, cursor).await
    }

    pub async fn conversation(&self, user_id: &str, id: &str) -> StoreResult<Option<Conversation>> {
        let sql = format!(
            "SELECT {CONVERSATION_COLUMNS} FROM conversations WHERE id = ?1 AND user_id = ?2"
        );
        self.first(&sql, &params![id, user_id]).await
    }

    /// One statement; `None` when the user has no such conversation.
    pub async fn rename_conversation(
        &self,
        user_id: &str,
        id: &str,
        title: &str,
        now: &str,
    ) -> StoreResult<Option<Conversation>> {
        let sql = format!(
            "UPDATE conversations SET title = ?3, updated_at = ?4 WHERE id = ?1 AND user_id = ?2 \
             RETURNING {CONVERSATION_COLUMNS}"
        );
        self.first(&sql, &params![id, user_id, title, now]).await
    }

    /// Deletes the conversation row (its object's storage is wiped first by the caller).
    pub async fn delete_conversation(&self, user_id: &str, id: &str) -> StoreResult<bool> {
        let changed = self
            .run(
                "DELETE FROM conversations WHERE id = ?1 AND user_id = ?2",
                &params![id, user_id],
            )
            .await?;
        Ok(changed > 0)
    }

    /// An end user's conversations: `{id, twin_id}` rows.
    pub async fn end_user_conversations(
        &self,
        user_id: &str,
        end_user_id: &str,
    ) -> StoreResult<Vec<serde_json::Value>> {
        self.all(
            "SELECT id, twin_id FROM conversations WHERE user_id = ?1 AND end_user_id = ?2",
            &params![user_id, end_user_id],
        )
        .await
    }

    /// Removes an end user's conversation rows and merges their usage rows from before the
    /// account objects into the unattributed ones (the object imports them as they are then).
    pub async fn erase_end_user(&self, user_id: &str, end_user_id: &str) -> StoreResult<usize> {
        let args = params![user_id, end_user_id];
        let deleted = self
            .run(
                "DELETE FROM conversations WHERE user_id = ?1 AND end_user_id = ?2",
                &args,
            )
            .await?;
        self.batch(vec![
            self.stmt(
                &format!("INSERT INTO usage_daily (user_id, day, api_key_id, twin_id, end_user_id, requests, \
                   prompt_tokens, completion_tokens, total_tokens, estimated_tokens) \
                 SELECT user_id, day, api_key_id, twin_id, '', requests, prompt_tokens, \
                   completion_tokens, total_tokens, estimated_tokens FROM usage_daily \
                 WHERE user_id = ?1 AND end_user_id = ?2 \
                 ON CONFLICT (user_id, day, api_key_id, twin_id, end_user_id) DO UPDATE SET {}",
                    crate::spend::model::ADD_COUNTS
                ),
                &args,
            )?,
            self.stmt(
                "DELETE FROM usage_daily WHERE user_id = ?1 AND end_user_id = ?2",
                &args,
            )?,
        ])
        .await?;
        Ok(deleted)
    }

    /// What a turn in this conversation needs, in one query: the persona and model, if the
    /// user owns the conversation and can still see its twin.
    pub async fn chat_context(
        &self,
        user_id: &str,
        conversation_id: &str,
    ) -> StoreResult<Option<ChatContext>> {
        self.first(
            &format!(
                "SELECT t.system_prompt, t.model, c.twin_id, c.end_user_id, t.knowledge_docs \
                 FROM conversations c JOIN twins t ON t.id = c.twin_id \
                 WHERE c.id = ?1 AND c.user_id = ?2 AND {}",
                accessible("t", "?2")
            ),
            &params![conversation_id, user_id],
        )
        .await
    }

    /// The row follows its object's activity (written by the object, at most once per
    /// `ROW_FLUSH_MS`): the exact count and the last message's time, never moved back.
    pub async fn record_activity(&self, conversation_id: &str, a: &Activity) -> StoreResult<()> {
        self.run(
            "UPDATE conversations SET message_count = ?2, \
               last_message_at = MAX(COALESCE(last_message_at, ''), ?3), \
               updated_at = MAX(updated_at, ?3) WHERE id = ?1",
            &params![conversation_id, a.message_count, &a.last_message_at],
        )
        .await
        .map(|_| ())
    }
}
