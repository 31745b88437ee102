//! The conversation's Durable Object: one instance per conversation owns its messages and its
//! running generation.
//!
//! A turn is started by a request (`Op::Start`), which stores the question and the reply
//! (status `generating`, event 1 logged) and starts the model call inside the object, then
//! answers at once. The call belongs to the object, not to the request: the object keeps an
//! alarm armed as a heartbeat while it runs (the platform evicts an object only after a spell
//! with no event at all, and a Worker's `waitUntil` work is cut ~30 s after its client leaves,
//! so neither may carry a generation). The same alarm is the watchdog: if the object dies
//! mid-generation, it fires in the next instance, which finds the reply still `generating` with
//! nothing running in its memory and settles it as interrupted. Every request that touches the
//! conversation does the same check first, so nothing stays `generating`.
//!
//! Every event is logged in the object's SQLite as it is sent; readers (the starting request
//! and any resumed ones) are TransformStreams the events are written into.

use futures::channel::oneshot;
use serde::Serialize;
use serde_json::Value;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;
use worker::wasm_bindgen_futures::spawn_local;
use worker::{durable_object, AbortController, Date, Delay, Env, Request, Response, State};

use crate::conversations::export;
use crate::conversations::model::{
    self as conv, EventLog, Feedback, Message, MessageUsage, Op, Page, Refusal, Role, Status,
    TurnRequest, TurnResult, TurnSettings, ROW_FLUSH_MS,
};
use crate::http::cursor::{Cursor, PageRequest};
use crate::http::error::ApiError;
use crate::knowledge::model as knowledge;
use crate::knowledge::protocol as knowledge_protocol;
use crate::llm::chat;
use crate::llm::sse;
use crate::llm::upstream::{Progress, Upstream};
use crate::platform::crypto::random_bytes;
use crate::platform::d1::Store;
use crate::platform::ids;
use crate::platform::time;
use crate::spend::gate;
use crate::spend::model as spend;

use crate::conversations::storage::{Storage, TurnMeta};
use crate::conversations::suggestions::{self, Splitter};
use crate::platform::event_stream::{self as readers, Ignore, Readers};

/// The heartbeat while a generation runs, and the watchdog's delay after a restart.
const HEARTBEAT_MS: i64 = 5_000;
/// The latest a started turn's slot is confirmed, answer or not: well inside the hold
/// (`spend::gate::HOLD_MS`), which would otherwise lapse under a slow model.
const CONFIRM_BY_MS: u64 = 5_000;
/// The text of a running reply is written to its row at least this often…
const FLUSH_EVERY_MS: i64 = 250;
/// …or once this many bytes have arrived since the last write.
const FLUSH_EVERY_BYTES: usize = 2048;
/// The most history rows read before trimming to the token budget.
const HISTORY_ROWS: u64 = 100;
/// The most messages an export holds (far more than any conversation a person has).
const EXPORT_ROWS: u64 = 100_000;

/// The generation this instance is running.
struct Live {
    user: Message,
    reply: Message,
    log: EventLog,
    readers: Readers,
    /// Plain (non-streamed) requests waiting for the end of the turn.
    waiters: Vec<oneshot::Sender<Result<TurnResult, Refusal>>>,
    controller: Option<AbortController>,
    finished: bool,
    started_ms: i64,
    prompt_estimate: i64,
    /// The turn's output cap (`MAX_OUTPUT_TOKENS`): what its reported usage is held to.
    max_tokens: u64,
    meta: TurnMeta,
    flushed_ms: i64,
    unflushed_bytes: usize,
    /// Keeps the suggestions block out of the reply's text as it streams.
    split: Splitter,
    /// Told when the model's answer begins: the slot's confirmation waits for it.
    begun: Option<oneshot::Sender<()>>,
}

#[durable_object]
pub struct Conversation {
    turns: Rc<Turns>,
}

/// The object's state, shared with the generation it runs.
struct Turns {
    env: Env,
    storage: Storage,
    live: RefCell<Option<Live>>,
    ignore: Ignore,
    /// Whether this instance has settled what a dead one left `generating`.
    interrupted_settled: Cell<bool>,
}

impl From<worker::Error> for Refusal {
    fn from(e: worker::Error) -> Refusal {
        Refusal::Internal {
            detail: format!("conversation object: {e}"),
        }
    }
}

/// What an op answers: `Result<T, Refusal>` as JSON (over RPC or `fetch`), or an event stream
/// (over `fetch` only).
enum Answer {
    Json(String),
    Stream(Response),
}

fn answer<T: Serialize>(outcome: Result<T, Refusal>) -> worker::Result<Answer> {
    Ok(Answer::Json(serde_json::to_string(&outcome)?))
}

/// An answer of its own (a stream, a finished turn), or the refusal as `answer` writes it.
fn answer_or_refusal(outcome: Result<Answer, Refusal>) -> worker::Result<Answer> {
    outcome.or_else(|refusal| answer::<()>(Err(refusal)))
}

fn now_ms() -> i64 {
    Date::now().as_millis() as i64
}

impl worker::DurableObject for Conversation {
    fn new(state: State, env: Env) -> Self {
        Conversation {
            turns: Rc::new(Turns {
                env,
                storage: Storage::new(state.storage()),
                live: RefCell::new(None),
                ignore: Ignore::default(),
                interrupted_settled: Cell::new(false),
            }),
        }
    }

    /// Every op; the Worker sends here the ones answered with an event stream.
    async fn fetch(&self, mut req: Request) -> worker::Result<Response> {
        match self.handle(&req.text().await?).await? {
            Answer::Json(json) => Response::ok(json),
            Answer::Stream(resp) => Ok(resp),
        }
    }

    /// One alarm serves three jobs, armed for the soonest: the heartbeat while a generation
    /// runs (and the watchdog after a restart), the conversation's D1 row when it is due, and
    /// the compaction of finished logs past their replay window.
    async fn alarm(&self) -> worker::Result<Response> {
        let turns = &self.turns;
        turns.storage.alarm_fired();
        let now = now_ms();
        let mut next: Option<i64> = None;
        if turns.is_running() {
            // The heartbeat: an event every few seconds while the generation runs.
            next = Some(now + HEARTBEAT_MS);
        } else {
            // Nothing runs here: a `generating` reply was left by an instance that died.
            let _ = turns.settle_interrupted();
            // SPEC §14: nothing grows without bound.
            if let Some(after) = turns.storage.compaction_after()? {
                let oldest = turns.storage.compact(&time::rfc3339_ms(now - after))?;
                next = oldest
                    .as_deref()
                    .and_then(time::parse_rfc3339_ms)
                    .map(|start| start + after);
            }
        }
        if let Some(due) = turns.flush_row(now).await? {
            next = Some(next.map_or(due, |n| n.min(due)));
        }
        if let Some(at) = next {
            let now = now_ms();
            turns.storage.set_alarm(now, (at - now).max(1000)).await?;
        }
        Response::ok("")
    }
}

// The ops answered with JSON come over RPC (`platform::object`): a text in, a text out.
crate::platform::object::rpc_method!(Conversation);

impl Conversation {
    /// One `conversations::model::Op` as JSON; its `Result<T, Refusal>` as JSON.
    async fn rpc(&self, op: &str) -> worker::Result<String> {
        match self.handle(op).await? {
            Answer::Json(json) => Ok(json),
            Answer::Stream(_) => Err(worker::Error::RustError("a stream answer over RPC".into())),
        }
    }
}

impl Conversation {
    async fn handle(&self, op: &str) -> worker::Result<Answer> {
        let turns = &self.turns;
        match serde_json::from_str::<Op>(op)? {
            Op::Start {
                turn,
                stream,
                background,
            } => Turns::start(turns, *turn, stream, background).await,
            Op::List(page) => answer(turns.list(&page)),
            Op::Resume { message_id, after } => {
                answer_or_refusal(turns.resume(&message_id, after).map(Answer::Stream))
            }
            Op::Cancel { message_id } => answer(turns.cancel(&message_id)),
            Op::Activity => answer(
                turns
                    .storage
                    .activity()
                    .map(|a| a.map(|(_, activity)| activity))
                    .map_err(|e| Refusal::Internal {
                        detail: e.to_string(),
                    }),
            ),
            Op::Wipe => answer(turns.wipe().await),
            Op::Replay { key, stream } => answer_or_refusal(turns.replay(&key, stream)),
            Op::Feedback {
                message_id,
                rating,
                comment,
            } => answer(turns.feedback(&message_id, rating, comment).await),
            Op::Export {
                conversation,
                format,
            } => answer(turns.export(conversation, &format)),
        }
    }
}

impl Turns {
    fn is_running(&self) -> bool {
        self.live.borrow().as_ref().is_some_and(|l| !l.finished)
    }

    async fn start(
        turns: &Rc<Turns>,
        turn: TurnRequest,
        stream: bool,
        background: bool,
    ) -> worker::Result<Answer> {
        if let Some(key) = &turn.idempotency_key {
            // Already started under this key (the first request was cut off and its key's claim
            // lapsed): the retry replays that turn; the slot it took goes back.
            if turns.storage.turn_by_key(key)?.is_some() {
                if let Some(lease) = turn.lease_id.clone() {
                    let env = turns.env.clone();
                    let user = turn.account.user_id.clone();
                    spawn_local(async move {
                        let _ = crate::accounts::client::release(&env, &user, &lease).await;
                    });
                }
                return answer_or_refusal(turns.replay(key, stream));
            }
        }
        // Everything up to `live` being set is synchronous: two turns sent at once cannot
        // both pass the busy check.
        let (started, body) = match turns.open_turn(&turn) {
            Ok(started) => started,
            Err(refusal) => return answer::<()>(Err(refusal)),
        };
        // The turn started: its slot, held by the account's object since before the caller's
        // verdict, is kept. Confirmed once the model's answer begins (or after `CONFIRM_BY_MS`),
        // not now: the confirmation is a write in the account's object, and locally that
        // object's commit shares the thread the model call leaves from (A/B: the first token
        // 3–4 ms sooner). A generation that ends first has released the slot, and the
        // confirmation then leaves it free.
        if let (Some(ttl_ms), Some(lease)) = (turn.confirm_lease_ms, turn.lease_id.clone()) {
            let env = turns.env.clone();
            let user = turn.account.user_id.clone();
            let (begun, answered) = oneshot::channel();
            if let Some(live) = turns.live.borrow_mut().as_mut() {
                live.begun = Some(begun);
            }
            spawn_local(async move {
                let by = Delay::from(Duration::from_millis(CONFIRM_BY_MS));
                let _ = futures::future::select(answered, by).await;
                let _ = crate::accounts::client::confirm(&env, &user, &lease, ttl_ms).await;
            });
        }
        // The heartbeat is armed in the same storage commit as the turn's rows (a separate
        // write would hold the model call until it, too, is confirmed), unless the one a turn
        // just before armed fires soon enough.
        let heartbeat = Rc::clone(turns);
        spawn_local(async move {
            let _ = heartbeat.storage.arm_within(now_ms(), HEARTBEAT_MS).await;
        });
        // The model is called as soon as this request yields; the caller is attached first.
        spawn_local(Rc::clone(turns).generate(started.clone(), body, turn.settings));
        let (tx, rx) = oneshot::channel();
        {
            let mut guard = turns.live.borrow_mut();
            let live = guard.as_mut().expect("the turn just opened");
            if stream {
                let (reader, resp) = readers::open(Some(&started))?;
                for e in live.log.after(0) {
                    reader.send(&e.frame(), &turns.ignore);
                }
                live.readers.add(reader);
                return Ok(Answer::Stream(resp));
            }
            if background {
                // The generation runs on under the object's heartbeat, as a streamed one does.
                return answer(Ok::<_, Refusal>(TurnResult {
                    user_message: live.user.clone(),
                    message: live.reply.clone(),
                    usage: None,
                }));
            }
            live.waiters.push(tx);
        }
        let outcome = rx.await.unwrap_or_else(|_| {
            Err(Refusal::Internal {
                detail: "the turn ended without an outcome".into(),
            })
        });
        answer(outcome)
    }

    /// The model's request: the persona and sources, the history that fits the budget, the
    /// new message.
    fn upstream_request(&self, turn: &TurnRequest) -> Result<Value, Refusal> {
        let history = self.storage.history(HISTORY_ROWS)?;
        let history = chat::trim_history(&history, turn.history_budget);
        let limits = chat::Limits {
            max_tokens: turn.max_tokens,
            user: &turn.upstream_user,
        };
        let turns = history
            .iter()
            .map(|t| (t.role.as_str(), t.content.as_str()))
            .chain([("user", turn.content.as_str())]);
        let mut system = knowledge::prompt_with_sources(&turn.system_prompt, &turn.sources);
        system.push_str(suggestions::INSTRUCTION);
        Ok(chat::request_body(&turn.model, &system, turns, &limits))
    }

    /// Stores the question and the reply-to-be and logs event 1; returns the reply's id and
    /// the upstream request.
    fn open_turn(&self, turn: &TurnRequest) -> Result<(String, Value), Refusal> {
        if self.storage.is_deleted()? {
            return Err(Refusal::Deleted);
        }
        self.settle_interrupted()?;
        if let Some(live) = self.live.borrow().as_ref().filter(|l| !l.finished) {
            return Err(Refusal::Busy {
                message_id: live.reply.id.clone(),
            });
        }
        let body = self.upstream_request(turn)?;
        let prompt_estimate = conv::prompt_estimate(&body);
        let now = now_ms();
        let message = |role, content: &str, status, model: Option<&str>| Message {
            id: ids::prefixed("msg", &random_bytes::<24>()),
            conversation_id: turn.conversation_id.clone(),
            role,
            content: content.to_owned(),
            status,
            model: model.map(str::to_owned),
            usage: None,
            latency_ms: None,
            citations: vec![],
            suggestions: vec![],
            feedback: None,
            created_at: time::rfc3339_ms(now),
        };
        let user = message(Role::User, &turn.content, Status::Completed, None);
        let reply = message(Role::Assistant, "", Status::Generating, Some(&turn.model));
        self.storage.insert(&user, 0)?;
        self.storage.insert(&reply, prompt_estimate)?;
        let meta = TurnMeta {
            account: turn.account.clone(),
            lease_id: turn.lease_id.clone(),
            sources: turn.sources.clone(),
            idempotency_key: turn.idempotency_key.clone(),
            webhooks: turn.settings.webhooks.clone(),
        };
        self.storage.save_turn(&reply.id, &meta)?;
        self.storage
            .set_compaction_after(turn.settings.compaction_after_ms)?;
        let mut log = EventLog::default();
        let first = log.push("progress", &conv::progress("accepted", &user.id, &reply.id));
        self.storage.log_event(&reply.id, first)?;
        let id = reply.id.clone();
        *self.live.borrow_mut() = Some(Live {
            user,
            reply,
            log,
            readers: Readers::default(),
            waiters: Vec::new(),
            controller: Some(AbortController::default()),
            finished: false,
            started_ms: now,
            prompt_estimate,
            max_tokens: turn.max_tokens,
            meta,
            flushed_ms: now,
            unflushed_bytes: 0,
            split: Splitter::default(),
            begun: None,
        });
        Ok((id, body))
    }

    /// Runs the model call of a started turn, to its end whoever is connected.
    async fn generate(self: Rc<Self>, message_id: String, body: Value, settings: TurnSettings) {
        let message_id = message_id.as_str();
        let Some(signal) = self
            .with_live(message_id, |l| {
                l.controller.as_ref().map(AbortController::signal)
            })
            .flatten()
        else {
            return;
        };
        // The conversation's D1 row follows its two new messages within `ROW_FLUSH_MS`: the
        // alarm writes it, once for a burst of turns (SPEC §14), never on the first token's path.
        let _ = self.storage.mark_row(now_ms(), ROW_FLUSH_MS);

        let (reply, failure) = Upstream::new(&settings.upstream, settings.upstream_key)
            .complete(&body, &signal, |p| self.on_progress(message_id, p))
            .await;
        self.with_live(message_id, |live| {
            if failure.is_some() {
                if let Some(c) = live.controller.take() {
                    c.abort();
                }
            }
            let status = match &failure {
                None => Status::Completed,
                Some(_) => Status::cut_short(&live.reply.content),
            };
            let usage = MessageUsage::settled(
                reply.usage,
                live.prompt_estimate,
                live.max_tokens,
                &live.reply.content,
            );
            self.settle(live, status, usage, failure.as_ref());
        });
    }

    /// Runs `f` on the live generation of `message_id` if it is still running here.
    fn with_live<T>(&self, message_id: &str, f: impl FnOnce(&mut Live) -> T) -> Option<T> {
        let mut live = self.live.borrow_mut();
        live.as_mut()
            .filter(|l| l.reply.id == message_id && !l.finished)
            .map(f)
    }

    fn on_progress(&self, message_id: &str, p: Progress) {
        self.with_live(message_id, |live| match p {
            Progress::Generating => {
                if let Some(begun) = live.begun.take() {
                    let _ = begun.send(());
                }
                let data = conv::progress("generating", &live.user.id, &live.reply.id);
                self.emit(live, "progress", &data);
            }
            Progress::Delta(text) => {
                let shown = live.split.push(text);
                if shown.is_empty() {
                    return;
                }
                let text = shown.as_str();
                live.reply.content.push_str(text);
                live.unflushed_bytes += text.len();
                self.emit(live, "delta", &conv::delta(text));
                let now = now_ms();
                if live.unflushed_bytes >= FLUSH_EVERY_BYTES
                    || now - live.flushed_ms >= FLUSH_EVERY_MS
                {
                    let _ = self
                        .storage
                        .update_text(&live.reply.id, &live.reply.content);
                    live.flushed_ms = now;
                    live.unflushed_bytes = 0;
                }
            }
            Progress::Idle => live.readers.broadcast(sse::PING, &self.ignore),
            // A turn offers the model no tools.
            Progress::ToolCalls(_) => {}
        });
    }

    /// Sends an event to every reader, then logs it. In that order: the runtime holds any
    /// outgoing message until the writes before it are confirmed (the output gate), so a
    /// write first would delay every delta by a storage commit.
    fn emit(&self, live: &mut Live, event: &str, data: &Value) {
        let e = live.log.push(event, data);
        live.readers.broadcast(&e.frame(), &self.ignore);
        let _ = self.storage.log_event(&live.reply.id, e);
    }

    /// Ends the generation: stores the reply as it ends, sends `complete` (or `error`) to
    /// every reader and closes them, and answers the waiting plain requests.
    fn settle(
        &self,
        live: &mut Live,
        status: Status,
        usage: MessageUsage,
        failure: Option<&ApiError>,
    ) {
        // Text held back in case it began the suggestions block is the reply's after all.
        let (rest, suggestions) = std::mem::take(&mut live.split).finish();
        if !rest.is_empty() {
            live.reply.content.push_str(&rest);
            self.emit(live, "delta", &conv::delta(&rest));
        }
        // A block cut short (a reply that did not complete) offers nothing.
        if status == Status::Completed {
            live.reply.suggestions = suggestions;
        }
        live.reply.status = status;
        live.reply.citations = knowledge::citations(&live.reply.content, &live.meta.sources);
        live.reply.usage = Some(usage);
        live.reply.latency_ms = Some(now_ms() - live.started_ms);
        if self.storage.update_reply(&live.reply).is_err() {
            // Still `generating` in storage: the next look settles it as interrupted.
            self.interrupted_settled.set(false);
        }
        let _ = self
            .storage
            .set_suggestions(&live.reply.id, &live.reply.suggestions);
        match failure {
            None => self.emit(live, "complete", &conv::complete(&live.reply)),
            Some(err) => self.emit(live, "error", &conv::error_event(err)),
        }
        live.finished = true;
        live.readers.close_all(&self.ignore);
        self.turn_ended(&live.reply, &live.meta);
        for waiter in live.waiters.drain(..) {
            let _ = waiter.send(match failure {
                None => Ok(TurnResult {
                    user_message: live.user.clone(),
                    message: live.reply.clone(),
                    usage: live.reply.usage,
                }),
                Some(err) => Err(Refusal::from(err)),
            });
        }
        // The next turn's history, read now (everyone answered) rather than on its way to the
        // model.
        let _ = self.storage.history(HISTORY_ROWS);
    }

    /// A reply left `generating` by an instance that died becomes `incomplete` (or `failed`)
    /// with the text its log holds, and its log ends with `GENERATION_INTERRUPTED`.
    fn settle_interrupted(&self) -> Result<(), Refusal> {
        // Only an instance that died leaves one: once this instance has looked, every reply
        // left `generating` is one of its own, settled by its own generation.
        if self.is_running() || self.interrupted_settled.get() {
            return Ok(());
        }
        for stored in self.storage.generating()? {
            let mut reply = stored.message;
            let mut log = EventLog::from_events(self.storage.events(&reply.id, 0)?);
            reply.content = log.text();
            reply.status = Status::cut_short(&reply.content);
            let meta = self.storage.turn(&reply.id)?;
            if let Some(meta) = &meta {
                reply.citations = knowledge::citations(&reply.content, &meta.sources);
            }
            reply.usage = Some(MessageUsage::of(
                None,
                stored.prompt_estimate,
                &reply.content,
            ));
            self.storage.update_reply(&reply)?;
            let e = log.push(
                "error",
                &conv::error_event(&ApiError::GenerationInterrupted),
            );
            self.storage.log_event(&reply.id, e)?;
            if let Some(meta) = meta {
                self.turn_ended(&reply, &meta);
            }
        }
        self.interrupted_settled.set(true);
        Ok(())
    }

    /// A turn ended, however: its usage joins the account's daily totals and its concurrency
    /// slot is freed (in the background; a slot whose release is lost expires on its own).
    fn turn_ended(&self, reply: &Message, meta: &TurnMeta) {
        let usage = reply.usage.unwrap_or(MessageUsage::of(None, 0, ""));
        // Its webhook event (SPEC §15), sent by the account's object with the usage: JSON
        // text, built from serializers this wasm already has (`webhooks::cell::message_event`
        // completes it).
        let text = |v: Option<&str>| serde_json::to_string(&v).unwrap_or_default();
        let event = serde_json::to_string(reply).ok().map(|message| {
            format!(
                r#"{{"type":"message.{}","message":{message},"twinId":{},"endUserId":{},"settings":{}}}"#,
                reply.status.as_str(),
                text(Some(&meta.account.twin_id)),
                text(meta.account.end_user_id.as_deref()),
                meta.webhooks,
            )
        });
        spawn_local(gate::ended(
            &self.env,
            meta.lease_id.clone(),
            spend::utc_day(now_ms()),
            meta.account.usage(usage),
            None,
            event,
        ));
    }

    /// Writes the conversation's D1 row from this object's own activity if it is due; when
    /// it is due later, that time (Unix ms).
    async fn flush_row(&self, now: i64) -> worker::Result<Option<i64>> {
        let Some((due, version)) = self.storage.row_due()? else {
            return Ok(None);
        };
        if due > now {
            return Ok(Some(due));
        }
        if let Some((conversation_id, activity)) = self.storage.activity()? {
            let store = Store::new(&self.env)?;
            if store
                .record_activity(&conversation_id, &activity)
                .await
                .is_err()
            {
                // D1 unreachable: the row is tried again at the next flush.
                return Ok(Some(now + ROW_FLUSH_MS));
            }
        }
        self.storage.row_written(version, now_ms(), ROW_FLUSH_MS)?;
        Ok(self.storage.row_due()?.map(|(due, _)| due))
    }

    fn list(&self, page: &PageRequest) -> Result<Page, Refusal> {
        self.settle_interrupted()?;
        let (mut messages, total, more) =
            self.storage
                .page(page)?
                .ok_or_else(|| Refusal::UnknownCursor {
                    field: page.cursor.as_ref().map_or("", Cursor::field).to_owned(),
                })?;
        // A running reply's row may lag its text by up to one flush interval.
        if let Some(live) = self.live.borrow().as_ref().filter(|l| !l.finished) {
            for m in messages.iter_mut().filter(|m| m.id == live.reply.id) {
                m.content.clone_from(&live.reply.content);
            }
        }
        Ok(Page {
            messages,
            total,
            more,
        })
    }

    /// The reply `message_id`, or 404 for a user message or an unknown id.
    fn reply(&self, message_id: &str) -> Result<Message, Refusal> {
        self.settle_interrupted()?;
        match self.storage.message(message_id)? {
            Some(s) if s.message.role == Role::Assistant => Ok(s.message),
            _ => Err(Refusal::NotFound),
        }
    }

    /// Rates a finished reply; the twin's object gets the rating for its report before the
    /// answer (a failure there is an error the caller retries: both writes replace).
    async fn feedback(
        &self,
        message_id: &str,
        rating: i8,
        comment: Option<String>,
    ) -> Result<Message, Refusal> {
        self.settle_interrupted()?;
        let mut message = match self.storage.message(message_id)? {
            Some(s) if s.message.role == Role::Assistant => s.message,
            Some(_) => return Err(Refusal::NotAReply),
            None => return Err(Refusal::NotFound),
        };
        if message.status == Status::Generating {
            return Err(Refusal::Busy {
                message_id: message.id,
            });
        }
        let feedback = Feedback {
            rating,
            comment,
            updated_at: time::rfc3339_ms(now_ms()),
        };
        self.storage.set_feedback(message_id, &feedback)?;
        if let Some(meta) = self.storage.turn(message_id)? {
            let twin = &meta.account.twin_id;
            let op = knowledge_protocol::Op::Feedback(serde_json::json!({
                "messageId": message_id,
                "conversationId": message.conversation_id,
                "endUserId": meta.account.end_user_id,
                "rating": rating,
                "comment": feedback.comment,
                "at": feedback.updated_at,
            }));
            crate::knowledge::client::call::<bool>(&self.env, twin, op)
                .await
                .map_err(|e| Refusal::Internal {
                    detail: format!("twin object: {}", e.code()),
                })?;
        }
        message.feedback = Some(feedback);
        Ok(message)
    }

    /// Every message of the conversation, as JSON or Markdown.
    fn export(&self, conversation: Value, format: &str) -> Result<Value, Refusal> {
        self.settle_interrupted()?;
        let messages = self.storage.all(EXPORT_ROWS)?;
        let mut conversation = conversation;
        // The row's count may lag this object's by up to ROW_FLUSH_MS.
        conversation["messageCount"] = Value::from(messages.len());
        Ok(if format == "markdown" {
            Value::String(export::markdown(&conversation, &messages))
        } else {
            serde_json::json!({ "conversation": conversation, "messages": messages })
        })
    }

    /// The turn started under `key`: its stream from event 1 (live or stored), or its result.
    fn replay(&self, key: &str, stream: bool) -> Result<Answer, Refusal> {
        let Some((question, reply)) = self.storage.turn_by_key(key)? else {
            return Err(Refusal::NotFound);
        };
        if stream {
            return self.resume(&reply, 0).map(Answer::Stream);
        }
        if self.with_live(&reply, |_| ()).is_some() {
            return Err(Refusal::Busy { message_id: reply });
        }
        let message = self.reply(&reply)?;
        let user_message = self
            .storage
            .message(&question)?
            .ok_or(Refusal::NotFound)?
            .message;
        let usage = message.usage;
        answer(Ok(TurnResult {
            user_message,
            message,
            usage,
        }))
        .map_err(|e| Refusal::Internal {
            detail: e.to_string(),
        })
    }

    fn resume(&self, message_id: &str, after: u64) -> Result<Response, Refusal> {
        self.reply(message_id)?;
        if self
            .with_live(message_id, |live| live.readers.count() >= conv::MAX_READERS)
            .unwrap_or(false)
        {
            return Err(Refusal::TooManyReaders);
        }
        let (reader, resp) = readers::open(Some(message_id))?;
        let attached = self.with_live(message_id, |live| {
            for e in live.log.after(after) {
                reader.send(&e.frame(), &self.ignore);
            }
        });
        match attached {
            Some(()) => {
                if let Some(live) = self.live.borrow_mut().as_mut() {
                    live.readers.add(reader);
                }
            }
            None => {
                for e in self.storage.events(message_id, after)? {
                    reader.send(&e.frame(), &self.ignore);
                }
                reader.close(&self.ignore);
            }
        }
        Ok(resp)
    }

    fn cancel(&self, message_id: &str) -> Result<Message, Refusal> {
        self.reply(message_id)?;
        let cancelled = self.with_live(message_id, |live| {
            let usage = MessageUsage::of(None, live.prompt_estimate, &live.reply.content);
            self.settle(live, Status::Cancelled, usage, None);
            // After `complete` went out: the read loop stops, no delta follows.
            if let Some(c) = live.controller.take() {
                c.abort();
            }
            live.reply.clone()
        });
        match cancelled {
            Some(message) => Ok(message),
            None => self.reply(message_id),
        }
    }

    async fn wipe(&self) -> Result<bool, Refusal> {
        let running = self.live.borrow().as_ref().map(|l| l.reply.id.clone());
        if let Some(id) = running {
            self.cancel(&id).ok();
        }
        self.live.borrow_mut().take();
        self.storage.wipe().await?;
        Ok(true)
    }
}
