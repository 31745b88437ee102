//! Authentication and admission: turns `Authorization: Bearer …` / `X-API-Key: …` into a
//! principal and counts the request against its limits. The key format and checksum are
//! checked before any lookup; a key is then verified and counted by its Durable Object in one
//! round trip.

use crate::platform::request::Request;
use chrono::{TimeZone, Utc};

use crate::auth::credentials::{self, Credential, Scope};
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};

use crate::auth::api_key;
use crate::auth::client_token;
use crate::auth::token;
use crate::http::error::{ApiError, LimitReason};
use crate::limits::rate_limit::{Decision, Policy};

use crate::config::env as config;
use crate::http::context::{Ctx, Principal};
use crate::limits::client as limits;
use crate::platform::instance::Instance;
use crate::platform::request::header;

pub struct Admission {
    pub principal: Principal,
    pub policy: Policy,
    pub decision: Decision,
}

pub async fn authenticate(ctx: &Ctx, req: &Request) -> Result<Admission, ApiError> {
    match credential(req).ok_or(ApiError::Unauthorized)? {
        Credential::Jwt(jwt) => session(ctx, &jwt).await,
        Credential::ApiKey(key) => api_key(ctx, &key, &Ctx::client_ip(req)).await,
        Credential::ClientToken(token) => client(ctx, &token, &Ctx::client_ip(req)).await,
    }
}

/// The hash of the request's API key, if it authenticated with one (a client token names it).
pub fn key_hash(req: &Request) -> Option<String> {
    match credential(req)? {
        Credential::ApiKey(key) => Some(api_key::hash(&key)),
        _ => None,
    }
}

/// A client token: its signature and time here, its key by the key's object in the same round
/// trip as a key's (revoked or expired key: the token stops with it), counted against the
/// key's limits. A forged token counts as a failed attempt from the client IP.
async fn client(ctx: &Ctx, token: &str, ip: &str) -> Result<Admission, ApiError> {
    if let Some(refusal) = blocked(ip, ctx.now_ms, ctx.config.auth_failures.limit) {
        return Err(refusal);
    }
    let secret = config::jwt_secret(&ctx.env)?;
    let now = Utc
        .timestamp_millis_opt(ctx.now_ms)
        .single()
        .unwrap_or_default();
    let grant = match client_token::verify(secret.as_bytes(), token, now) {
        Ok(grant) => grant,
        Err(e @ ApiError::ClientTokenExpired) => return Err(e),
        Err(e) => return Err(failed(ctx, ip, e).await),
    };
    let read_only = ctx.config.key_policy(Scope::ReadOnly);
    let full_access = ctx.config.key_policy(Scope::FullAccess);
    let admission = limits::admit_key(&ctx.env, &grant.kh, read_only, full_access).await?;
    let live = admission.record.filter(|r| {
        r.id == grant.kid
            && r.user_id == grant.sub
            && r.scope == Scope::FullAccess
            && r.check(ctx.now_ms).is_ok()
    });
    let (Some(record), Some(decision)) = (live, admission.decision) else {
        return Err(ApiError::InvalidToken);
    };
    Ok(Admission {
        principal: Principal::Client {
            grant: Box::new(grant),
            end_user_limits: record.end_user_limits,
        },
        policy: full_access,
        decision,
    })
}

/// The request's credential, from `Authorization: Bearer …` or `X-API-Key: …`.
fn credential(req: &Request) -> Option<Credential> {
    credentials::from_headers(
        header(req, "Authorization").as_deref(),
        header(req, "X-API-Key").as_deref(),
    )
}

/// A session JWT, limited per user with the `full_access` figures.
async fn session(ctx: &Ctx, jwt: &str) -> Result<Admission, ApiError> {
    let secret = config::jwt_secret(&ctx.env)?;
    let now = Utc
        .timestamp_millis_opt(ctx.now_ms)
        .single()
        .unwrap_or_default();
    let user_id = token::verify(secret.as_bytes(), jwt, now)?;
    let policy = ctx.config.key_policy(Scope::FullAccess);
    let decision = limits::limit(&ctx.env, Instance::User { user_id: &user_id }, policy).await?;
    Ok(Admission {
        principal: Principal::Session { user_id },
        policy,
        decision,
    })
}

/// An API key: verified and counted by its object in one round trip; every failure counts
/// against the client IP.
async fn api_key(ctx: &Ctx, key: &str, ip: &str) -> Result<Admission, ApiError> {
    if let Some(refusal) = blocked(ip, ctx.now_ms, ctx.config.auth_failures.limit) {
        return Err(refusal); // costs no key lookup
    }
    // Asked alongside the key's own verification, so it adds no round trip in series.
    let (elsewhere, verdict) = futures::join!(blocked_elsewhere(ctx, ip), verify_key(ctx, key, ip));
    if let Some(refusal) = elsewhere {
        return Err(refusal);
    }
    verdict
}

async fn verify_key(ctx: &Ctx, key: &str, ip: &str) -> Result<Admission, ApiError> {
    if !api_key::is_well_formed(key) {
        return Err(failed(ctx, ip, ApiError::InvalidApiKeyFormat).await);
    }
    let key_hash = api_key::hash(key);
    // A guessed key never reaches a Durable Object (which would leave an instance per
    // guess): its hash must be one D1 has issued. Known hashes are remembered per
    // isolate, so a warm key still costs one object round trip and no D1 read.
    if !known_key(ctx, &key_hash).await? {
        return Err(failed(ctx, ip, ApiError::InvalidApiKey).await);
    }
    // Both figures go along; the key's scope, known to its object, picks one.
    let read_only = ctx.config.key_policy(Scope::ReadOnly);
    let full_access = ctx.config.key_policy(Scope::FullAccess);
    let admission = limits::admit_key(&ctx.env, &key_hash, read_only, full_access).await?;
    let Some(record) = admission.record else {
        remember_caller(&key_hash, None);
        return Err(failed(ctx, ip, ApiError::InvalidApiKey).await);
    };
    if let Err(e) = record.check(ctx.now_ms) {
        remember_caller(&key_hash, None);
        return Err(failed(ctx, ip, e).await);
    }
    let decision = admission
        .decision
        .ok_or_else(|| ApiError::internal("admitted key without a decision"))?;
    let principal = Principal::Key {
        user_id: record.user_id,
        key_id: record.id,
        key_name: record.name,
        scope: record.scope,
        end_user_limits: record.end_user_limits,
    };
    // A key over its limit gets no read started ahead of its verdict (no D1 read per refusal).
    remember_caller(&key_hash, decision.allowed.then(|| principal.clone()));
    Ok(Admission {
        policy: ctx.config.key_policy(record.scope),
        decision,
        principal,
    })
}

thread_local! {
    /// The caller each key hash was last admitted as by this isolate. Only a hint: it lets a
    /// read or a generation start while the key's object verifies the request (`pipeline::ahead`),
    /// and is never an admission by itself.
    static CALLERS: RefCell<HashMap<String, Principal>> = RefCell::new(HashMap::new());
}

/// The most callers remembered per isolate; past it the map starts over.
const MAX_CALLERS: usize = 10_000;

/// The caller this isolate last admitted the request's API key as, if any (no I/O).
pub fn likely_caller(req: &Request) -> Option<Principal> {
    let Credential::ApiKey(key) = credential(req)? else {
        return None;
    };
    if !api_key::is_well_formed(&key) {
        return None;
    }
    let key_hash = api_key::hash(&key);
    CALLERS.with(|c| c.borrow().get(&key_hash).cloned())
}

fn remember_caller(key_hash: &str, caller: Option<Principal>) {
    CALLERS.with(|c| {
        let mut c = c.borrow_mut();
        match caller {
            Some(p) => {
                if c.len() >= MAX_CALLERS {
                    c.clear();
                }
                c.insert(key_hash.to_owned(), p);
            }
            None => {
                c.remove(key_hash);
            }
        }
    });
}

thread_local! {
    /// Hashes of keys D1 has issued, seen by this isolate (existence never reverts: revoked
    /// keys keep their row, and the key's object refuses them).
    static KNOWN: RefCell<HashSet<String>> = RefCell::new(HashSet::new());
}

/// The most known hashes remembered per isolate; past it the set starts over.
const MAX_KNOWN: usize = 50_000;

async fn known_key(ctx: &Ctx, key_hash: &str) -> Result<bool, ApiError> {
    if KNOWN.with(|k| k.borrow().contains(key_hash)) {
        return Ok(true);
    }
    let exists = ctx.store()?.key_exists(key_hash).await?;
    if exists {
        KNOWN.with(|k| {
            let mut k = k.borrow_mut();
            if k.len() >= MAX_KNOWN {
                k.clear();
            }
            k.insert(key_hash.to_owned());
        });
    }
    Ok(exists)
}

thread_local! {
    /// Client IPs refused for failed key attempts, until when (Unix ms). Kept per isolate: an
    /// isolate learns of a block at its next failure from that IP, and from then refuses that
    /// IP's keyed requests without a lookup.
    static BLOCKED: RefCell<HashMap<String, i64>> = RefCell::new(HashMap::new());
}

/// The most IPs remembered per isolate; expired entries go first.
const MAX_BLOCKED: usize = 10_000;

fn blocked(ip: &str, now_ms: i64, limit: u64) -> Option<ApiError> {
    let until = BLOCKED.with(|b| b.borrow().get(ip).copied())?;
    if until <= now_ms {
        BLOCKED.with(|b| b.borrow_mut().remove(ip));
        return None;
    }
    Some(ApiError::RateLimited {
        reason: LimitReason::AuthFailures,
        retry_after: ((until - now_ms) as u64).div_ceil(1000).max(1),
        limit,
    })
}

thread_local! {
    /// Client IPs whose failure counter (kept over every isolate) this isolate read as clear,
    /// and when (Unix ms). An IP not read lately, or seen failing here since, is asked about
    /// again before its key is admitted (§10: the block holds on every isolate, a fresh one
    /// included); a clear IP costs nothing for `CLEAR_FOR_MS`.
    static CLEAR: RefCell<HashMap<String, i64>> = RefCell::new(HashMap::new());
}

/// How long a clear reading of an IP's failures is trusted by an isolate.
const CLEAR_FOR_MS: i64 = 10_000;

/// The IP's failures counted over every isolate: a refusal when they are over the limit (and
/// the block is remembered here from then on).
async fn blocked_elsewhere(ctx: &Ctx, ip: &str) -> Option<ApiError> {
    let fresh = CLEAR.with(|c| {
        c.borrow()
            .get(ip)
            .is_some_and(|at| ctx.now_ms - at < CLEAR_FOR_MS)
    });
    if fresh {
        return None;
    }
    let policy = ctx.config.auth_failures;
    let decision = limits::peek(&ctx.env, Instance::AuthFailures { ip }, policy)
        .await
        .ok()?;
    let Some(r) = decision.rejected_by else {
        CLEAR.with(|c| {
            let mut c = c.borrow_mut();
            if c.len() >= MAX_BLOCKED {
                c.clear();
            }
            c.insert(ip.to_owned(), ctx.now_ms);
        });
        return None;
    };
    block(ctx, ip, r.retry_after);
    Some(ApiError::RateLimited {
        reason: LimitReason::AuthFailures,
        retry_after: r.retry_after,
        limit: policy.limit,
    })
}

fn block(ctx: &Ctx, ip: &str, retry_after: u64) {
    BLOCKED.with(|b| {
        let mut b = b.borrow_mut();
        if b.len() >= MAX_BLOCKED {
            b.retain(|_, until| *until > ctx.now_ms);
        }
        if b.len() < MAX_BLOCKED {
            b.insert(ip.to_owned(), ctx.now_ms + retry_after as i64 * 1000);
        }
    });
}

/// Counts a failed key attempt for the client IP. Past `AUTH_FAILURES_PER_MINUTE`, the IP's
/// further keyed requests are refused with 429 until the minute ends.
async fn failed(ctx: &Ctx, ip: &str, refusal: ApiError) -> ApiError {
    let policy = ctx.config.auth_failures;
    CLEAR.with(|c| c.borrow_mut().remove(ip));
    let Ok(decision) = limits::limit(&ctx.env, Instance::AuthFailures { ip }, policy).await else {
        return refusal;
    };
    let Some(r) = decision.rejected_by else {
        return refusal;
    };
    block(ctx, ip, r.retry_after);
    ApiError::RateLimited {
        reason: LimitReason::AuthFailures,
        retry_after: r.retry_after,
        limit: policy.limit,
    }
}
