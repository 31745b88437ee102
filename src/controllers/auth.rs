//! Accounts: register, login, and who-am-I.

use chrono::{TimeZone, Utc};
use serde_json::{json, Value};
use worker::Request;

use crate::core::error::{ApiError, LimitReason};
use crate::core::password::{self, StoredPassword};
use crate::core::validate::Fields;
use crate::core::{ids, time, token};
use crate::edge::context::{json_body, Ctx, Principal, Reply};
use crate::edge::crypto::{pbkdf2_sha256, random_bytes};
use crate::edge::store::UserRow;
use crate::edge::{config, rate_limiter};

pub fn user_json(u: &UserRow) -> Value {
    json!({ "id": u.id, "email": u.email, "name": u.name, "createdAt": u.created_at })
}

fn session_token(ctx: &Ctx, user_id: &str) -> Result<(String, i64), ApiError> {
    let secret = config::jwt_secret(&ctx.env)?;
    let ttl = config::var_u64(&ctx.env, "JWT_TTL_SECS", token::DEFAULT_TTL_SECS as u64) as i64;
    let now = Utc
        .timestamp_millis_opt(ctx.now_ms)
        .single()
        .unwrap_or_default();
    Ok((token::issue(secret.as_bytes(), user_id, now, ttl)?, ttl))
}

pub async fn register(ctx: &mut Ctx, req: &mut Request) -> Result<Reply, ApiError> {
    let body = json_body(req).await?;
    let mut f = Fields::new(&body);
    let email = f.email("email");
    let password = f.raw_string("password", password::MIN_LEN, password::MAX_LEN);
    let name = f.string("name", 1, 100);
    f.finish()?;
    // Fails closed before anything is written: an account whose token cannot be issued would
    // turn the client's retry into a 409.
    config::jwt_secret(&ctx.env)?;
    let (email, password, name) = (
        email.unwrap_or_default(),
        password.unwrap_or_default(),
        name.unwrap_or_default(),
    );

    let salt = random_bytes::<{ password::SALT_LEN }>();
    let hash = pbkdf2_sha256(password.as_bytes(), &salt, password::ITERATIONS).await?;
    let stored = StoredPassword {
        iterations: password::ITERATIONS,
        salt: salt.to_vec(),
        hash,
    };
    let user = UserRow {
        id: ids::prefixed("usr", &random_bytes::<24>()),
        email,
        name,
        password_hash: stored.encode(),
        created_at: time::rfc3339_ms(ctx.now_ms),
    };
    let (token, expires_in) = session_token(ctx, &user.id)?;
    ctx.store()?.insert_user(&user).await?;
    Reply::created(json!({ "user": user_json(&user), "token": token, "expiresIn": expires_in }))
}

/// Stands in for a missing account so a login for an unknown email does the same PBKDF2
/// work as one for a known email.
fn decoy() -> StoredPassword {
    StoredPassword {
        iterations: password::ITERATIONS,
        salt: vec![0x5a; password::SALT_LEN],
        hash: vec![0; password::HASH_LEN],
    }
}

pub async fn login(ctx: &mut Ctx, req: &mut Request) -> Result<Reply, ApiError> {
    let body = json_body(req).await?;
    let mut f = Fields::new(&body);
    let email = f.string("email", 1, 254);
    let password = f.raw_string("password", 1, password::MAX_LEN);
    f.finish()?;
    let (email, password) = (
        email.unwrap_or_default().to_lowercase(),
        password.unwrap_or_default(),
    );

    // Password spraying from many IPs still meets the per-email limit.
    let bucket = format!("login:{email}");
    let policy = config::login_failure_policy();
    let seen = rate_limiter::peek(&ctx.env, &bucket, policy).await?;
    if let Some(r) = seen.rejected_by {
        return Err(ApiError::RateLimited {
            reason: LimitReason::LoginFailures,
            retry_after: r.retry_after,
            limit: policy.limit,
        });
    }
    let user = ctx.store()?.user_by_email(&email).await?;
    let stored = user
        .as_ref()
        .and_then(|u| StoredPassword::decode(&u.password_hash))
        .unwrap_or_else(decoy);
    let derived = pbkdf2_sha256(password.as_bytes(), &stored.salt, stored.iterations).await?;
    let matches = password::constant_time_eq(&derived, &stored.hash);
    let user = match user {
        Some(u) if matches => u,
        _ => {
            rate_limiter::limit(&ctx.env, &bucket, policy).await?;
            return Err(ApiError::InvalidCredentials);
        }
    };
    let (token, expires_in) = session_token(ctx, &user.id)?;
    Reply::ok(json!({ "token": token, "expiresIn": expires_in, "user": user_json(&user) }))
}

pub async fn me(ctx: &mut Ctx) -> Result<Reply, ApiError> {
    let principal = ctx.principal()?;
    let user = ctx.store()?.user_by_id(principal.user_id()).await?;
    let Some(user) = user else {
        // The account is gone: the credential no longer names anyone.
        return Err(match principal {
            Principal::Session { .. } => ApiError::InvalidToken,
            Principal::Key { .. } => ApiError::InvalidApiKey,
        });
    };
    let mut data = user_json(&user);
    if let Principal::Key {
        key_id,
        key_name,
        scope,
        ..
    } = principal
    {
        data["apiKey"] = json!({ "id": key_id, "name": key_name, "scope": scope.as_str() });
    }
    Reply::ok(data)
}
