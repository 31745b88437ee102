//! The rate-limit Durable Object, one instance per API key (named by the key's hash), per
//! session user, or per client IP. It holds the counters of `core::rate_limit`, and for a key
//! also the key's verification record, so a warm keyed request costs one Durable Object round
//! trip and no D1 read. The runtime runs one event at a time per instance, and counting uses
//! the synchronous SQL API with no await inside, so counts are exact under concurrency.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::cell::{Cell, RefCell};
use worker::{
    durable_object, Date, Env, Method, Request, RequestInit, Response, SqlStorageValue, State,
};

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
// Externally tagged (serde's default): internally tagged enums cost the wasm several KB each.
#[serde(rename_all = "camelCase")]
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
    /// Take one of `max` generation slots of an account for `ttl_ms` (a lease: a slot whose
    /// release is lost frees itself).
    #[serde(rename_all = "camelCase")]
    Acquire {
        lease: String,
        max: u64,
        ttl_ms: i64,
    },
    /// Give a slot back.
    Release { lease: String },
}

/// The answer to `Acquire`: `retry_after` (seconds) when every slot is taken.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Slot {
    pub acquired: bool,
    pub retry_after: u64,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyAdmission {
    /// `None`: no such key.
    pub record: Option<KeyRecord>,
    /// `None` when the key is refused (revoked, expired): 401 comes before 429.
    pub decision: Option<Decision>,
}

#[derive(Clone, Serialize, Deserialize)]
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
    table_ready: Cell<bool>,
    // Storage is read once per instance lifetime and written on every change; these copies
    // spare a storage read on each request.
    counters: RefCell<Option<rate_limit::State>>,
    record: RefCell<Option<CachedRecord>>,
}

impl worker::DurableObject for RateLimiter {
    fn new(state: State, env: Env) -> Self {
        RateLimiter {
            state,
            env,
            table_ready: Cell::new(false),
            counters: RefCell::new(None),
            record: RefCell::new(None),
        }
    }

    async fn fetch(&self, mut req: Request) -> worker::Result<Response> {
        let now = Date::now().as_millis() as i64;
        // Text + serde_json: cheaper than walking a parsed JS object across the wasm boundary.
        match serde_json::from_str::<Op>(&req.text().await?)? {
            Op::Limit { policy } => Response::from_json(&self.count(&policy, now)?),
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
                let decision = match record.check(now) {
                    Ok(()) => {
                        let policy = if record.scope == Scope::FullAccess {
                            full_access
                        } else {
                            read_only
                        };
                        Some(self.count(&policy, now)?)
                    }
                    Err(_) => None,
                };
                Response::from_json(&KeyAdmission {
                    record: Some(record),
                    decision,
                })
            }
            Op::Revoke => {
                self.record.replace(None);
                self.sql::<serde_json::Value>("DELETE FROM kv WHERE k = ?", vec![RECORD.into()])?;
                Response::from_json(&true)
            }
            Op::Acquire { lease, max, ttl_ms } => {
                Response::from_json(&self.acquire(&lease, max, ttl_ms, now)?)
            }
            Op::Release { lease } => {
                self.leases()?;
                self.sql::<serde_json::Value>(
                    "DELETE FROM leases WHERE id = ?",
                    vec![lease.into()],
                )?;
                Response::from_json(&true)
            }
        }
    }
}

impl RateLimiter {
    /// Runs one statement with the synchronous SQL API and returns its rows.
    fn sql<T: DeserializeOwned>(
        &self,
        query: &str,
        args: Vec<SqlStorageValue>,
    ) -> worker::Result<Vec<T>> {
        let sql = self.state.storage().sql();
        if !self.table_ready.get() {
            sql.exec(
                "CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY, v TEXT NOT NULL)",
                None,
            )?
            .to_array::<serde_json::Value>()?;
            self.table_ready.set(true);
        }
        sql.exec(query, args)?.to_array()
    }

    fn load<T: DeserializeOwned>(&self, key: &str) -> worker::Result<Option<T>> {
        #[derive(Deserialize)]
        struct Row {
            v: String,
        }
        let rows: Vec<Row> = self.sql("SELECT v FROM kv WHERE k = ?", vec![key.into()])?;
        Ok(rows.first().and_then(|r| serde_json::from_str(&r.v).ok()))
    }

    fn save<T: Serialize>(&self, key: &str, value: &T) -> worker::Result<()> {
        let json = serde_json::to_string(value)?;
        self.sql::<serde_json::Value>(
            "INSERT OR REPLACE INTO kv (k, v) VALUES (?, ?)",
            vec![key.into(), json.into()],
        )?;
        Ok(())
    }

    fn leases(&self) -> worker::Result<()> {
        self.sql::<serde_json::Value>(
            "CREATE TABLE IF NOT EXISTS leases (id TEXT PRIMARY KEY, expires_at INTEGER NOT NULL)",
            vec![],
        )
        .map(|_| ())
    }

    /// Synchronous (no await): exact however many requests race for the last slot.
    fn acquire(&self, lease: &str, max: u64, ttl_ms: i64, now: i64) -> worker::Result<Slot> {
        #[derive(Deserialize)]
        struct Row {
            n: u64,
            soonest: Option<i64>,
        }
        self.leases()?;
        self.sql::<serde_json::Value>(
            "DELETE FROM leases WHERE expires_at <= ?",
            vec![now.into()],
        )?;
        let held = self
            .sql::<Row>(
                "SELECT COUNT(*) AS n, MIN(expires_at) AS soonest FROM leases",
                vec![],
            )?
            .into_iter()
            .next()
            .map_or((0, None), |r| (r.n, r.soonest));
        if held.0 >= max {
            // A slot frees when a generation ends, usually within seconds; the lease
            // expiry is only the upper bound.
            let upper = held.1.map_or(1, |t| ((t - now) / 1000).max(1) as u64);
            return Ok(Slot {
                acquired: false,
                retry_after: upper.min(2),
            });
        }
        self.sql::<serde_json::Value>(
            "INSERT OR REPLACE INTO leases (id, expires_at) VALUES (?, ?)",
            vec![lease.into(), (now + ttl_ms).into()],
        )?;
        Ok(Slot {
            acquired: true,
            retry_after: 0,
        })
    }

    /// Synchronous from start to end: nothing else runs in this instance meanwhile.
    fn count(&self, policy: &Policy, now: i64) -> worker::Result<Decision> {
        let mut counters = self.counters.borrow_mut();
        let current = match *counters {
            Some(c) => c,
            None => self.load(COUNTERS)?.unwrap_or_default(),
        };
        let (decision, next) = rate_limit::check(policy, current, now);
        self.save(COUNTERS, &next)?;
        *counters = Some(next);
        Ok(decision)
    }

    /// The key's record: kept while fresh, else (re)loaded from D1.
    async fn record(&self, key_hash: &str, now: i64) -> worker::Result<Option<KeyRecord>> {
        let ttl_ms = config::var_u64(&self.env, "KEY_RECORD_TTL_SECS", 300) as i64 * 1000;
        if self.record.borrow().is_none() {
            let stored = self.load::<CachedRecord>(RECORD)?;
            self.record.replace(stored);
        }
        let current = self.record.borrow().clone();
        let (mut cached, mut changed) = match current {
            Some(c) if now - c.loaded_ms < ttl_ms => (c, false),
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
                (
                    CachedRecord {
                        record,
                        loaded_ms: now,
                        last_used_written_ms,
                    },
                    true,
                )
            }
        };
        if now - cached.last_used_written_ms >= LAST_USED_EVERY_MS
            && cached.record.check(now).is_ok()
        {
            cached.last_used_written_ms = now;
            changed = true;
            let (id, at) = (cached.record.id.clone(), time::rfc3339_ms(now));
            let env = self.env.clone();
            // Off the request's critical path.
            self.state.wait_until(async move {
                if let Ok(store) = Store::new(&env) {
                    let _ = store.touch_api_key(&id, &at).await;
                }
            });
        }
        if changed {
            self.save(RECORD, &cached)?;
            self.record.replace(Some(cached.clone()));
        }
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
    serde_json::from_str(&resp.text().await.map_err(fail)?).map_err(ApiError::internal)
}

/// Counts one request for `name` (a session user or a client IP).
pub async fn limit(env: &Env, name: &str, policy: Policy) -> Result<Decision, ApiError> {
    call(env, name, &Op::Limit { policy }).await
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

fn generations_instance(user_id: &str) -> String {
    format!("generations:{user_id}")
}

fn key_instance(key_hash: &str) -> String {
    format!("key:{key_hash}")
}
