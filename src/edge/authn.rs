//! Authentication and admission: turns `Authorization: Bearer …` / `X-API-Key: …` into a
//! principal and counts the request against its limits. The key format and checksum are
//! checked before any lookup; a key is then verified and counted by its Durable Object in one
//! round trip.

use chrono::{TimeZone, Utc};
use worker::Request;

use crate::core::credentials::{self, Credential, Scope};
use crate::core::error::ApiError;
use crate::core::rate_limit::{Decision, Policy};
use crate::core::{api_key, token};

use super::context::{header, Ctx, Principal};
use super::{config, rate_limiter};

pub struct Admission {
    pub principal: Principal,
    pub policy: Policy,
    pub decision: Decision,
}

pub async fn authenticate(ctx: &Ctx, req: &Request) -> Result<Admission, ApiError> {
    let credential = credentials::from_headers(
        header(req, "Authorization").as_deref(),
        header(req, "X-API-Key").as_deref(),
    )
    .ok_or(ApiError::Unauthorized)?;
    match credential {
        Credential::Jwt(jwt) => {
            let secret = config::jwt_secret(&ctx.env)?;
            let now = Utc
                .timestamp_millis_opt(ctx.now_ms)
                .single()
                .unwrap_or_default();
            let user_id = token::verify(secret.as_bytes(), &jwt, now)?;
            // Sessions are limited per user with the full_access figures.
            let policy = config::key_policy(&ctx.env, Scope::FullAccess);
            let decision =
                rate_limiter::limit(&ctx.env, &format!("user:{user_id}"), policy).await?;
            Ok(Admission {
                principal: Principal::Session { user_id },
                policy,
                decision,
            })
        }
        Credential::ApiKey(key) => {
            if !api_key::is_well_formed(&key) {
                return Err(ApiError::InvalidApiKeyFormat);
            }
            // Both figures are read once here; the key's scope, known to its DO, picks one.
            let read_only = config::key_policy(&ctx.env, Scope::ReadOnly);
            let full_access = config::key_policy(&ctx.env, Scope::FullAccess);
            let admission =
                rate_limiter::admit_key(&ctx.env, &api_key::hash(&key), read_only, full_access)
                    .await?;
            let record = admission.record.ok_or(ApiError::InvalidApiKey)?;
            record.check(ctx.now_ms)?;
            let decision = admission
                .decision
                .ok_or_else(|| ApiError::internal("admitted key without a decision"))?;
            let policy = match record.scope {
                Scope::ReadOnly => read_only,
                Scope::FullAccess => full_access,
            };
            let principal = Principal::Key {
                user_id: record.user_id,
                key_id: record.id,
                key_name: record.name,
                scope: record.scope,
            };
            Ok(Admission {
                principal,
                policy,
                decision,
            })
        }
    }
}
