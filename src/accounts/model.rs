//! The account object's protocol: what the Worker and the conversation objects ask of an
//! account's cell, and what it answers.

use serde::{Deserialize, Serialize};

use crate::spend::model::{TurnUsage, UsageDelta, UsageQuery};

#[derive(Serialize, Deserialize)]
// Externally tagged (serde's default): internally tagged enums cost the wasm several KB each.
#[serde(rename_all = "camelCase")]
pub enum Op {
    /// Take one of `max` generation slots for `ttl_ms` (a lease: a slot whose release is lost
    /// frees itself), if the account's tokens on `day` are under `quota` (0: no quota).
    /// `hold`: taken before the caller's verdict is known, so only held in the object's memory
    /// (nothing stored) until `Confirm`; a `Release` or its short `ttl_ms` frees it.
    #[serde(rename_all = "camelCase")]
    Admit {
        user_id: String,
        lease: String,
        max: u64,
        ttl_ms: i64,
        day: String,
        quota: u64,
        #[serde(default)]
        hold: bool,
    },
    /// A held slot's generation started: keep it for `ttl_ms`, stored. A slot no longer held
    /// (its generation already ended, or the object restarted) is left alone.
    #[serde(rename_all = "camelCase")]
    Confirm { lease: String, ttl_ms: i64 },
    /// Give a slot back.
    Release { lease: String },
    /// Add `delta` to the usage group of `usage` on `day` (a reservation at admission, or a
    /// generation's end, which also gives its slot back).
    Record {
        lease: Option<String>,
        day: String,
        usage: TurnUsage,
        delta: UsageDelta,
        /// The webhook event the generation's end emits, as JSON text (`{type, message,
        /// twinId, endUserId, settings}`), if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        event: Option<String>,
    },
    /// The usage report (`api_key_id`: only that key's own usage). Answers `{"rows": [the
    /// rows of spend::model::usage_row], "totals": UsageCounts}`, passed through as JSON.
    #[serde(rename_all = "camelCase")]
    Report {
        user_id: String,
        api_key_id: Option<String>,
        query: UsageQuery,
    },
    /// Claim an `Idempotency-Key` (docs/idempotency.md) for a request with this fingerprint,
    /// now; held for `lease_ms` until its response is remembered, kept `retention_ms`.
    /// Answers `null` when this request now holds it, else the record that holds it:
    /// `{"fingerprint": …, "response": the remembered text or null}`.
    #[serde(rename_all = "camelCase")]
    ClaimKey {
        user_id: String,
        key: String,
        fingerprint: String,
        lease_ms: i64,
        retention_ms: i64,
    },
    /// Keep the response (a serialized `idempotency::model::Remembered`) of the key's request.
    RememberKey { key: String, response: String },
    /// Free a key whose request was refused before any work (nothing remembered).
    ReleaseKey { key: String },
    /// A webhook route's call (`webhooks::handlers`): `{action, id, deliveryId, body, query,
    /// settings}`. Answers `{status, data}` or `{error: {status, code, message, details}}`.
    #[serde(rename_all = "camelCase")]
    Webhooks {
        user_id: String,
        call: serde_json::Value,
    },
    /// An end user's generation under a `tokensPerDay` of `limit`: admitted (`true`) if their
    /// recorded tokens on `day` and the holds of their running generations are under it; then
    /// `hold` tokens (the most it may use) are held for `lease` until its usage is recorded or
    /// it is released (at most `ttl_ms`).
    #[serde(rename_all = "camelCase")]
    EndUserAdmit {
        lease: String,
        day: String,
        end_user_id: String,
        limit: u64,
        hold: u64,
        ttl_ms: i64,
    },
    /// Try a webhook delivery now if it is due (the queue's consumer asks).
    Deliver { delivery_id: String },
    /// An end user's erasure (SPEC §19): their usage rows merged into the account's
    /// unattributed ones (totals unchanged), and the webhook deliveries and remembered
    /// `Idempotency-Key` responses that carry their conversations removed. Answers
    /// `{usageRows, webhookDeliveries, idempotencyKeys}`.
    #[serde(rename_all = "camelCase")]
    ForgetEndUser {
        user_id: String,
        end_user_id: String,
        conversation_ids: Vec<String>,
    },
}

/// The answer to `Admit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Admission {
    Admitted,
    /// Every slot is taken: retry after this many seconds.
    #[serde(rename_all = "camelCase")]
    Busy {
        retry_after: u64,
    },
    /// The day's tokens are at or over the quota.
    OverQuota,
}

/// The protocol of `accounts::object::Account`, for `platform::object::DoClient`.
#[cfg(target_arch = "wasm32")]
pub struct Accounts;

#[cfg(target_arch = "wasm32")]
impl crate::platform::object::Protocol for Accounts {
    const CLASS: crate::platform::instance::Class = crate::platform::instance::Class::Accounts;
    type Op = Op;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ops_and_answers_cross_the_boundary_as_compact_json() {
        let op = Op::Release {
            lease: "gen_1".into(),
        };
        let text = serde_json::to_string(&op).unwrap();
        assert_eq!(text, r#"{"release":{"lease":"gen_1"}}"#);
        let busy = serde_json::to_string(&Admission::Busy { retry_after: 2 }).unwrap();
        assert_eq!(busy, r#"{"busy":{"retryAfter":2}}"#);
        assert_eq!(
            serde_json::from_str::<Admission>(r#""overQuota""#).unwrap(),
            Admission::OverQuota
        );
    }
}
