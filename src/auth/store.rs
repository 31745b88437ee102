//! Users and API keys.

use serde::Deserialize;

use crate::platform::d1::params;

use crate::platform::d1::Store;

use crate::auth::api_key::KeyRecord;
use crate::auth::credentials::Scope;
use crate::auth::model::{Account, ApiKey, User};
use crate::http::error::StoreError;
use crate::platform::d1::StoreResult;
use crate::platform::time;

#[derive(Deserialize)]
struct UserRow {
    id: String,
    email: String,
    name: String,
    password_hash: String,
    created_at: String,
}

impl From<UserRow> for Account {
    fn from(r: UserRow) -> Account {
        Account {
            user: User {
                id: r.id,
                email: r.email,
                name: r.name,
                created_at: r.created_at,
            },
            password_hash: r.password_hash,
        }
    }
}

#[derive(Deserialize)]
struct ApiKeyRow {
    id: String,
    user_id: String,
    name: String,
    scope: String,
    prefix: String,
    created_at: String,
    expires_at: Option<String>,
    last_used_at: Option<String>,
    revoked_at: Option<String>,
    end_user_limits: Option<String>,
    /// Only where a statement asks for it (revocation addresses the key's object by it). A
    /// column here rather than a `#[serde(flatten)]` wrapper struct: 2.5 KB less gzip wasm.
    key_hash: Option<String>,
}

impl TryFrom<ApiKeyRow> for ApiKey {
    type Error = StoreError;

    fn try_from(r: ApiKeyRow) -> StoreResult<ApiKey> {
        Ok(ApiKey {
            scope: Scope::parse(&r.scope)
                .ok_or_else(|| StoreError::Failed(format!("unknown scope {:?}", r.scope)))?,
            id: r.id,
            user_id: r.user_id,
            name: r.name,
            prefix: r.prefix,
            created_at: r.created_at,
            expires_at: r.expires_at,
            last_used_at: r.last_used_at,
            revoked_at: r.revoked_at,
            end_user_limits: r
                .end_user_limits
                .and_then(|l| serde_json::from_str(&l).ok()),
        })
    }
}

const USER_COLUMNS: &str = "id, email, name, password_hash, created_at";
const KEY_COLUMNS: &str =
    "id, user_id, name, scope, prefix, created_at, expires_at, last_used_at, revoked_at, end_user_limits";

impl Store {
    /// `StoreError::Unique` on `users.email` when the email is taken.
    pub async fn insert_user(&self, a: &Account) -> StoreResult<()> {
        let u = &a.user;
        self.run(
            "INSERT INTO users (id, email, name, password_hash, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
            &params![u.id, u.email, u.name, a.password_hash, u.created_at],
        )
        .await
        .map(|_| ())
    }

    pub async fn account_by_email(&self, email: &str) -> StoreResult<Option<Account>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE email = ?1");
        let row = self.first::<UserRow>(&sql, &params![email]).await?;
        Ok(row.map(Account::from))
    }

    pub async fn user_by_id(&self, id: &str) -> StoreResult<Option<User>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?1");
        let row = self.first::<UserRow>(&sql, &params![id]).await?;
        Ok(row.map(|r| Account::from(r).user))
    }

    /// Stores a new key unless the user already has `max_active` active (not revoked, not
    /// expired) keys: one conditional statement, exact under concurrency. False when refused.
    pub async fn insert_api_key(
        &self,
        key: &ApiKey,
        key_hash: &str,
        max_active: u64,
    ) -> StoreResult<bool> {
        self.run(
            "INSERT INTO api_keys (id, user_id, name, scope, key_hash, prefix, created_at, expires_at) \
             SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8 WHERE (SELECT COUNT(*) FROM api_keys WHERE user_id = ?2 \
               AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?7)) < ?9",
            &params![
                key.id,
                key.user_id,
                key.name,
                key.scope.as_str(),
                key_hash,
                key.prefix,
                key.created_at,
                key.expires_at,
                max_active,
            ],
        )
        .await
        .map(|changed| changed > 0)
    }

    pub async fn api_keys_of(&self, user_id: &str) -> StoreResult<Vec<ApiKey>> {
        let sql = format!(
            "SELECT {KEY_COLUMNS} FROM api_keys WHERE user_id = ?1 ORDER BY created_at DESC, rowid DESC"
        );
        let rows: Vec<ApiKeyRow> = self.all(&sql, &params![user_id]).await?;
        rows.into_iter().map(ApiKey::try_from).collect()
    }

    /// Whether a key with this hash was ever issued (revoked and expired ones included).
    pub async fn key_exists(&self, key_hash: &str) -> StoreResult<bool> {
        #[derive(Deserialize)]
        struct One {}
        let found = self
            .first::<One>(
                "SELECT 1 AS found FROM api_keys WHERE key_hash = ?1",
                &params![key_hash],
            )
            .await?;
        Ok(found.is_some())
    }

    pub async fn key_record_by_hash(&self, key_hash: &str) -> StoreResult<Option<KeyRecord>> {
        let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE key_hash = ?1");
        let Some(row) = self.first::<ApiKeyRow>(&sql, &params![key_hash]).await? else {
            return Ok(None);
        };
        let key = ApiKey::try_from(row)?;
        Ok(Some(KeyRecord {
            expires_at_ms: key.expires_at.as_deref().and_then(time::parse_rfc3339_ms),
            revoked: key.revoked_at.is_some(),
            end_user_limits: key.end_user_limits,
            id: key.id,
            user_id: key.user_id,
            name: key.name,
            scope: key.scope,
        }))
    }

    /// Revokes one of the user's own keys (already revoked: left as it was), in one statement.
    /// Returns the key and its hash (to address its Durable Object), or `None` when the user
    /// has no such key.
    pub async fn revoke_api_key(
        &self,
        user_id: &str,
        key_id: &str,
        now: &str,
    ) -> StoreResult<Option<(ApiKey, String)>> {
        let sql = format!(
            "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?3) WHERE id = ?1 AND user_id = ?2 \
             RETURNING {KEY_COLUMNS}, key_hash"
        );
        self.key_with_hash(&sql, &params![key_id, user_id, now])
            .await
    }

    /// Sets (or clears) one of the user's keys' per-end-user limits; the key and its hash (its
    /// object must forget its cached record), `None` when the user has no such key.
    pub async fn set_end_user_limits(
        &self,
        user_id: &str,
        key_id: &str,
        limits: Option<&crate::spend::model::EndUserLimits>,
    ) -> StoreResult<Option<(ApiKey, String)>> {
        let json = limits.map(serde_json::to_string).transpose()?;
        let sql = format!(
            "UPDATE api_keys SET end_user_limits = ?3 WHERE id = ?1 AND user_id = ?2 \
             RETURNING {KEY_COLUMNS}, key_hash"
        );
        self.key_with_hash(&sql, &params![key_id, user_id, json])
            .await
    }

    /// The key an `UPDATE … RETURNING {KEY_COLUMNS}, key_hash` changed, and its hash (which
    /// addresses its Durable Object); `None` when it changed none.
    async fn key_with_hash(
        &self,
        sql: &str,
        args: &[worker::wasm_bindgen::JsValue],
    ) -> StoreResult<Option<(ApiKey, String)>> {
        let Some(mut row) = self.first::<ApiKeyRow>(sql, args).await? else {
            return Ok(None);
        };
        let key_hash = row
            .key_hash
            .take()
            .ok_or_else(|| StoreError::Failed("key row without its hash".into()))?;
        Ok(Some((ApiKey::try_from(row)?, key_hash)))
    }

    pub async fn touch_api_key(&self, key_id: &str, now: &str) -> StoreResult<()> {
        self.run(
            "UPDATE api_keys SET last_used_at = ?2 WHERE id = ?1",
            &params![key_id, now],
        )
        .await
        .map(|_| ())
    }
}
