//! The account object: one instance per account (`platform::instance::Instance::Account`). Its
//! SQLite holds the account's generation slots and its usage groups; each op is answered with
//! synchronous SQL (no await between a check and its write), so a slot or a quota decision is
//! exact however many turns race for it.

use serde_json::Value;
use std::cell::{Cell, RefCell};
use worker::{durable_object, Date, Env, Request, Response, SqlStorageValue, State};

use crate::accounts::model::{Admission, Op};
use crate::accounts::slots::{Day, Slots};
use crate::platform::d1::{params, Store};
use crate::platform::sqlite::{int, opt_text, string, text, Sqlite};
use crate::spend::model::{self as spend, TurnUsage, UsageCounts, UsageDelta, UsageQuery};
use crate::webhooks::cell::{self as webhooks, Webhooks};

const SCHEMA: [&str; 9] = [
    "CREATE TABLE IF NOT EXISTS slots (lease TEXT PRIMARY KEY, expires_ms INTEGER NOT NULL) \
     WITHOUT ROWID",
    // '' stands for "none" in the key columns (NULLs would not conflict).
    "CREATE TABLE IF NOT EXISTS usage (
       day TEXT NOT NULL,
       api_key_id TEXT NOT NULL,
       twin_id TEXT NOT NULL,
       end_user_id TEXT NOT NULL,
       requests INTEGER NOT NULL,
       prompt_tokens INTEGER NOT NULL,
       completion_tokens INTEGER NOT NULL,
       total_tokens INTEGER NOT NULL,
       estimated_tokens INTEGER NOT NULL,
       PRIMARY KEY (day, api_key_id, twin_id, end_user_id)) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL) WITHOUT ROWID",
    // The tokens a running generation of an end user may still use (its key's `tokensPerDay`),
    // held until its usage is recorded: what makes that limit exact under parallel turns.
    "CREATE TABLE IF NOT EXISTS end_user_holds (lease TEXT PRIMARY KEY, end_user_id TEXT NOT NULL, \
       day TEXT NOT NULL, tokens INTEGER NOT NULL, expires_ms INTEGER NOT NULL) WITHOUT ROWID",
    // The account's Idempotency-Key records (docs/idempotency.md); `response` is NULL while
    // the request that claimed the key runs.
    "CREATE TABLE IF NOT EXISTS idempotency (
       key TEXT PRIMARY KEY,
       fingerprint TEXT NOT NULL,
       response TEXT,
       lease_until INTEGER NOT NULL,
       expires_at INTEGER NOT NULL) WITHOUT ROWID",
    "CREATE INDEX IF NOT EXISTS idempotency_by_expiry ON idempotency (expires_at)",
    // Its webhook endpoints and their deliveries (webhooks::cell).
    webhooks::ENDPOINTS,
    webhooks::DELIVERIES,
    webhooks::DELIVERIES_BY_ENDPOINT,
];

/// Set once the account's usage rows from before cells (D1's `usage_daily`) were added here.
const IMPORTED: &str = "imported_d1_usage";
/// Set once the account's live Idempotency-Key records from D1 (`idempotency_keys`) were
/// copied here.
const IMPORTED_KEYS: &str = "imported_d1_idempotency";

#[durable_object]
pub struct Account {
    db: Sqlite,
    env: Env,
    /// The slots as stored, read once per instance; every change is written through.
    slots: RefCell<Option<Slots>>,
    /// The daily token quota the API last admitted a turn under (kept in `meta` too), for
    /// the `quota.reached` webhook event.
    quota: Cell<Option<u64>>,
    /// A day's total tokens, summed from its usage rows once per instance and kept in step
    /// with every record here (the object is their only writer): a turn's admission checks
    /// the quota without a query.
    day_tokens: RefCell<Option<(String, u64)>>,
}

impl worker::DurableObject for Account {
    fn new(state: State, env: Env) -> Self {
        Account {
            db: Sqlite::new(state.storage(), &SCHEMA),
            env,
            slots: RefCell::new(None),
            quota: Cell::new(None),
            day_tokens: RefCell::new(None),
        }
    }

    /// The same protocol as the RPC method `call` (which the Worker uses), over HTTP.
    async fn fetch(&self, mut req: Request) -> worker::Result<Response> {
        Response::ok(self.rpc(&req.text().await?).await?)
    }

    /// Webhook deliveries that a lost queue message or a dead runtime left behind.
    async fn alarm(&self) -> worker::Result<Response> {
        self.webhooks()
            .sweep(Date::now().as_millis() as i64)
            .await?;
        Response::ok("")
    }
}

crate::platform::object::rpc_method!(Account);

/// The counts of a usage row or group.
fn counts(row: &Value) -> UsageCounts {
    UsageCounts {
        requests: int(row, "requests"),
        prompt_tokens: int(row, "prompt_tokens"),
        completion_tokens: int(row, "completion_tokens"),
        total_tokens: int(row, "total_tokens"),
        estimated_tokens: int(row, "estimated_tokens"),
    }
}

impl Account {
    async fn rpc(&self, op: &str) -> worker::Result<String> {
        let now = Date::now().as_millis() as i64;
        let answer = match serde_json::from_str::<Op>(op)? {
            Op::Admit {
                user_id,
                lease,
                max,
                ttl_ms,
                day,
                quota,
                hold,
            } => {
                self.import(&user_id).await?;
                self.keep_quota(quota)?;
                let day = Day {
                    used: self.tokens_on(&day)?,
                    quota,
                };
                let admission = self.with_slots(|s| s.admit(&lease, max, ttl_ms, day, now))?;
                if admission == Admission::Admitted && !hold {
                    self.store_slot(&lease, now, ttl_ms)?;
                }
                serde_json::to_string(&admission)?
            }
            Op::Confirm { lease, ttl_ms } => {
                let held = self.with_slots(|s| s.confirm(&lease, ttl_ms, now))?;
                if held {
                    self.store_slot(&lease, now, ttl_ms)?;
                }
                held.to_string()
            }
            Op::Release { lease } => {
                self.release(&lease)?;
                "true".to_owned()
            }
            Op::Record {
                lease,
                day,
                usage,
                delta,
                event,
            } => {
                if let Some(lease) = lease {
                    self.release(&lease)?;
                }
                // Today's tokens before this record, read only when a quota can be crossed.
                let quota = self.quota()?.filter(|q| *q > 0);
                let before = quota.map(|_| self.tokens_on(&day)).transpose()?;
                let added = delta.prompt_tokens + delta.completion_tokens;
                self.add(&day, &usage, delta)?;
                let event = event.and_then(|e| webhooks::message_event(&e));
                let settings = event
                    .as_ref()
                    .map_or(Value::Null, |e| e["settings"].clone());
                if let Some(event) = &event {
                    self.webhooks().emit(&usage.user_id, event, now).await?;
                }
                // The day's tokens crossed the quota with this record: once a day.
                let after = before.map(|b| (b as i64 + added).max(0) as u64);
                let crossed = quota
                    .zip(before.zip(after))
                    .filter(|(q, (before, after))| before < q && after >= q);
                if let Some((quota, (_, after))) = crossed {
                    let event = serde_json::json!({
                        "type": "quota.reached",
                        "data": { "day": day, "quota": quota, "totalTokens": after },
                        "settings": settings,
                    });
                    self.webhooks().emit(&usage.user_id, &event, now).await?;
                }
                "true".to_owned()
            }
            Op::Webhooks { user_id, call } => self
                .webhooks()
                .call(&user_id, &call, now)
                .await?
                .to_string(),
            Op::Deliver { delivery_id } => {
                self.webhooks().deliver(&delivery_id, now).await?;
                "true".to_owned()
            }
            Op::Report {
                user_id,
                api_key_id,
                query,
            } => {
                self.import(&user_id).await?;
                self.report(api_key_id.as_deref(), &query)?.to_string()
            }
            Op::EndUserAdmit {
                lease,
                day,
                end_user_id,
                limit,
                hold,
                ttl_ms,
            } => {
                self.db.run(
                    "DELETE FROM end_user_holds WHERE expires_ms <= ?",
                    vec![now.into()],
                )?;
                let rows: Vec<Value> = self.db.rows(
                    "SELECT (SELECT COALESCE(SUM(total_tokens), 0) FROM usage \
                       WHERE day = ?1 AND end_user_id = ?2) + \
                     (SELECT COALESCE(SUM(tokens), 0) FROM end_user_holds \
                       WHERE day = ?1 AND end_user_id = ?2) AS n",
                    vec![text(&day), text(&end_user_id)],
                )?;
                let used = rows.first().map_or(0, |r| int(r, "n")).max(0) as u64;
                let admitted = used < limit;
                if admitted {
                    self.db.run(
                        "INSERT OR REPLACE INTO end_user_holds \
                         (lease, end_user_id, day, tokens, expires_ms) VALUES (?, ?, ?, ?, ?)",
                        vec![
                            text(&lease),
                            text(&end_user_id),
                            text(&day),
                            (hold.min(i64::MAX as u64) as i64).into(),
                            (now + ttl_ms).into(),
                        ],
                    )?;
                }
                admitted.to_string()
            }
            Op::ForgetEndUser {
                user_id,
                end_user_id,
                conversation_ids,
            } => {
                self.import(&user_id).await?;
                self.import_keys(&user_id, now).await?;
                self.forget_end_user(&end_user_id, &conversation_ids)?
                    .to_string()
            }
            Op::ClaimKey {
                user_id,
                key,
                fingerprint,
                lease_ms,
                retention_ms,
            } => {
                self.import_keys(&user_id, now).await?;
                let held = self.claim_key(&key, &fingerprint, now, lease_ms, retention_ms)?;
                held.map_or_else(|| "null".to_owned(), |h| h.to_string())
            }
            Op::RememberKey { key, response } => {
                self.db.run(
                    "UPDATE idempotency SET response = ? WHERE key = ?",
                    vec![text(&response), text(&key)],
                )?;
                "true".to_owned()
            }
            Op::ReleaseKey { key } => {
                self.db.run(
                    "DELETE FROM idempotency WHERE key = ? AND response IS NULL",
                    vec![text(&key)],
                )?;
                "true".to_owned()
            }
        };
        Ok(answer)
    }

    /// See `Op::ForgetEndUser`. One synchronous run: the merge and the removals land together.
    fn forget_end_user(
        &self,
        end_user_id: &str,
        conversation_ids: &[String],
    ) -> worker::Result<Value> {
        let count = |sql: &str, args: Vec<SqlStorageValue>| -> worker::Result<i64> {
            let rows: Vec<Value> = self.db.rows(sql, args)?;
            Ok(rows.first().map_or(0, |r| int(r, "n")))
        };
        let usage_rows = count(
            "SELECT COUNT(*) AS n FROM usage WHERE end_user_id = ?",
            vec![text(end_user_id)],
        )?;
        self.db.run(
            &format!(
                "INSERT INTO usage (day, api_key_id, twin_id, end_user_id, requests, prompt_tokens, \
                   completion_tokens, total_tokens, estimated_tokens) \
                 SELECT day, api_key_id, twin_id, '', requests, prompt_tokens, completion_tokens, \
                   total_tokens, estimated_tokens FROM usage WHERE end_user_id = ?1 \
                 ON CONFLICT (day, api_key_id, twin_id, end_user_id) DO UPDATE SET {}",
                spend::ADD_COUNTS
            ),
            vec![text(end_user_id)],
        )?;
        self.db.run(
            "DELETE FROM usage WHERE end_user_id = ?",
            vec![text(end_user_id)],
        )?;
        // The rows moved, their sums did not; read again all the same.
        self.day_tokens.borrow_mut().take();
        // What names them: their conversations' ids, and their id as events carry it.
        let mut marks: Vec<String> = conversation_ids.to_vec();
        marks.push(format!("\"endUserId\":{}", Value::from(end_user_id)));
        let (mut deliveries, mut keys) = (0, 0);
        for mark in &marks {
            let by =
                |table: &str, column: &str| format!("FROM {table} WHERE instr({column}, ?) > 0");
            let m = || vec![text(mark)];
            deliveries += count(
                &format!("SELECT COUNT(*) AS n {}", by("webhook_deliveries", "body")),
                m(),
            )?;
            self.db
                .run(&format!("DELETE {}", by("webhook_deliveries", "body")), m())?;
            keys += count(
                &format!("SELECT COUNT(*) AS n {}", by("idempotency", "response")),
                m(),
            )?;
            self.db
                .run(&format!("DELETE {}", by("idempotency", "response")), m())?;
        }
        Ok(serde_json::json!({
            "usageRows": usage_rows,
            "webhookDeliveries": deliveries,
            "idempotencyKeys": keys,
        }))
    }

    /// Keeps the quota the API admits under, written only when it changes.
    fn keep_quota(&self, quota: u64) -> worker::Result<()> {
        if self.quota.get() == Some(quota) {
            return Ok(());
        }
        self.db.run(
            "INSERT OR REPLACE INTO meta (k, v) VALUES ('quota', ?)",
            vec![text(&quota.to_string())],
        )?;
        self.quota.set(Some(quota));
        Ok(())
    }

    fn quota(&self) -> worker::Result<Option<u64>> {
        if self.quota.get().is_none() {
            let rows: Vec<Value> = self
                .db
                .rows("SELECT v FROM meta WHERE k = 'quota'", vec![])?;
            self.quota
                .set(rows.first().and_then(|r| string(r, "v").parse().ok()));
        }
        Ok(self.quota.get())
    }

    fn webhooks(&self) -> Webhooks<'_> {
        Webhooks {
            db: &self.db,
            env: &self.env,
        }
    }

    /// Runs `f` on the slots, read from storage the first time.
    fn with_slots<T>(&self, f: impl FnOnce(&mut Slots) -> T) -> worker::Result<T> {
        let mut slots = self.slots.borrow_mut();
        if slots.is_none() {
            let stored: Vec<Value> = self
                .db
                .rows("SELECT lease, expires_ms FROM slots", vec![])?;
            *slots =
                Some(Slots::from_leases(stored.iter().map(|l| {
                    (string(l, "lease").to_owned(), int(l, "expires_ms"))
                })));
        }
        Ok(f(slots.as_mut().expect("loaded above")))
    }

    /// Writes a slot through to storage, kept for `ttl_ms` from `now` (and drops the expired
    /// ones there).
    fn store_slot(&self, lease: &str, now: i64, ttl_ms: i64) -> worker::Result<()> {
        self.db
            .run("DELETE FROM slots WHERE expires_ms <= ?", vec![now.into()])?;
        self.db.run(
            "INSERT OR REPLACE INTO slots (lease, expires_ms) VALUES (?, ?)",
            vec![text(lease), (now + ttl_ms).into()],
        )
    }

    /// A generation ended or was refused: its slot and its end user's hold go.
    fn release(&self, lease: &str) -> worker::Result<()> {
        self.with_slots(|s| s.release(lease))?;
        self.db
            .run("DELETE FROM slots WHERE lease = ?", vec![text(lease)])?;
        self.db.run(
            "DELETE FROM end_user_holds WHERE lease = ?",
            vec![text(lease)],
        )
    }

    fn tokens_on(&self, day: &str) -> worker::Result<u64> {
        if let Some((_, n)) = self.day_tokens.borrow().as_ref().filter(|(d, _)| d == day) {
            return Ok(*n);
        }
        let rows: Vec<Value> = self.db.rows(
            "SELECT SUM(total_tokens) AS n FROM usage WHERE day = ?",
            vec![text(day)],
        )?;
        let n = rows.first().map_or(0, |r| int(r, "n")).max(0) as u64;
        *self.day_tokens.borrow_mut() = Some((day.to_owned(), n));
        Ok(n)
    }

    fn add(&self, day: &str, t: &TurnUsage, d: UsageDelta) -> worker::Result<()> {
        self.upsert(
            [
                day,
                t.api_key_id.as_deref().unwrap_or(""),
                &t.twin_id,
                t.end_user_id.as_deref().unwrap_or(""),
            ],
            d,
        )
    }

    fn upsert(&self, group: [&str; 4], d: UsageDelta) -> worker::Result<()> {
        let total = d.prompt_tokens + d.completion_tokens;
        let mut args: Vec<SqlStorageValue> = group.iter().map(|v| text(v)).collect();
        args.extend([
            d.requests.into(),
            d.prompt_tokens.into(),
            d.completion_tokens.into(),
            total.into(),
            d.estimated_tokens.into(),
        ]);
        self.db.run(
            &format!(
                "INSERT INTO usage (day, api_key_id, twin_id, end_user_id, requests, prompt_tokens, \
                   completion_tokens, total_tokens, estimated_tokens) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) \
                 ON CONFLICT (day, api_key_id, twin_id, end_user_id) DO UPDATE SET {}",
                spend::ADD_COUNTS
            ),
            args,
        )?;
        if let Some((day, n)) = self.day_tokens.borrow_mut().as_mut() {
            if day == group[0] {
                *n = (*n as i64 + total).max(0) as u64;
            }
        }
        Ok(())
    }

    fn report(&self, api_key_id: Option<&str>, q: &UsageQuery) -> worker::Result<Value> {
        let (column, _) = q.group_by.column_and_field();
        let key_filter = if api_key_id.is_some() {
            " AND api_key_id = ?"
        } else {
            ""
        };
        let mut args = vec![text(&q.from), text(&q.to)];
        args.extend(api_key_id.map(text));
        let groups: Vec<Value> = self.db.rows(
            &format!(
                "SELECT {column} AS k, SUM(requests) AS requests, SUM(prompt_tokens) AS prompt_tokens, \
                   SUM(completion_tokens) AS completion_tokens, SUM(total_tokens) AS total_tokens, \
                   SUM(estimated_tokens) AS estimated_tokens \
                 FROM usage WHERE day BETWEEN ? AND ?{key_filter} GROUP BY {column} ORDER BY {column}"
            ),
            args,
        )?;
        let (rows, totals) = spend::report(
            q.group_by,
            groups
                .iter()
                .map(|g| (string(g, "k").to_owned(), counts(g))),
        );
        Ok(serde_json::json!({ "rows": rows, "totals": totals }))
    }

    /// Claims `key` for a request with `fingerprint`, or answers the record that holds it. A
    /// record past its retention, or one whose request died before remembering anything (its
    /// lease ran out), is taken over. Synchronous: of racing claims exactly one wins.
    fn claim_key(
        &self,
        key: &str,
        fingerprint: &str,
        now: i64,
        lease_ms: i64,
        retention_ms: i64,
    ) -> worker::Result<Option<Value>> {
        self.db.run(
            "DELETE FROM idempotency WHERE expires_at < ?",
            vec![now.into()],
        )?;
        let held: Vec<Value> = self.db.rows(
            "SELECT fingerprint, response FROM idempotency \
             WHERE key = ? AND (response IS NOT NULL OR lease_until >= ?)",
            vec![text(key), now.into()],
        )?;
        if let Some(held) = held.into_iter().next() {
            return Ok(Some(held));
        }
        self.db.run(
            "INSERT OR REPLACE INTO idempotency (key, fingerprint, response, lease_until, expires_at) \
             VALUES (?, ?, NULL, ?, ?)",
            vec![
                text(key),
                text(fingerprint),
                (now + lease_ms).into(),
                (now + retention_ms).into(),
            ],
        )?;
        Ok(None)
    }

    /// Once per account: its live Idempotency-Key records from before cells, kept in D1, are
    /// copied here (a record claimed here meanwhile wins), so a retry across the deploy that
    /// moved them still replays.
    async fn import_keys(&self, user_id: &str, now: i64) -> worker::Result<()> {
        if self.db.is_marked(IMPORTED_KEYS)? {
            return Ok(());
        }
        let rows: Vec<Value> = Store::new(&self.env)?
            .all(
                "SELECT key, fingerprint, response, lease_until, expires_at FROM idempotency_keys \
                 WHERE user_id = ?1 AND expires_at >= ?2",
                &params![user_id, now],
            )
            .await?;
        if self.db.is_marked(IMPORTED_KEYS)? {
            return Ok(());
        }
        for r in &rows {
            self.db.run(
                "INSERT OR IGNORE INTO idempotency (key, fingerprint, response, lease_until, expires_at) \
                 VALUES (?, ?, ?, ?, ?)",
                vec![
                    text(string(r, "key")),
                    text(string(r, "fingerprint")),
                    opt_text(r["response"].as_str()),
                    int(r, "lease_until").into(),
                    int(r, "expires_at").into(),
                ],
            )?;
        }
        self.db.mark(IMPORTED_KEYS)
    }

    /// Once per account: the usage it recorded in D1 before it had a cell is added to its own
    /// (added, not copied over, so turns recorded here meanwhile are kept; the flag is set in
    /// the same synchronous run as the rows, so two racing imports add them once).
    async fn import(&self, user_id: &str) -> worker::Result<()> {
        if self.db.is_marked(IMPORTED)? {
            return Ok(());
        }
        let store = Store::new(&self.env)?;
        let rows: Vec<Value> = store
            .all(
                "SELECT day, api_key_id, twin_id, end_user_id, requests, prompt_tokens, \
                   completion_tokens, total_tokens, estimated_tokens FROM usage_daily WHERE user_id = ?1",
                &params![user_id],
            )
            .await?;
        if self.db.is_marked(IMPORTED)? {
            return Ok(());
        }
        for r in &rows {
            let group = ["day", "api_key_id", "twin_id", "end_user_id"].map(|c| string(r, c));
            let c = counts(r);
            let delta = UsageDelta {
                requests: c.requests,
                prompt_tokens: c.prompt_tokens,
                completion_tokens: c.completion_tokens,
                estimated_tokens: c.estimated_tokens,
            };
            self.upsert(group, delta)?;
        }
        self.db.mark(IMPORTED)
    }
}
