//! API keys: minted, listed and revoked with a dashboard session. The plaintext key is in
//! the create response and nowhere else, ever.

use serde_json::{json, Value};
use worker::Request;

use crate::core::api_key;
use crate::core::credentials::Scope;
use crate::core::error::ApiError;
use crate::core::validate::Fields;
use crate::core::{ids, time};
use crate::edge::config;
use crate::edge::context::{json_body, Ctx, Reply};
use crate::edge::crypto::random_bytes;
use crate::edge::rate_limiter;
use crate::edge::store::ApiKeyRow;

const DAY_MS: i64 = 86_400_000;

fn key_json(k: &ApiKeyRow) -> Value {
    json!({
        "id": k.id,
        "name": k.name,
        "scope": k.scope,
        "prefix": k.prefix,
        "createdAt": k.created_at,
        "expiresAt": k.expires_at,
        "lastUsedAt": k.last_used_at,
        "revokedAt": k.revoked_at,
    })
}

pub async fn create(ctx: &mut Ctx, req: &mut Request) -> Result<Reply, ApiError> {
    let body = json_body(req).await?;
    let mut f = Fields::new(&body);
    let name = f.string("name", 1, 100);
    let scope = f.one_of(
        "scope",
        &[Scope::ReadOnly.as_str(), Scope::FullAccess.as_str()],
    );
    let days = f.opt_int("expiresInDays", 1, 3650);
    f.finish()?;

    let key = loop {
        // Rejection sampling can in theory run short of bytes; draw again if so.
        if let Some(k) = api_key::generate(&random_bytes::<{ api_key::RANDOM_BYTES }>()) {
            break k;
        }
    };
    let row = ApiKeyRow {
        id: ids::prefixed("key", &random_bytes::<24>()),
        user_id: ctx.principal()?.user_id().to_owned(),
        name: name.unwrap_or_default(),
        scope: scope.unwrap_or_else(|| Scope::ReadOnly.as_str().to_owned()),
        prefix: api_key::display_prefix(&key),
        created_at: time::rfc3339_ms(ctx.now_ms),
        expires_at: days.map(|d| time::rfc3339_ms(ctx.now_ms + d * DAY_MS)),
        last_used_at: None,
        revoked_at: None,
    };
    let max = config::Spend::from_env(&ctx.env).max_api_keys;
    if !ctx
        .store()?
        .insert_api_key(&row, &api_key::hash(&key), max)
        .await?
    {
        return Err(ApiError::ApiKeyLimitReached { limit: max });
    }
    let mut data = key_json(&row);
    data["key"] = Value::String(key);
    Reply::created(data)
}

pub async fn list(ctx: &mut Ctx) -> Result<Reply, ApiError> {
    let keys = ctx.store()?.api_keys_of(ctx.principal()?.user_id()).await?;
    Reply::ok(keys.iter().map(key_json).collect::<Vec<_>>())
}

pub async fn revoke(ctx: &mut Ctx) -> Result<Reply, ApiError> {
    let user_id = ctx.principal()?.user_id().to_owned();
    let now = time::rfc3339_ms(ctx.now_ms);
    let revoked = ctx
        .store()?
        .revoke_api_key(&user_id, ctx.id(), &now)
        .await?;
    let (row, key_hash) = revoked.ok_or(ApiError::NotFound("API key"))?;
    // Before answering, so the very next request with this key is refused everywhere.
    rate_limiter::forget_key(&ctx.env, &key_hash).await?;
    Reply::ok(key_json(&row))
}
