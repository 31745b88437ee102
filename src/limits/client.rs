//! The Worker's calls to the limits object.

use worker::js_sys::Promise;
use worker::wasm_bindgen::prelude::*;
use worker::wasm_bindgen_futures::JsFuture;
use worker::Env;

use crate::http::error::ApiError;
use crate::limits::protocol::{generations_instance, key_instance, KeyAdmission, Op, Slot};
use crate::limits::rate_limit::{Decision, Policy};

#[wasm_bindgen(wasm_bindgen = ::worker::wasm_bindgen)]
extern "C" {
    /// A stub of the limits object, seen through its RPC method (limits::object).
    type LimiterStub;

    #[wasm_bindgen(method, js_name = call)]
    fn call(this: &LimiterStub, op: &str) -> Promise;
}

async fn call<T: serde::de::DeserializeOwned>(
    env: &Env,
    name: &str,
    op: &Op,
) -> Result<T, ApiError> {
    let fail = |e: worker::Error| ApiError::internal(format!("rate limiter: {e}"));
    let stub: LimiterStub = env
        .durable_object("RATE_LIMITER")
        .map_err(fail)?
        .get_by_name(name)
        .map_err(fail)?
        .into_rpc();
    let body = serde_json::to_string(op).map_err(ApiError::internal)?;
    let answer = JsFuture::from(stub.call(&body))
        .await
        .map_err(|e| fail(e.into()))?;
    let text = answer
        .as_string()
        .ok_or_else(|| ApiError::internal("rate limiter: a non-text answer"))?;
    serde_json::from_str(&text).map_err(ApiError::internal)
}

/// Counts one request for `name` (a session user or a client IP).
pub async fn limit(env: &Env, name: &str, policy: Policy) -> Result<Decision, ApiError> {
    call(env, name, &Op::Limit { policy }).await
}

/// What counting one more for `name` would decide, counting nothing.
pub async fn peek(env: &Env, name: &str, policy: Policy) -> Result<Decision, ApiError> {
    call(env, name, &Op::Peek { policy }).await
}

/// Gives back one request counted by `limit` for `name`.
pub async fn refund(env: &Env, name: &str, policy: Policy) -> Result<(), ApiError> {
    call::<bool>(env, name, &Op::Refund { policy })
        .await
        .map(|_| ())
}

/// Verifies a key by its hash and counts the request against the policy of its scope, in one
/// round trip.
pub async fn admit_key(
    env: &Env,
    key_hash: &str,
    read_only: Policy,
    full_access: Policy,
) -> Result<KeyAdmission, ApiError> {
    let op = Op::Key {
        key_hash: key_hash.to_owned(),
        read_only,
        full_access,
    };
    call(env, &key_instance(key_hash), &op).await
}

/// Makes the key's instance forget its record, so the next request sees the revocation.
pub async fn forget_key(env: &Env, key_hash: &str) -> Result<(), ApiError> {
    call::<bool>(env, &key_instance(key_hash), &Op::Revoke)
        .await
        .map(|_| ())
}

/// Takes a generation slot of the account for `lease`; `Some(retry_after)` when none is free.
pub async fn acquire_generation(
    env: &Env,
    user_id: &str,
    lease: &str,
    max: u64,
    ttl_ms: i64,
) -> Result<Option<u64>, ApiError> {
    let op = Op::Acquire {
        lease: lease.to_owned(),
        max,
        ttl_ms,
    };
    let slot: Slot = call(env, &generations_instance(user_id), &op).await?;
    Ok((!slot.acquired).then_some(slot.retry_after))
}

pub async fn release_generation(env: &Env, user_id: &str, lease: &str) -> Result<(), ApiError> {
    let op = Op::Release {
        lease: lease.to_owned(),
    };
    call::<bool>(env, &generations_instance(user_id), &op)
        .await
        .map(|_| ())
}
