//! The account object's webhooks: its endpoints and deliveries in its SQLite, the routes' calls,
//! an event's fan-out, one delivery attempt, and the sweep that re-sends what a lost queue
//! message or a dead runtime left behind. Deliveries go through the `WEBHOOKS` queue; its
//! consumer (`lib.rs`) asks this object to attempt each one, so every state change of a
//! delivery is one synchronous SQL run here.

use futures::future::{select, Either};
use serde_json::{json, Value};
use std::time::Duration;
use worker::{AbortController, Delay, Env, Fetch, Headers, Method, Request, RequestInit};

use crate::http::error::ApiError;
use crate::idempotency::model::Remembered;
use crate::platform::crypto::random_bytes;
use crate::platform::ids;
use crate::platform::sqlite::{int, opt_int, opt_text, string, text, Sqlite};
use crate::platform::time::rfc3339_ms;
use crate::webhooks::model::{self as wh, Settings};

pub const ENDPOINTS: &str = "CREATE TABLE IF NOT EXISTS webhook_endpoints (
    id TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    events TEXT NOT NULL,
    description TEXT,
    secret TEXT NOT NULL,
    enabled INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    failing_since INTEGER) WITHOUT ROWID";
pub const DELIVERIES: &str = "CREATE TABLE IF NOT EXISTS webhook_deliveries (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    endpoint_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    body TEXT NOT NULL,
    settings TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    response_code INTEGER,
    last_error TEXT,
    next_at INTEGER NOT NULL,
    lease_until INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL)";
pub const DELIVERIES_BY_ENDPOINT: &str =
    "CREATE INDEX IF NOT EXISTS webhook_deliveries_by_endpoint \
    ON webhook_deliveries (endpoint_id, created_at)";

/// Why a delivery to a disabled endpoint ends without an attempt.
const DISABLED: &str = "the endpoint is disabled";

/// The event of a message's end, from what the conversation's object sends (`{type, message,
/// twinId, endUserId, settings}`): `{type, data: {message, conversationId, twinId, endUserId,
/// usage}, settings}`.
pub fn message_event(text: &str) -> Option<Value> {
    let sent: Value = serde_json::from_str(text).ok()?;
    let message = &sent["message"];
    Some(json!({
        "type": sent["type"],
        "data": {
            "message": message,
            "conversationId": message["conversationId"],
            "twinId": sent["twinId"],
            "endUserId": sent["endUserId"],
            "usage": message["usage"],
        },
        "settings": sent["settings"],
    }))
}

/// A delivery whose queue message has not come this long after it was due is sent again by
/// the sweep (the message was lost, or the runtime died with it).
const SWEEP_GRACE_MS: i64 = 10_000;
/// An attempt still `sending` after this long died with its runtime: it is tried again.
const ATTEMPT_LEASE_MS: i64 = wh::TIMEOUT_MS as i64 + 15_000;
/// The longest delay a queue message may have; a longer wait ends with the sweep.
const MAX_QUEUE_DELAY_SECS: u64 = 43_200;
/// Finished deliveries are kept this long (the delivery log), then dropped.
const KEEP_MS: i64 = 30 * 24 * 3600 * 1000;

pub struct Webhooks<'a> {
    pub db: &'a Sqlite,
    pub env: &'a Env,
}

/// Answers in `idempotency::model::Remembered`'s form, which the API turns into its reply.
fn error(e: &ApiError) -> Value {
    json!(Remembered::error(e))
}

fn ok(status: u16, data: Value) -> Value {
    json!(Remembered::Json { status, data })
}

impl Webhooks<'_> {
    /// A webhook route's call (`webhooks::handlers::call`), answered in the envelope's terms.
    pub async fn call(&self, user_id: &str, call: &Value, now: i64) -> worker::Result<Value> {
        Ok(match self.route(user_id, call, now).await {
            Ok(v) => v,
            Err(e) => error(&e),
        })
    }

    async fn route(&self, user_id: &str, call: &Value, now: i64) -> Result<Value, ApiError> {
        let settings = Settings::from_json(&call["settings"]);
        let id = call["id"].as_str().unwrap_or_default();
        let e = |e: worker::Error| ApiError::internal(e);
        match call["action"].as_str().unwrap_or_default() {
            "list" => {
                let rows = self.endpoints(None).map_err(e)?;
                Ok(ok(
                    200,
                    rows.iter().map(|r| wh::endpoint_view(r, None)).collect(),
                ))
            }
            "create" => {
                let input = wh::endpoint_input(&call["body"], true, &settings)?;
                if self.endpoints(None).map_err(e)?.len() >= wh::MAX_ENDPOINTS {
                    return Err(ApiError::Conflict(format!(
                        "An account has at most {} webhook endpoints",
                        wh::MAX_ENDPOINTS
                    )));
                }
                let id = ids::prefixed("we", &random_bytes::<16>());
                let secret = wh::new_secret(&random_bytes::<24>());
                let events = json!(input.events.unwrap_or_default()).to_string();
                self.db
                    .run(
                        "INSERT INTO webhook_endpoints (id, url, events, description, secret, enabled, \
                           created_at, created_ms) VALUES (?, ?, ?, ?, ?, 1, ?, ?)",
                        vec![
                            text(&id),
                            text(&input.url.unwrap_or_default()),
                            text(&events),
                            opt_text(input.description.as_deref()),
                            text(&secret),
                            text(&rfc3339_ms(now)),
                            now.into(),
                        ],
                    )
                    .map_err(e)?;
                Ok(ok(
                    201,
                    wh::endpoint_view(&self.endpoint(&id)?, Some(&secret)),
                ))
            }
            "get" => Ok(ok(200, wh::endpoint_view(&self.endpoint(id)?, None))),
            "update" => {
                self.endpoint(id)?;
                let input = wh::endpoint_input(&call["body"], false, &settings)?;
                let events = input.events.map(|ev| json!(ev).to_string());
                let enabled = input.enabled.map(i64::from);
                self.db
                    .run(
                        "UPDATE webhook_endpoints SET url = COALESCE(?, url), events = COALESCE(?, events), \
                           description = COALESCE(?, description), enabled = COALESCE(?, enabled), \
                           failing_since = CASE WHEN ? = 1 THEN NULL ELSE failing_since END WHERE id = ?",
                        vec![
                            opt_text(input.url.as_deref()),
                            opt_text(events.as_deref()),
                            opt_text(input.description.as_deref()),
                            opt_int(enabled),
                            opt_int(enabled),
                            text(id),
                        ],
                    )
                    .map_err(e)?;
                Ok(ok(200, wh::endpoint_view(&self.endpoint(id)?, None)))
            }
            "delete" => {
                self.endpoint(id)?;
                for table in [
                    "webhook_deliveries WHERE endpoint_id",
                    "webhook_endpoints WHERE id",
                ] {
                    self.db
                        .run(&format!("DELETE FROM {table} = ?"), vec![text(id)])
                        .map_err(e)?;
                }
                Ok(ok(200, json!({ "id": id, "deleted": true })))
            }
            "rotate" => {
                self.endpoint(id)?;
                let secret = wh::new_secret(&random_bytes::<24>());
                self.db
                    .run(
                        "UPDATE webhook_endpoints SET secret = ? WHERE id = ?",
                        vec![text(&secret), text(id)],
                    )
                    .map_err(e)?;
                Ok(ok(
                    200,
                    wh::endpoint_view(&self.endpoint(id)?, Some(&secret)),
                ))
            }
            "deliveries" => {
                self.endpoint(id)?;
                let limit = match call["limit"].as_str() {
                    None => 20,
                    Some(l) => l
                        .parse::<i64>()
                        .ok()
                        .filter(|n| (1..=100).contains(n))
                        .ok_or_else(|| ApiError::field("limit", "must be 1 to 100"))?,
                };
                let rows: Vec<Value> = self
                    .db
                    .rows(
                        "SELECT * FROM webhook_deliveries WHERE endpoint_id = ? \
                         ORDER BY created_at DESC, id DESC LIMIT ?",
                        vec![text(id), limit.into()],
                    )
                    .map_err(e)?;
                let views: Vec<Value> = rows
                    .iter()
                    .map(|r| wh::delivery_view(r, rfc3339_ms))
                    .collect();
                Ok(ok(200, json!(views)))
            }
            "redeliver" => {
                self.endpoint(id)?;
                let delivery = call["deliveryId"].as_str().unwrap_or_default();
                let found = self.delivery(delivery).map_err(e)?;
                let Some(row) = found.filter(|r| string(r, "endpoint_id") == id) else {
                    return Err(ApiError::NotFound("Delivery"));
                };
                if string(&row, "status") == "sending" {
                    return Err(ApiError::Conflict(
                        "The delivery is being attempted right now".into(),
                    ));
                }
                // One more attempt, at once (a failed one gets no further retries).
                self.db
                    .run(
                        "UPDATE webhook_deliveries SET status = 'pending', next_at = ?, updated_at = ? \
                         WHERE id = ?",
                        vec![now.into(), now.into(), text(delivery)],
                    )
                    .map_err(e)?;
                self.enqueue(user_id, delivery, 0).await.map_err(e)?;
                self.arm().await.map_err(e)?;
                let row = self.delivery(delivery).map_err(e)?.unwrap_or(row);
                Ok(ok(202, wh::delivery_view(&row, rfc3339_ms)))
            }
            _ => Err(ApiError::internal("unknown webhook action")),
        }
    }

    fn endpoints(&self, id: Option<&str>) -> worker::Result<Vec<Value>> {
        match id {
            Some(id) => self.db.rows(
                "SELECT * FROM webhook_endpoints WHERE id = ?",
                vec![text(id)],
            ),
            None => self.db.rows(
                "SELECT * FROM webhook_endpoints ORDER BY created_ms DESC, id DESC",
                vec![],
            ),
        }
    }

    /// The account's endpoint `id`, or 404: another account's ids are simply not here.
    fn endpoint(&self, id: &str) -> Result<Value, ApiError> {
        self.endpoints(Some(id))
            .map_err(ApiError::internal)?
            .into_iter()
            .next()
            .ok_or(ApiError::NotFound("Webhook"))
    }

    fn delivery(&self, id: &str) -> worker::Result<Option<Value>> {
        let rows: Vec<Value> = self.db.rows(
            "SELECT * FROM webhook_deliveries WHERE id = ?",
            vec![text(id)],
        )?;
        Ok(rows.into_iter().next())
    }

    /// An event (`{type, data, settings}`) to every enabled endpoint that listens for it: one
    /// delivery each, stored, then queued. The `webhook-id` (the event's id) is shared.
    pub async fn emit(&self, user_id: &str, event: &Value, now: i64) -> worker::Result<()> {
        let kind = event["type"].as_str().unwrap_or_default();
        if !wh::EVENTS.contains(&kind) {
            return Ok(());
        }
        self.db.run(
            "DELETE FROM webhook_deliveries WHERE updated_at < ? AND status IN ('succeeded', 'failed')",
            vec![(now - KEEP_MS).into()],
        )?;
        let listening: Vec<Value> = self
            .endpoints(None)?
            .into_iter()
            .filter(|e| int(e, "enabled") == 1)
            .filter(|e| {
                serde_json::from_str::<Vec<String>>(string(e, "events"))
                    .is_ok_and(|ev| ev.iter().any(|t| t == kind))
            })
            .collect();
        if listening.is_empty() {
            return Ok(());
        }
        let event_id = ids::prefixed("evt", &random_bytes::<16>());
        let body = wh::payload(kind, &rfc3339_ms(now), &event["data"]);
        let settings = event["settings"].to_string();
        let mut queued = Vec::new();
        for endpoint in &listening {
            let id = ids::prefixed("whd", &random_bytes::<16>());
            self.db.run(
                "INSERT INTO webhook_deliveries (id, user_id, endpoint_id, event_id, event_type, body, \
                   settings, status, attempts, next_at, lease_until, created_at, updated_at) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', 0, ?, 0, ?, ?)",
                vec![
                    text(&id),
                    text(user_id),
                    text(string(endpoint, "id")),
                    text(&event_id),
                    text(kind),
                    text(&body),
                    text(&settings),
                    now.into(),
                    now.into(),
                    now.into(),
                ],
            )?;
            queued.push(id);
        }
        // Stored first: a queue message lost from here on is sent again by the sweep.
        self.arm().await?;
        for id in queued {
            let _ = self.enqueue(user_id, &id, 0).await;
        }
        Ok(())
    }

    async fn enqueue(
        &self,
        user_id: &str,
        delivery_id: &str,
        delay_secs: u64,
    ) -> worker::Result<()> {
        // JSON text: a serde_json::Value would cross to JS as a Map, which JSON drops.
        let message = json!({ "userId": user_id, "deliveryId": delivery_id }).to_string();
        let mut builder = worker::MessageBuilder::new(message);
        if delay_secs > 0 {
            builder = builder.delay_seconds(delay_secs.min(MAX_QUEUE_DELAY_SECS) as u32);
        }
        self.env.queue("WEBHOOKS")?.send(builder.build()).await
    }

    /// One attempt of `delivery_id` if it is due and nobody is attempting it (a duplicate or
    /// early queue message does nothing).
    pub async fn deliver(&self, delivery_id: &str, now: i64) -> worker::Result<()> {
        let rows: Vec<Value> = self.db.rows(
            "SELECT d.*, e.url AS url, e.secret AS secret, e.enabled AS enabled \
             FROM webhook_deliveries d LEFT JOIN webhook_endpoints e ON e.id = d.endpoint_id \
             WHERE d.id = ?",
            vec![text(delivery_id)],
        )?;
        let Some(row) = rows.into_iter().next() else {
            return Ok(());
        };
        if string(&row, "status") != "pending" || int(&row, "next_at") > now + 1_000 {
            return Ok(());
        }
        let settings = Settings::from_json(
            &serde_json::from_str(string(&row, "settings")).unwrap_or(Value::Null),
        );
        if int(&row, "enabled") != 1 {
            return self.finish(&row, now, None, Some(DISABLED), None, &settings);
        }
        self.db.run(
            "UPDATE webhook_deliveries SET status = 'sending', lease_until = ?, updated_at = ? WHERE id = ?",
            vec![(now + ATTEMPT_LEASE_MS).into(), now.into(), text(delivery_id)],
        )?;
        let (code, failure) = send(&row, now).await;
        let now = worker::Date::now().as_millis() as i64;
        let attempts = int(&row, "attempts") as u64 + 1;
        let retry = if failure.is_some() {
            settings.retry_after_secs(attempts)
        } else {
            None
        };
        self.finish(&row, now, code, failure.as_deref(), retry, &settings)?;
        if let Some(secs) = retry {
            let _ = self
                .enqueue(string(&row, "user_id"), delivery_id, secs)
                .await;
        }
        self.arm().await
    }

    /// Records an attempt's end: succeeded (`failure` None), pending again after `retry`
    /// seconds, or failed for good; and what it says of the endpoint's health.
    fn finish(
        &self,
        row: &Value,
        now: i64,
        code: Option<u16>,
        failure: Option<&str>,
        retry: Option<u64>,
        settings: &Settings,
    ) -> worker::Result<()> {
        let status = match (failure, retry) {
            (None, _) => "succeeded",
            (Some(_), Some(_)) => "pending",
            (Some(_), None) => "failed",
        };
        let next_at = now + retry.unwrap_or(0) as i64 * 1000;
        self.db.run(
            "UPDATE webhook_deliveries SET status = ?, attempts = attempts + ?, response_code = ?, \
               last_error = ?, next_at = ?, updated_at = ? WHERE id = ?",
            vec![
                text(status),
                i64::from(failure != Some(DISABLED)).into(),
                opt_int(code.map(i64::from)),
                opt_text(failure),
                next_at.into(),
                now.into(),
                text(string(row, "id")),
            ],
        )?;
        let endpoint = text(string(row, "endpoint_id"));
        if failure.is_none() {
            return self.db.run(
                "UPDATE webhook_endpoints SET failing_since = NULL WHERE id = ?",
                vec![endpoint],
            );
        }
        if failure == Some(DISABLED) {
            return Ok(());
        }
        // Failing since its first failure after a success; disabled once that is 5 days old.
        self.db.run(
            "UPDATE webhook_endpoints SET failing_since = COALESCE(failing_since, ?), \
               enabled = CASE WHEN ? - COALESCE(failing_since, ?) >= ? THEN 0 ELSE enabled END \
             WHERE id = ?",
            vec![
                now.into(),
                now.into(),
                now.into(),
                settings.disable_after_ms.into(),
                endpoint,
            ],
        )
    }

    /// Re-queues what should have been attempted by now and was not, then re-arms.
    pub async fn sweep(&self, now: i64) -> worker::Result<()> {
        let stale: Vec<Value> = self.db.rows(
            "SELECT id, user_id FROM webhook_deliveries \
             WHERE (status = 'pending' AND next_at + ? <= ?) OR (status = 'sending' AND lease_until <= ?)",
            vec![SWEEP_GRACE_MS.into(), now.into(), now.into()],
        )?;
        for row in &stale {
            self.db.run(
                "UPDATE webhook_deliveries SET status = 'pending', next_at = MIN(next_at, ?) WHERE id = ?",
                vec![now.into(), text(string(row, "id"))],
            )?;
            let _ = self
                .enqueue(string(row, "user_id"), string(row, "id"), 0)
                .await;
        }
        self.arm_at(now + SWEEP_GRACE_MS).await
    }

    /// The alarm at the next moment the sweep may have work.
    async fn arm(&self) -> worker::Result<()> {
        self.arm_at(0).await
    }

    async fn arm_at(&self, not_before: i64) -> worker::Result<()> {
        let next: Vec<Value> = self.db.rows(
            "SELECT MIN(CASE status WHEN 'pending' THEN next_at + ? ELSE lease_until END) AS at \
             FROM webhook_deliveries WHERE status IN ('pending', 'sending')",
            vec![SWEEP_GRACE_MS.into()],
        )?;
        let Some(at) = next.first().and_then(|r| r["at"].as_i64()) else {
            return Ok(());
        };
        let at = at.max(not_before);
        let storage = self.db.storage();
        match storage.get_alarm().await? {
            Some(current) if current <= at && current > worker::Date::now().as_millis() as i64 => {
                Ok(())
            }
            _ => {
                let offset = at - worker::Date::now().as_millis() as i64;
                storage.set_alarm(offset.max(1)).await
            }
        }
    }
}

/// One signed POST (Standard Webhooks headers) under the 15 s limit: the status, and why it
/// failed (`None`: a 2xx).
async fn send(row: &Value, now: i64) -> (Option<u16>, Option<String>) {
    let timestamp = now / 1000;
    let (id, body) = (string(row, "event_id"), string(row, "body"));
    let Some(signature) = wh::sign(string(row, "secret"), id, timestamp, body) else {
        return (None, Some("the endpoint's secret is unreadable".into()));
    };
    let headers = Headers::new();
    for (k, v) in [
        ("Content-Type", "application/json"),
        ("User-Agent", "TwinExpert-Webhooks/1"),
        ("webhook-id", id),
        ("webhook-timestamp", &timestamp.to_string()),
        ("webhook-signature", &signature),
    ] {
        let _ = headers.set(k, v);
    }
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_headers(headers)
        .with_body(Some(body.into()));
    let Ok(request) = Request::new_with_init(string(row, "url"), &init) else {
        return (None, Some("the URL cannot be requested".into()));
    };
    let controller = AbortController::default();
    let signal = controller.signal();
    let fetch = Fetch::Request(request);
    let sending = Box::pin(fetch.send_with_signal(&signal));
    let timeout = Box::pin(Delay::from(Duration::from_millis(wh::TIMEOUT_MS)));
    let outcome = select(sending, timeout).await;
    match outcome {
        Either::Left((Ok(response), _)) => {
            let code = response.status_code();
            let failure =
                (!(200..300).contains(&code)).then(|| format!("the endpoint answered {code}"));
            (Some(code), failure)
        }
        Either::Left((Err(_), _)) => (None, Some("the endpoint could not be reached".into())),
        Either::Right(_) => {
            controller.abort();
            (None, Some("no answer within 15 s".into()))
        }
    }
}
