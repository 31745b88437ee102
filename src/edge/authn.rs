//! Authentication: turns `Authorization: Bearer …` / `X-API-Key: …` into a principal.
//! The key format and checksum are checked before any storage lookup.

use chrono::{TimeZone, Utc};
use worker::Request;

use crate::core::credentials::{self, Credential, Scope};
use crate::core::error::ApiError;
use crate::core::{api_key, time, token};

use super::config;
use super::context::{header, Ctx, Principal};

/// How often `lastUsedAt` may be written per key.
const LAST_USED_GRANULARITY_MS: i64 = 60_000;

pub async fn authenticate(ctx: &Ctx, req: &Request) -> Result<Principal, ApiError> {
    let credential = credentials::from_headers(
        header(req, "Authorization").as_deref(),
        header(req, "X-API-Key").as_deref(),
    )
    .ok_or(ApiError::Unauthorized)?;
    match credential {
        Credential::Jwt(jwt) => {
            let secret = config::secret(&ctx.env, "JWT_SECRET")?;
            let now = Utc
                .timestamp_millis_opt(ctx.now_ms)
                .single()
                .unwrap_or_default();
            let user_id = token::verify(secret.as_bytes(), &jwt, now)?;
            Ok(Principal::Session { user_id })
        }
        Credential::ApiKey(key) => verify_key(ctx, &key).await,
    }
}

async fn verify_key(ctx: &Ctx, key: &str) -> Result<Principal, ApiError> {
    if !api_key::is_well_formed(key) {
        return Err(ApiError::InvalidApiKeyFormat);
    }
    let store = ctx.store()?;
    let row = store
        .api_key_by_hash(&api_key::hash(key))
        .await?
        .ok_or(ApiError::InvalidApiKey)?;
    if row.revoked_at.is_some() {
        return Err(ApiError::InvalidApiKey);
    }
    if let Some(expires) = row.expires_at.as_deref().and_then(time::parse_rfc3339_ms) {
        if expires <= ctx.now_ms {
            return Err(ApiError::ApiKeyExpired);
        }
    }
    let scope =
        Scope::parse(&row.scope).ok_or_else(|| ApiError::internal("unknown scope in api_keys"))?;
    let stale = row
        .last_used_at
        .as_deref()
        .and_then(time::parse_rfc3339_ms)
        .is_none_or(|t| t <= ctx.now_ms - LAST_USED_GRANULARITY_MS);
    if stale {
        // Off the critical path: the response does not wait for this write.
        let (id, now, before) = (
            row.id.clone(),
            time::rfc3339_ms(ctx.now_ms),
            time::rfc3339_ms(ctx.now_ms - LAST_USED_GRANULARITY_MS + 1),
        );
        ctx.worker.wait_until(async move {
            let _ = store.touch_api_key(&id, &now, &before).await;
        });
    }
    Ok(Principal::Key {
        user_id: row.user_id,
        key_id: row.id,
        key_name: row.name,
        scope,
    })
}
