//! The Worker's calls to the limits object, through the typed client (`platform::object`).

use worker::Env;

use crate::http::error::ApiError;
use crate::limits::protocol::{KeyAdmission, Limits, Op};
use crate::limits::rate_limit::{Decision, Policy};
use crate::platform::instance::Instance;
use crate::platform::object::DoClient;

async fn call<T: serde::de::DeserializeOwned>(
    env: &Env,
    instance: Instance<'_>,
    op: &Op,
) -> Result<T, ApiError> {
    DoClient::<Limits>::get(env, &instance)?.call(op).await
}

/// Counts one request for `instance` (a session user, a client IP, a login email…).
pub async fn limit(
    env: &Env,
    instance: Instance<'_>,
    policy: Policy,
) -> Result<Decision, ApiError> {
    call(env, instance, &Op::Limit { policy }).await
}

/// What counting one more for `instance` would decide, counting nothing.
pub async fn peek(env: &Env, instance: Instance<'_>, policy: Policy) -> Result<Decision, ApiError> {
    call(env, instance, &Op::Peek { policy }).await
}

/// Gives back one request counted by `limit` for `instance`.
pub async fn refund(env: &Env, instance: Instance<'_>, policy: Policy) -> Result<(), ApiError> {
    call::<bool>(env, instance, &Op::Refund { policy })
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
    call(env, Instance::Key { hash: key_hash }, &op).await
}

/// Makes the key's instance forget its record, so the next request sees the revocation.
pub async fn forget_key(env: &Env, key_hash: &str) -> Result<(), ApiError> {
    call::<bool>(env, Instance::Key { hash: key_hash }, &Op::Revoke)
        .await
        .map(|_| ())
}
