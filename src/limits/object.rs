//! The limits Durable Object: one instance per API key (named by the key's hash), per session
//! user, per client IP or per login email. It holds the counters of `limits::rate_limit`; for
//! a key also the key's verification record (in memory only, so an unknown key writes nothing),
//! so a warm keyed request costs one Durable Object round trip and no D1 read. Idle state is
//! deleted by an alarm once its window is over. The runtime runs one event at a time per
//! instance, and counting has no await inside, so counts are exact under concurrency. A key's
//! counts are written at most once a second (`SAVE_AFTER_MS`), every other instance's at once.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;
use worker::{durable_object, Date, Env, Request, Response, SqlStorage, SqlStorageValue, State};

use crate::auth::api_key::KeyRecord;
use crate::auth::credentials::Scope;
use crate::auth::key_cache::Cache;
use crate::config::env as config;
use crate::limits::protocol::{KeyAdmission, Op};
use crate::limits::rate_limit::{self, Decision, Policy};
use crate::platform::d1::Store;
use crate::platform::time;

const COUNTERS: &str = "rate";
/// How often `lastUsedAt` is written to D1 per key (SPEC §14: a key's first use shows at once,
/// then at most one D1 write an hour, however busy the key).
const LAST_USED_EVERY_MS: i64 = 3_600_000;
/// How long a key's counts may wait in memory before they are written. One instance counts
/// every request of its key, so memory is exact (SPEC §4); storage is for an instance that
/// starts again. Writing at most this often keeps a write off every keyed request: its commit
/// and, on Cloudflare, the output gate that holds the answer until the write is confirmed. A
/// busy key writes once a second. The price: an instance that crashes or is redeployed forgets
/// at most the last second of its key's counts. (Other instances write at once: `save_now`.)
const SAVE_AFTER_MS: u64 = 1000;
const SAVE_COUNTERS: &str = "INSERT OR REPLACE INTO kv (k, v) VALUES (?, ?)";
const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY, v TEXT NOT NULL)";

#[derive(Clone)]
struct CachedRecord {
    record: KeyRecord,
    loaded_ms: i64,
    last_used_written_ms: i64,
}

#[durable_object]
pub struct RateLimiter {
    state: State,
    env: Env,
    // Shared with the deferred write (`save_soon`): the idle alarm drops the table.
    table_ready: Rc<Cell<bool>>,
    // Storage is read once per instance lifetime and written within `SAVE_AFTER_MS` of a
    // change; memory is what decides.
    counters: Rc<RefCell<Option<Counters>>>,
    save_pending: Rc<Cell<bool>>,
    record: RefCell<Cache<CachedRecord>>,
    cleanup_armed: Cell<bool>,
}

/// The stored counters, and when they become idle (then the alarm deletes them).
#[derive(Clone, Copy, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Counters {
    state: rate_limit::State,
    idle_at_ms: i64,
}

impl worker::DurableObject for RateLimiter {
    fn new(state: State, env: Env) -> Self {
        RateLimiter {
            state,
            env,
            table_ready: Rc::default(),
            counters: Rc::default(),
            save_pending: Rc::default(),
            record: RefCell::new(Cache::default()),
            cleanup_armed: Cell::new(false),
        }
    }

    async fn alarm(&self) -> worker::Result<Response> {
        let now = Date::now().as_millis() as i64;
        let idle_at = self.counters_now()?.map_or(0, |c| c.idle_at_ms);
        if now >= idle_at {
            // Nothing left that changes a decision: the instance's storage goes.
            self.state.storage().delete_all().await?;
            self.table_ready.set(false);
            self.counters.replace(None);
            self.cleanup_armed.set(false);
        } else {
            self.state.storage().set_alarm(idle_at - now + 1000).await?;
        }
        Response::ok("")
    }

    /// The same protocol as the RPC method `call` (which the Worker uses), over HTTP.
    async fn fetch(&self, mut req: Request) -> worker::Result<Response> {
        let answer = self.rpc(&req.text().await?).await?;
        Response::ok(answer)
    }
}

// The Worker calls the object over RPC: a JSON text in, a JSON text out, with no HTTP request
// or response to build and read on either side.
crate::platform::object::rpc_method!(RateLimiter);

impl RateLimiter {
    async fn rpc(&self, op: &str) -> worker::Result<String> {
        let now = Date::now().as_millis() as i64;
        match serde_json::from_str::<Op>(op)? {
            Op::Limit { policy } => {
                let decision = self.count(&policy, now)?;
                self.save_now()?;
                self.arm_cleanup(&policy).await?;
                to_json(&decision)
            }
            Op::Peek { policy } => {
                let current = self.counters_now()?.unwrap_or_default().state;
                to_json(&rate_limit::check(&policy, current, now).0)
            }
            Op::Refund { policy } => {
                if let Some(current) = self.counters_now()? {
                    let saved = Counters {
                        state: rate_limit::refund(&policy, current.state),
                        ..current
                    };
                    self.counters.replace(Some(saved));
                    self.save_now()?;
                }
                to_json(&true)
            }
            Op::Key {
                key_hash,
                read_only,
                full_access,
            } => {
                let Some(record) = self.record(&key_hash, now).await? else {
                    return to_json(&KeyAdmission {
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
                        let decision = self.count(&policy, now)?;
                        self.save_soon();
                        self.arm_cleanup(&policy).await?;
                        Some(decision)
                    }
                    Err(_) => None,
                };
                to_json(&KeyAdmission {
                    record: Some(record),
                    decision,
                })
            }
            Op::Revoke => {
                // Also voids a reload from D1 in flight (auth::key_cache).
                self.record.borrow_mut().revoke();
                to_json(&true)
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
        ensure_table(&sql, &self.table_ready)?;
        sql.exec(query, args)?.to_array()
    }

    /// Reads a value; an instance that never wrote anything is not given a table by a read.
    fn load<T: DeserializeOwned>(&self, key: &str) -> worker::Result<Option<T>> {
        #[derive(Deserialize)]
        struct Row {
            v: String,
        }
        if !self.table_ready.get() {
            let sql = self.state.storage().sql();
            let exists: Vec<serde_json::Value> = sql
                .exec(
                    "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'kv'",
                    None,
                )?
                .to_array()?;
            if exists.is_empty() {
                return Ok(None);
            }
        }
        let rows: Vec<Row> = self.sql("SELECT v FROM kv WHERE k = ?", vec![key.into()])?;
        Ok(rows.first().and_then(|r| serde_json::from_str(&r.v).ok()))
    }

    /// Writes the counters now: a session user's, an IP's or an email's (rare, and a block
    /// for failed attempts must hold through a restart).
    fn save_now(&self) -> worker::Result<()> {
        let Some(saved) = *self.counters.borrow() else {
            return Ok(());
        };
        write_counters(&self.state.storage().sql(), &self.table_ready, &saved)
    }

    /// A key's counters, written within `SAVE_AFTER_MS`: one write however many requests change
    /// them meanwhile, made after their answers.
    fn save_soon(&self) {
        if self.save_pending.replace(true) {
            return;
        }
        let (pending, counters) = (self.save_pending.clone(), self.counters.clone());
        let (sql, table_ready) = (self.state.storage().sql(), self.table_ready.clone());
        worker::wasm_bindgen_futures::spawn_local(async move {
            worker::Delay::from(Duration::from_millis(SAVE_AFTER_MS)).await;
            pending.set(false);
            // None: the idle alarm deleted them meanwhile.
            let Some(saved) = *counters.borrow() else {
                return;
            };
            if let Err(e) = write_counters(&sql, &table_ready, &saved) {
                // Still in memory: the next count schedules another write.
                worker::console_error!("limits object: counters not written: {e}");
            }
        });
    }

    /// Synchronous from start to end: nothing else runs in this instance meanwhile. Counts in
    /// memory; the caller writes them (`save_now`, `save_soon`).
    fn count(&self, policy: &Policy, now: i64) -> worker::Result<Decision> {
        let current = self.counters_now()?.unwrap_or_default();
        let (decision, next) = rate_limit::check(policy, current.state, now);
        let idle_at_ms = rate_limit::idle_at(policy, &next);
        let saved = Counters {
            state: next,
            idle_at_ms,
        };
        self.counters.replace(Some(saved));
        Ok(decision)
    }

    /// The counters, from memory or (once per instance) from storage.
    fn counters_now(&self) -> worker::Result<Option<Counters>> {
        if let Some(c) = *self.counters.borrow() {
            return Ok(Some(c));
        }
        let loaded: Option<Counters> = self.load(COUNTERS)?;
        self.counters.replace(loaded);
        Ok(loaded)
    }

    /// Once per instance: an alarm for when the counters may be idle (the alarm re-arms itself
    /// while they are not).
    async fn arm_cleanup(&self, policy: &Policy) -> worker::Result<()> {
        if !self.cleanup_armed.replace(true) {
            let after_ms = (policy.window_secs.max(policy.burst_period_secs) * 1000 + 1000) as i64;
            self.state.storage().set_alarm(after_ms).await?;
        }
        Ok(())
    }

    /// The key's record: kept in memory while fresh, else (re)loaded from D1. Never stored: an
    /// unknown key (a guess) writes nothing at all.
    async fn record(&self, key_hash: &str, now: i64) -> worker::Result<Option<KeyRecord>> {
        let ttl_ms = config::get(&self.env)
            .map_err(|e| worker::Error::RustError(format!("{e:?}")))?
            .key_record_ttl_ms;
        let current = self.record.borrow().get().cloned();
        let mut cached = match current {
            Some(c) if now - c.loaded_ms < ttl_ms => c,
            stale => {
                let reload = self.record.borrow().begin_reload();
                let store = Store::new(&self.env)?;
                let found = store.key_record_by_hash(key_hash).await?;
                let last_used_written_ms = stale.map_or(0, |c| c.last_used_written_ms);
                let loaded = found.map(|record| CachedRecord {
                    record,
                    loaded_ms: now,
                    last_used_written_ms,
                });
                // A revocation that landed while D1 was read wins over what was read.
                match self.record.borrow_mut().finish_reload(reload, loaded) {
                    Some(c) => c,
                    None => return Ok(None),
                }
            }
        };
        if now - cached.last_used_written_ms >= LAST_USED_EVERY_MS
            && cached.record.check(now).is_ok()
        {
            cached.last_used_written_ms = now;
            self.record.borrow_mut().set(cached.clone());
            let (id, at) = (cached.record.id.clone(), time::rfc3339_ms(now));
            let env = self.env.clone();
            // Off the request's critical path.
            self.state.wait_until(async move {
                if let Ok(store) = Store::new(&env) {
                    let _ = store.touch_api_key(&id, &at).await;
                }
            });
        }
        Ok(Some(cached.record))
    }
}

/// Creates the instance's table unless it is known to exist (the idle alarm drops it and clears
/// `ready`).
fn ensure_table(sql: &SqlStorage, ready: &Cell<bool>) -> worker::Result<()> {
    if !ready.get() {
        sql.exec(CREATE_TABLE, None)?
            .to_array::<serde_json::Value>()?;
        ready.set(true);
    }
    Ok(())
}

/// The counters' one row, written at once (`save_now`) or later (`save_soon`).
fn write_counters(
    sql: &SqlStorage,
    table_ready: &Cell<bool>,
    saved: &Counters,
) -> worker::Result<()> {
    ensure_table(sql, table_ready)?;
    let row = vec![COUNTERS.into(), serde_json::to_string(saved)?.into()];
    sql.exec(SAVE_COUNTERS, row)?
        .to_array::<serde_json::Value>()?;
    Ok(())
}

fn to_json<T: Serialize>(value: &T) -> worker::Result<String> {
    Ok(serde_json::to_string(value)?)
}
