//! Idempotency-Key records in D1, scoped to the account. A claim is one conditional write.

use serde::Deserialize;
use serde_json::Value;

use crate::platform::d1::params;

use crate::platform::d1::Store;

use crate::idempotency::model::{self as idempotency, Claim, Remembered};
use crate::platform::d1::StoreResult;

/// Expired rows removed per claim: cleanup is spread over the writes that need it.
const CLEANUP_BATCH: i64 = 50;

impl Store {
    /// Claims `key` for this request, or reports what holds it. The insert succeeds, or the
    /// upsert takes over a record that expired or whose request died, in one statement: two
    /// requests racing for a key cannot both win.
    pub async fn claim_idempotency_key(
        &self,
        user_id: &str,
        key: &str,
        fingerprint: &str,
        now_ms: i64,
    ) -> StoreResult<Claim> {
        #[derive(Deserialize)]
        struct Held {
            fingerprint: String,
            response: Option<String>,
        }
        let cleanup = self.stmt(
            "DELETE FROM idempotency_keys WHERE (user_id, key) IN \
             (SELECT user_id, key FROM idempotency_keys WHERE expires_at < ?1 ORDER BY expires_at LIMIT ?2)",
            &params![now_ms, CLEANUP_BATCH],
        )?;
        let claim = self.stmt(
            "INSERT INTO idempotency_keys (user_id, key, fingerprint, response, created_at, lease_until, expires_at) \
             VALUES (?1, ?2, ?3, NULL, ?4, ?5, ?6) \
             ON CONFLICT (user_id, key) DO UPDATE SET fingerprint = excluded.fingerprint, response = NULL, \
               created_at = excluded.created_at, lease_until = excluded.lease_until, expires_at = excluded.expires_at \
             WHERE idempotency_keys.expires_at < ?4 \
                OR (idempotency_keys.response IS NULL AND idempotency_keys.lease_until < ?4) \
             RETURNING 1 AS claimed",
            &params![
                user_id,
                key,
                fingerprint,
                now_ms,
                now_ms + idempotency::LEASE_MS,
                now_ms + idempotency::RETENTION_MS,
            ],
        )?;
        let held = self.stmt(
            "SELECT fingerprint, response FROM idempotency_keys WHERE user_id = ?1 AND key = ?2",
            &params![user_id, key],
        )?;
        let results = self.batch(vec![cleanup, claim, held]).await?;
        if !results[1].results::<Value>()?.is_empty() {
            return Ok(Claim::Fresh);
        }
        let Some(held) = results[2].results::<Held>()?.into_iter().next() else {
            // Claimed and released by another request between our two statements cannot
            // happen inside one batch; treat it as busy to be safe.
            return Ok(Claim::InUse);
        };
        Ok(idempotency::decide(
            fingerprint,
            &held.fingerprint,
            held.response.as_deref(),
        ))
    }

    /// Stores the response of the request that holds `key`.
    pub async fn remember_response(
        &self,
        user_id: &str,
        key: &str,
        response: &Remembered,
    ) -> StoreResult<()> {
        let text = serde_json::to_string(response)?;
        self.run(
            "UPDATE idempotency_keys SET response = ?3 WHERE user_id = ?1 AND key = ?2",
            &params![user_id, key, &text],
        )
        .await
        .map(|_| ())
    }

    /// Frees `key`: its request was refused before any work.
    pub async fn release_idempotency_key(&self, user_id: &str, key: &str) -> StoreResult<()> {
        self.run(
            "DELETE FROM idempotency_keys WHERE user_id = ?1 AND key = ?2 AND response IS NULL",
            &params![user_id, key],
        )
        .await
        .map(|_| ())
    }
}
