//! API keys: minted, listed and revoked with a dashboard session. The plaintext key is in
//! the create response and nowhere else, ever.

use crate::platform::request::Request;

use crate::auth::api_key;
use crate::auth::model::{ApiKey, CreatedApiKey, NewApiKey};
use crate::http::context::{Ctx, Principal};
use crate::http::error::ApiError;
use crate::http::reply::Reply;
use crate::limits::client as limits;
use crate::platform::crypto::random_bytes;
use crate::platform::ids;
use crate::platform::request::json_body;
use crate::platform::time;

const DAY_MS: i64 = 86_400_000;

pub async fn create(ctx: &Ctx, caller: &Principal, req: &mut Request) -> Result<Reply, ApiError> {
    let input = NewApiKey::try_from(&json_body(req).await?)?;
    let secret = loop {
        // Rejection sampling can in theory run short of bytes; draw again if so.
        if let Some(k) = api_key::generate(&random_bytes::<{ api_key::RANDOM_BYTES }>()) {
            break k;
        }
    };
    let key = ApiKey {
        id: ids::prefixed("key", &random_bytes::<24>()),
        user_id: caller.user_id().to_owned(),
        name: input.name,
        scope: input.scope,
        prefix: api_key::display_prefix(&secret),
        created_at: time::rfc3339_ms(ctx.now_ms),
        expires_at: input
            .expires_in_days
            .map(|d| time::rfc3339_ms(ctx.now_ms + d * DAY_MS)),
        last_used_at: None,
        revoked_at: None,
        end_user_limits: None,
    };
    let max = ctx.config.spend.max_api_keys;
    let stored = ctx
        .store()?
        .insert_api_key(&key, &api_key::hash(&secret), max)
        .await?;
    if !stored {
        return Err(ApiError::ApiKeyLimitReached { limit: max });
    }
    Reply::created(CreatedApiKey {
        api_key: &key,
        key: &secret,
    })
}

pub async fn list(ctx: &Ctx, caller: &Principal) -> Result<Reply, ApiError> {
    Reply::ok(ctx.store()?.api_keys_of(caller.user_id()).await?)
}

/// `PATCH /auth/api-keys/{id}` `{endUserLimits: {messagesPerHour?, tokensPerDay?} | null}`:
/// the key's limits per end user, in force from its next request (its object re-reads it).
pub async fn update(
    ctx: &Ctx,
    caller: &Principal,
    id: &str,
    req: &mut crate::platform::request::Request,
) -> Result<Reply, ApiError> {
    let body = crate::platform::request::json_body(req).await?;
    let Some(limits) = body.get("endUserLimits") else {
        return Err(ApiError::field(
            "endUserLimits",
            "is required: {messagesPerHour?, tokensPerDay?}, or null to clear them",
        ));
    };
    let limits = crate::spend::model::EndUserLimits::parse(limits)?;
    let updated = ctx
        .store()?
        .set_end_user_limits(caller.user_id(), id, limits.as_ref())
        .await?;
    let (key, key_hash) = updated.ok_or(ApiError::NotFound("API key"))?;
    limits::forget_key(&ctx.env, &key_hash).await?;
    Reply::ok(key)
}

pub async fn revoke(ctx: &Ctx, caller: &Principal, id: &str) -> Result<Reply, ApiError> {
    let now = time::rfc3339_ms(ctx.now_ms);
    let revoked = ctx
        .store()?
        .revoke_api_key(caller.user_id(), id, &now)
        .await?;
    let (key, key_hash) = revoked.ok_or(ApiError::NotFound("API key"))?;
    // Before answering, so the very next request with this key is refused everywhere.
    limits::forget_key(&ctx.env, &key_hash).await?;
    Reply::ok(key)
}
