//! Conversations and their messages, always filtered by the owning user in SQL.

use serde::Deserialize;

use super::{n, opt, s, Listing, Store};
use crate::core::error::ApiError;
use crate::core::knowledge::{self, Source};

#[derive(Debug, Clone, Deserialize)]
pub struct ConversationRow {
    pub id: String,
    pub user_id: String,
    pub twin_id: String,
    pub title: String,
    pub end_user_id: Option<String>,
    pub message_count: i64,
    pub created_at: String,
    pub updated_at: String,
    pub last_message_at: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ChatContext {
    pub system_prompt: String,
    pub model: Option<String>,
    pub twin_id: String,
    pub end_user_id: Option<String>,
}

const CONVERSATION_COLUMNS: &str =
    "id, user_id, twin_id, title, end_user_id, message_count, created_at, updated_at, last_message_at";

impl Store {
    pub async fn insert_conversation(&self, c: &ConversationRow) -> Result<(), ApiError> {
        self.run(
            "INSERT INTO conversations (id, user_id, twin_id, title, end_user_id, message_count, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?6, 0, ?5, ?5)",
            &[s(&c.id), s(&c.user_id), s(&c.twin_id), s(&c.title), s(&c.created_at), opt(c.end_user_id.as_deref())],
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
    ) -> Result<(Vec<ConversationRow>, u64), ApiError> {
        let (filter, args) = match (twin_id, end_user_id) {
            (Some(t), Some(e)) => (
                "user_id = ?1 AND twin_id = ?2 AND end_user_id = ?3",
                vec![s(user_id), s(t), s(e)],
            ),
            (Some(t), None) => ("user_id = ?1 AND twin_id = ?2", vec![s(user_id), s(t)]),
            (None, Some(e)) => ("user_id = ?1 AND end_user_id = ?2", vec![s(user_id), s(e)]),
            (None, None) => ("user_id = ?1", vec![s(user_id)]),
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

    /// Deletes the conversation row (its object's storage is wiped first by the caller).
    pub async fn delete_conversation(&self, user_id: &str, id: &str) -> Result<bool, ApiError> {
        let changed = self
            .run(
                "DELETE FROM conversations WHERE id = ?1 AND user_id = ?2",
                &[s(id), s(user_id)],
            )
            .await?;
        Ok(changed > 0)
    }
}

impl Store {
    /// What a turn in this conversation needs, in one round trip: the persona and model (if
    /// the user owns the conversation and can still see its twin) and the account's tokens
    /// used on `day` (for the daily quota).
    pub async fn chat_context(
        &self,
        user_id: &str,
        conversation_id: &str,
        day: &str,
        message: &str,
    ) -> Result<Option<((ChatContext, Vec<Source>), u64)>, ApiError> {
        let retrieval = knowledge::fts_query(message)
            .map(|q| {
                self.retrieval(
                    &q,
                    "SELECT twin_id FROM conversations WHERE id = ?2 AND user_id = ?3",
                    &[s(conversation_id), s(user_id)],
                )
            })
            .transpose()?;
        let context = self.stmt(
            "SELECT t.system_prompt, t.model, c.twin_id, c.end_user_id FROM conversations c JOIN twins t ON t.id = c.twin_id \
             WHERE c.id = ?1 AND c.user_id = ?2 AND t.deleted_at IS NULL \
               AND (t.visibility = 'public' OR t.owner_id = ?2)",
            &[s(conversation_id), s(user_id)],
        )?;
        self.with_usage(context, user_id, day, retrieval).await
    }

    /// A turn started (`added` messages) or ended: the row's counters and activity time.
    pub async fn touch_conversation(
        &self,
        conversation_id: &str,
        added: i64,
        at: &str,
    ) -> Result<(), ApiError> {
        let last_message = if added > 0 {
            ", last_message_at = ?3"
        } else {
            ""
        };
        self.run(
            &format!(
                "UPDATE conversations SET message_count = message_count + ?2, updated_at = ?3{last_message} WHERE id = ?1"
            ),
            &[s(conversation_id), n(added), s(at)],
        )
        .await
        .map(|_| ())
    }
}
