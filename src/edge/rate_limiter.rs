//! The rate-limit Durable Object, one instance per API key (named by the key's hash), per
//! session user, or per client IP. It holds the counters of `core::rate_limit` in its storage,
//! and for a key also the key's verification record, so a warm keyed request costs one Durable
//! Object round trip and no D1 read. The runtime runs one event at a time per instance, so
//! counts are exact across isolates and under concurrency.

use serde::{Deserialize, Serialize};
use worker::{durable_object, Date, Env, Method, Request, RequestInit, Response, State};

use crate::core::api_key::KeyRecord;
use crate::core::credentials::Scope;
use crate::core::error::ApiError;
use crate::core::rate_limit::{self, Decision, Policy};
use crate::core::time;

use super::config;
use super::store::Store;

const COUNTERS: &str = "rate";
const RECORD: &str = "key";
/// How often `lastUsedAt` is written to D1 per key.
const LAST_USED_EVERY_MS: i64 = 60_000;

#[derive(Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "camelCase")]
enum Op {
    /// Count one request against `policy`.
    Limit { policy: Policy },
    /// Verify the key with this hash and count one request against its scope's policy.
    #[serde(rename_all = "camelCase")]
    Key {
        key_hash: String,
        read_only: Policy,
        full_access: Policy,
    },
    /// Forget the cached record: the key was revoked.
    Revoke,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyAdmission {
    /// `None`: no such key.
    pub record: Option<KeyRecord>,
    pub decision: Option<Decision>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CachedRecord {
    record: KeyRecord,
    loaded_ms: i64,
    last_used_written_ms: i64,
}

#[durable_object]
pub struct RateLimiter {
    state: State,
    env: Env,
}

impl worker::DurableObject for RateLimiter {
    fn new(state: State, env: Env) -> Self {
        RateLimiter { state, env }
    }

    async fn fetch(&self, mut req: Request) -> worker::Result<Response> {
        let now = Date::now().as_millis() as i64;
        match req.json::<Op>().await? {
            Op::Limit { policy } => Response::from_json(&self.count(&policy, now).await?),
            Op::Key {
                key_hash,
                read_only,
                full_access,
            } => {
                let Some(record) = self.record(&key_hash, now).await? else {
                    return Response::from_json(&KeyAdmission {
                        record: None,
                        decision: None,
                    });
                };
                // A refused key is not counted: 401 comes before 429.
                let decision = match record.check(now) {
                    Ok(()) => {
                        let policy = if record.scope == Scope::FullAccess {
                            full_access
                        } else {
                            read_only
                        };
                        Some(self.count(&policy, now).await?)
                    }
                    Err(_) => None,
                };
                Response::from_json(&KeyAdmission {
                    record: Some(record),
                    decision,
                })
            }
            Op::Revoke => {
                self.state.storage().delete(RECORD).await?;
                Response::from_json(&true)
            }
        }
    }
}

impl RateLimiter {
    async fn count(&self, policy: &Policy, now: i64) -> worker::Result<Decision> {
        let storage = self.state.storage();
        let current = storage
            .get::<rate_limit::State>(COUNTERS)
            .await?
            .unwrap_or_default();
        let (decision, next) = rate_limit::check(policy, current, now);
        storage.put(COUNTERS, next).await?;
        Ok(decision)
    }

    /// The key's record: from storage while fresh, else from D1 (and kept).
    async fn record(&self, key_hash: &str, now: i64) -> worker::Result<Option<KeyRecord>> {
        let storage = self.state.storage();
        let ttl_ms = config::var_u64(&self.env, "KEY_RECORD_TTL_SECS", 300) as i64 * 1000;
        let stored = storage.get::<CachedRecord>(RECORD).await?;
        let mut cached = match stored {
            Some(c) if now - c.loaded_ms < ttl_ms => c,
            stale => {
                let store = Store::new(&self.env).map_err(to_worker)?;
                let Some(record) = store
                    .key_record_by_hash(key_hash)
                    .await
                    .map_err(to_worker)?
                else {
                    // Unknown keys are not stored, so random guesses leave nothing behind.
                    return Ok(None);
                };
                let last_used_written_ms = stale.map_or(0, |c| c.last_used_written_ms);
                CachedRecord {
                    record,
                    loaded_ms: now,
                    last_used_written_ms,
                }
            }
        };
        if now - cached.last_used_written_ms >= LAST_USED_EVERY_MS
            && cached.record.check(now).is_ok()
        {
            cached.last_used_written_ms = now;
            let (id, at) = (cached.record.id.clone(), time::rfc3339_ms(now));
            let env = self.env.clone();
            // Off the request's critical path.
            self.state.wait_until(async move {
                if let Ok(store) = Store::new(&env) {
                    let _ = store.touch_api_key(&id, &at).await;
                }
            });
        }
        storage.put(RECORD, &cached).await?;
        Ok(Some(cached.record))
    }
}

fn to_worker(e: ApiError) -> worker::Error {
    worker::Error::RustError(e.log_detail().unwrap_or(e.code()).to_owned())
}

async fn call<T: serde::de::DeserializeOwned>(
    env: &Env,
    name: &str,
    op: &Op,
) -> Result<T, ApiError> {
    let fail = |e: worker::Error| ApiError::internal(format!("rate limiter: {e}"));
    let stub = env
        .durable_object("RATE_LIMITER")
        .map_err(fail)?
        .get_by_name(name)
        .map_err(fail)?;
    let body = serde_json::to_string(op).map_err(ApiError::internal)?;
    let mut init = RequestInit::new();
    init.with_method(Method::Post).with_body(Some(body.into()));
    let req = Request::new_with_init("https://rate-limiter/", &init).map_err(fail)?;
    let mut resp = stub.fetch_with_request(req).await.map_err(fail)?;
    resp.json::<T>().await.map_err(fail)
}

/// Counts one request for `name` (a session user or a client IP).
pub async fn limit(env: &Env, name: &str, policy: Policy) -> Result<Decision, ApiError> {
    call(env, name, &Op::Limit { policy }).await
}

/// Verifies a key by its hash and counts the request, in one round trip.
pub async fn admit_key(env: &Env, key_hash: &str) -> Result<KeyAdmission, ApiError> {
    let op = Op::Key {
        key_hash: key_hash.to_owned(),
        read_only: config::key_policy(env, Scope::ReadOnly),
        full_access: config::key_policy(env, Scope::FullAccess),
    };
    call(env, &key_instance(key_hash), &op).await
}

/// Makes the key's instance forget its record, so the next request sees the revocation.
pub async fn forget_key(env: &Env, key_hash: &str) -> Result<(), ApiError> {
    call::<bool>(env, &key_instance(key_hash), &Op::Revoke)
        .await
        .map(|_| ())
}

fn key_instance(key_hash: &str) -> String {
    format!("key:{key_hash}")
}
