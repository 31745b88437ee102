//! The Worker's (and the conversation objects') calls to an account's object.

use worker::Env;

use crate::accounts::model::{Accounts, Admission, Op};
use crate::http::error::ApiError;
use crate::platform::instance::Instance;
use crate::platform::object::DoClient;
use crate::spend::model::{TurnUsage, UsageDelta, UsageQuery};

async fn call<T: serde::de::DeserializeOwned>(
    env: &Env,
    user_id: &str,
    op: &Op,
) -> Result<T, ApiError> {
    DoClient::<Accounts>::get(env, &Instance::Account { user_id })?
        .call(op)
        .await
}

/// Takes (or with `hold`, holds: `Op::Admit`) a generation slot for `lease` if one is free and
/// the account's tokens on `day` are under `quota`.
pub async fn admit(
    env: &Env,
    user_id: &str,
    lease: &str,
    (max, ttl_ms, hold): (u64, i64, bool),
    day: &str,
    quota: u64,
) -> Result<Admission, ApiError> {
    let op = Op::Admit {
        user_id: user_id.to_owned(),
        lease: lease.to_owned(),
        max,
        ttl_ms,
        day: day.to_owned(),
        quota,
        hold,
    };
    call(env, user_id, &op).await
}

/// See `Op::Confirm`.
pub async fn confirm(env: &Env, user_id: &str, lease: &str, ttl_ms: i64) -> Result<(), ApiError> {
    let op = Op::Confirm {
        lease: lease.to_owned(),
        ttl_ms,
    };
    call::<bool>(env, user_id, &op).await.map(|_| ())
}

/// See `Op::EndUserAdmit`.
pub async fn end_user_admit(env: &Env, user_id: &str, op: &Op) -> Result<bool, ApiError> {
    call(env, user_id, op).await
}

/// See `Op::ForgetEndUser`.
pub async fn forget_end_user(
    env: &Env,
    user_id: &str,
    end_user_id: &str,
    conversation_ids: Vec<String>,
) -> Result<serde_json::Value, ApiError> {
    let op = Op::ForgetEndUser {
        user_id: user_id.to_owned(),
        end_user_id: end_user_id.to_owned(),
        conversation_ids,
    };
    call(env, user_id, &op).await
}

pub async fn release(env: &Env, user_id: &str, lease: &str) -> Result<(), ApiError> {
    let op = Op::Release {
        lease: lease.to_owned(),
    };
    call::<bool>(env, user_id, &op).await.map(|_| ())
}

/// Adds `delta` to the usage of `usage`'s group on `day`, and gives `lease` back if given.
pub async fn record(
    env: &Env,
    lease: Option<String>,
    day: &str,
    usage: &TurnUsage,
    delta: UsageDelta,
    event: Option<String>,
) -> Result<(), ApiError> {
    let op = Op::Record {
        lease,
        day: day.to_owned(),
        usage: usage.clone(),
        delta,
        event,
    };
    call::<bool>(env, &usage.user_id, &op).await.map(|_| ())
}

pub async fn report(
    env: &Env,
    user_id: &str,
    api_key_id: Option<&str>,
    query: &UsageQuery,
) -> Result<serde_json::Value, ApiError> {
    let op = Op::Report {
        user_id: user_id.to_owned(),
        api_key_id: api_key_id.map(str::to_owned),
        query: query.clone(),
    };
    call(env, user_id, &op).await
}

/// Claims the account's Idempotency-Key `key` for a request with `fingerprint`: `None` when
/// this request now holds it, else the stored fingerprint and remembered response (if any).
pub async fn claim_key(
    env: &Env,
    user_id: &str,
    key: &str,
    fingerprint: &str,
    (lease_ms, retention_ms): (i64, i64),
) -> Result<Option<(String, Option<String>)>, ApiError> {
    let op = Op::ClaimKey {
        user_id: user_id.to_owned(),
        key: key.to_owned(),
        fingerprint: fingerprint.to_owned(),
        lease_ms,
        retention_ms,
    };
    // Read as a JSON value: a typed answer costs the API's wasm several KB.
    let held: serde_json::Value = call(env, user_id, &op).await?;
    Ok(held["fingerprint"].as_str().map(|f| {
        let response = held["response"].as_str().map(str::to_owned);
        (f.to_owned(), response)
    }))
}

/// Keeps `response` as what the request holding `key` answered.
pub async fn remember_key(
    env: &Env,
    user_id: &str,
    key: &str,
    response: String,
) -> Result<(), ApiError> {
    let op = Op::RememberKey {
        key: key.to_owned(),
        response,
    };
    call::<bool>(env, user_id, &op).await.map(|_| ())
}

/// Frees `key`: its request was refused before any work.
pub async fn release_key(env: &Env, user_id: &str, key: &str) -> Result<(), ApiError> {
    let op = Op::ReleaseKey {
        key: key.to_owned(),
    };
    call::<bool>(env, user_id, &op).await.map(|_| ())
}

/// A webhook route's call, answered by the account's object (`webhooks::handlers`).
pub async fn webhooks(
    env: &Env,
    user_id: &str,
    call: serde_json::Value,
) -> Result<crate::idempotency::model::Remembered, ApiError> {
    let op = Op::Webhooks {
        user_id: user_id.to_owned(),
        call,
    };
    self::call(env, user_id, &op).await
}
