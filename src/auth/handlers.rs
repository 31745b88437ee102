//! Accounts: register, login, and who-am-I.

use crate::platform::request::Request;
use chrono::{TimeZone, Utc};

use crate::auth::model::{Account, KeyRef, Login, Me, NewAccount, Session, User};
use crate::auth::password::{self, StoredPassword};
use crate::auth::token;
use crate::config::env as config;
use crate::http::context::{Ctx, Principal};
use crate::http::error::{ApiError, LimitReason};
use crate::http::reply::Reply;
use crate::limits::client as limits;
use crate::platform::crypto::{pbkdf2_sha256, random_bytes};
use crate::platform::ids;
use crate::platform::instance::Instance;
use crate::platform::request::json_body;
use crate::platform::time;

fn session<'a>(ctx: &Ctx, user: &'a User) -> Result<Session<'a>, ApiError> {
    let secret = config::jwt_secret(&ctx.env)?;
    let ttl = ctx.config.jwt_ttl_secs;
    let now = Utc
        .timestamp_millis_opt(ctx.now_ms)
        .single()
        .unwrap_or_default();
    Ok(Session {
        user,
        token: token::issue(secret.as_bytes(), &user.id, now, ttl)?,
        expires_in: ttl,
    })
}

pub async fn register(ctx: &Ctx, req: &mut Request) -> Result<Reply, ApiError> {
    let input = NewAccount::try_from(&json_body(req).await?)?;
    signups_left(ctx, req).await?;
    // Fails closed before anything is written: an account whose token cannot be issued would
    // turn the client's retry into a 409.
    config::jwt_secret(&ctx.env)?;
    let salt = random_bytes::<{ password::SALT_LEN }>();
    let hash = pbkdf2_sha256(input.password.as_bytes(), &salt, password::ITERATIONS).await?;
    let stored = StoredPassword {
        iterations: password::ITERATIONS,
        salt: salt.to_vec(),
        hash,
    };
    let account = Account {
        user: User {
            id: ids::prefixed("usr", &random_bytes::<24>()),
            email: input.email,
            name: input.name,
            created_at: time::rfc3339_ms(ctx.now_ms),
        },
        password_hash: stored.encode(),
    };
    let answer = session(ctx, &account.user)?;
    match ctx.store()?.insert_user(&account).await {
        Err(e) if e.is_unique_on("users.email") => Err(ApiError::Conflict(
            "An account with this email already exists".into(),
        )),
        other => other.map_err(ApiError::from),
    }?;
    Reply::created(answer)
}

/// At most `SIGNUPS_PER_IP_PER_DAY` registrations per client IP (an IPv6 /64) per UTC day: the
/// counter is named by the day, so it starts over at midnight UTC.
async fn signups_left(ctx: &Ctx, req: &Request) -> Result<(), ApiError> {
    let limit = ctx.config.signups_per_ip_per_day;
    let (ip, day) = (
        Ctx::client_ip(req),
        crate::spend::model::utc_day(ctx.now_ms),
    );
    let signups = Instance::Signups { ip: &ip, day: &day };
    let decision = limits::limit(&ctx.env, signups, crate::config::signup_policy(limit)).await?;
    match decision.rejected_by {
        None => Ok(()),
        Some(_) => Err(ApiError::RateLimited {
            reason: LimitReason::Signups,
            retry_after: crate::spend::model::secs_to_utc_midnight(ctx.now_ms),
            limit,
        }),
    }
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

pub async fn login(ctx: &Ctx, req: &mut Request) -> Result<Reply, ApiError> {
    let input = Login::try_from(&json_body(req).await?)?;
    // Password spraying from many IPs still meets the per-email limit. The attempt is counted
    // before the PBKDF2 work (so parallel guesses cannot all pass one check) and given back
    // when the password is right.
    let bucket = Instance::Login {
        email: &input.email,
    };
    let policy = crate::config::login_failure_policy();
    let seen = limits::limit(&ctx.env, bucket, policy).await?;
    if let Some(r) = seen.rejected_by {
        return Err(ApiError::RateLimited {
            reason: LimitReason::LoginFailures,
            retry_after: r.retry_after,
            limit: policy.limit,
        });
    }
    let account = ctx.store()?.account_by_email(&input.email).await?;
    let stored = account
        .as_ref()
        .and_then(|a| StoredPassword::decode(&a.password_hash))
        .unwrap_or_else(decoy);
    let derived = pbkdf2_sha256(input.password.as_bytes(), &stored.salt, stored.iterations).await?;
    let matches = password::constant_time_eq(&derived, &stored.hash);
    let account = match account {
        Some(a) if matches => a,
        _ => return Err(ApiError::InvalidCredentials),
    };
    limits::refund(&ctx.env, bucket, policy).await?;
    Reply::ok(session(ctx, &account.user)?)
}

pub async fn me(ctx: &Ctx, caller: &Principal) -> Result<Reply, ApiError> {
    let Some(user) = ctx.store()?.user_by_id(caller.user_id()).await? else {
        // The account is gone: the credential no longer names anyone.
        return Err(match caller {
            Principal::Key { .. } => ApiError::InvalidApiKey,
            _ => ApiError::InvalidToken,
        });
    };
    let api_key = match caller {
        Principal::Key {
            key_id,
            key_name,
            scope,
            ..
        } => Some(KeyRef {
            id: key_id,
            name: key_name,
            scope: *scope,
        }),
        _ => None,
    };
    Reply::ok(Me {
        user: &user,
        api_key,
        allowed_models: &ctx.config.spend.allowed_models,
    })
}
