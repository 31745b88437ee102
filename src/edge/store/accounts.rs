//! Users and API keys.

use serde::Deserialize;

use super::{is_unique_violation, n, opt, s, Store};
use crate::core::api_key::KeyRecord;
use crate::core::credentials::Scope;
use crate::core::error::ApiError;
use crate::core::time;

#[derive(Debug, Clone, Deserialize)]
pub struct UserRow {
    pub id: String,
    pub email: String,
    pub name: String,
    pub password_hash: String,
    pub created_at: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ApiKeyRow {
    pub id: String,
    pub user_id: String,
    pub name: String,
    pub scope: String,
    pub prefix: String,
    pub created_at: String,
    pub expires_at: Option<String>,
    pub last_used_at: Option<String>,
    pub revoked_at: Option<String>,
}

const USER_COLUMNS: &str = "id, email, name, password_hash, created_at";
const KEY_COLUMNS: &str =
    "id, user_id, name, scope, prefix, created_at, expires_at, last_used_at, revoked_at";

impl Store {
    pub async fn insert_user(&self, user: &UserRow) -> Result<(), ApiError> {
        let res = self
            .run(
                "INSERT INTO users (id, email, name, password_hash, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
                &[s(&user.id), s(&user.email), s(&user.name), s(&user.password_hash), s(&user.created_at)],
            )
            .await;
        match res {
            Err(e) if is_unique_violation(&e) => Err(ApiError::Conflict(
                "An account with this email already exists".into(),
            )),
            other => other.map(|_| ()),
        }
    }

    pub async fn user_by_email(&self, email: &str) -> Result<Option<UserRow>, ApiError> {
        self.first(
            &format!("SELECT {USER_COLUMNS} FROM users WHERE email = ?1"),
            &[s(email)],
        )
        .await
    }

    pub async fn user_by_id(&self, id: &str) -> Result<Option<UserRow>, ApiError> {
        self.first(
            &format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?1"),
            &[s(id)],
        )
        .await
    }

    /// Stores a new key unless the user already has `max_active` active (not revoked, not
    /// expired) keys: one conditional statement, exact under concurrency. False when refused.
    pub async fn insert_api_key(
        &self,
        key: &ApiKeyRow,
        key_hash: &str,
        max_active: u64,
    ) -> Result<bool, ApiError> {
        self.run(
            "INSERT INTO api_keys (id, user_id, name, scope, key_hash, prefix, created_at, expires_at) \
             SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8 WHERE (SELECT COUNT(*) FROM api_keys WHERE user_id = ?2 \
               AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?7)) < ?9",
            &[
                s(&key.id),
                s(&key.user_id),
                s(&key.name),
                s(&key.scope),
                s(key_hash),
                s(&key.prefix),
                s(&key.created_at),
                opt(key.expires_at.as_deref()),
                n(max_active as i64),
            ],
        )
        .await
        .map(|changed| changed > 0)
    }

    pub async fn api_keys_of(&self, user_id: &str) -> Result<Vec<ApiKeyRow>, ApiError> {
        let sql = format!(
            "SELECT {KEY_COLUMNS} FROM api_keys WHERE user_id = ?1 ORDER BY created_at DESC, rowid DESC"
        );
        self.all(&sql, &[s(user_id)]).await
    }

    /// Whether a key with this hash was ever issued (revoked and expired ones included).
    pub async fn key_exists(&self, key_hash: &str) -> Result<bool, ApiError> {
        #[derive(serde::Deserialize)]
        struct One {}
        Ok(self
            .first::<One>(
                "SELECT 1 AS found FROM api_keys WHERE key_hash = ?1",
                &[s(key_hash)],
            )
            .await?
            .is_some())
    }

    pub async fn key_record_by_hash(&self, key_hash: &str) -> Result<Option<KeyRecord>, ApiError> {
        let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE key_hash = ?1");
        let Some(row) = self.first::<ApiKeyRow>(&sql, &[s(key_hash)]).await? else {
            return Ok(None);
        };
        let scope = Scope::parse(&row.scope)
            .ok_or_else(|| ApiError::internal("unknown scope in api_keys"))?;
        Ok(Some(KeyRecord {
            id: row.id,
            user_id: row.user_id,
            name: row.name,
            scope,
            expires_at_ms: row.expires_at.as_deref().and_then(time::parse_rfc3339_ms),
            revoked: row.revoked_at.is_some(),
        }))
    }

    /// Revokes one of the user's own keys. Returns the key and its hash (to address its
    /// Durable Object), or `None` when the user has no such key.
    pub async fn revoke_api_key(
        &self,
        user_id: &str,
        key_id: &str,
        now: &str,
    ) -> Result<Option<(ApiKeyRow, String)>, ApiError> {
        #[derive(Deserialize)]
        struct Hash {
            key_hash: String,
        }
        self.run(
            "UPDATE api_keys SET revoked_at = ?3 WHERE id = ?1 AND user_id = ?2 AND revoked_at IS NULL",
            &[s(key_id), s(user_id), s(now)],
        )
        .await?;
        let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE id = ?1 AND user_id = ?2");
        let Some(row) = self
            .first::<ApiKeyRow>(&sql, &[s(key_id), s(user_id)])
            .await?
        else {
            return Ok(None);
        };
        let hash: Option<Hash> = self
            .first(
                "SELECT key_hash FROM api_keys WHERE id = ?1 AND user_id = ?2",
                &[s(key_id), s(user_id)],
            )
            .await?;
        Ok(hash.map(|h| (row, h.key_hash)))
    }

    pub async fn touch_api_key(&self, key_id: &str, now: &str) -> Result<(), ApiError> {
        self.run(
            "UPDATE api_keys SET last_used_at = ?2 WHERE id = ?1",
            &[s(key_id), s(now)],
        )
        .await
        .map(|_| ())
    }
}
