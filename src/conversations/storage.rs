//! The conversation object's own SQLite: its messages, in turn order, and the event log of
//! each generation (what a resumed stream replays). Synchronous SQL: no await between a
//! check and the write it guards.

use serde::de::DeserializeOwned;
use serde::Deserialize;
use std::cell::{Cell, RefCell};
use worker::SqlStorageValue;

use crate::http::cursor::{self, Listed, PageRequest};
use crate::platform::sqlite::{opt_int, text, Sqlite};

use crate::conversations::model::{
    Activity, Feedback, LoggedEvent, Message, MessageUsage, Role, Status, TurnAccount,
};
use crate::knowledge::model::Source;
use crate::llm::chat::Turn;

/// What the object keeps about a turn besides its messages.
#[derive(Debug, Clone, serde::Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TurnMeta {
    pub account: TurnAccount,
    pub lease_id: Option<String>,
    /// The numbered sources the model was given: what the reply's `[n]` refer to.
    #[serde(default)]
    pub sources: Vec<Source>,
    /// The `Idempotency-Key` the turn was started under.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    /// The webhook settings its `message.*` event is delivered by (sent with the turn).
    #[serde(default)]
    pub webhooks: serde_json::Value,
}

const SCHEMA: [&str; 5] = [
    // `seq` is the turn order: a user message, then its reply.
    "CREATE TABLE IF NOT EXISTS messages (
       seq INTEGER PRIMARY KEY AUTOINCREMENT,
       id TEXT NOT NULL UNIQUE,
       conversation_id TEXT NOT NULL,
       role TEXT NOT NULL,
       content TEXT NOT NULL,
       status TEXT NOT NULL,
       model TEXT,
       prompt_tokens INTEGER,
       completion_tokens INTEGER,
       total_tokens INTEGER,
       estimated INTEGER NOT NULL DEFAULT 0,
       prompt_estimate INTEGER NOT NULL DEFAULT 0,
       latency_ms INTEGER,
       citations TEXT NOT NULL DEFAULT '[]',
       created_at TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS events (
       message_id TEXT NOT NULL,
       id INTEGER NOT NULL,
       event TEXT NOT NULL,
       data TEXT NOT NULL,
       PRIMARY KEY (message_id, id)) WITHOUT ROWID",
    // Whose turn a reply is (usage attribution, the concurrency slot it holds), as JSON.
    "CREATE TABLE IF NOT EXISTS turns (
       message_id TEXT PRIMARY KEY,
       meta TEXT NOT NULL) WITHOUT ROWID",
    // `row_due`: when the conversation's D1 row must next be written (Unix ms); `row_version`:
    // bumped by every change the row must follow (a write that raced one is done again).
    "CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v INTEGER NOT NULL) WITHOUT ROWID",
    // What a reply gains after it is written (SPEC §19): its suggestions and its feedback, as
    // JSON. A table of its own, so objects made before these existed need no column added.
    "CREATE TABLE IF NOT EXISTS extras (
       message_id TEXT PRIMARY KEY,
       suggestions TEXT,
       feedback TEXT) WITHOUT ROWID",
];

macro_rules! columns {
    () => {
        "id, conversation_id, role, content, status, model, prompt_tokens, completion_tokens, \
         total_tokens, estimated, prompt_estimate, latency_ms, citations, created_at"
    };
}
const COLUMNS: &str = columns!();

/// `COLUMNS` and the message's extras, for a `SELECT … FROM messages`.
const READ: &str = concat!(
    columns!(),
    ", (SELECT suggestions FROM extras WHERE message_id = messages.id) AS suggestions, \
     (SELECT feedback FROM extras WHERE message_id = messages.id) AS feedback"
);

#[derive(Deserialize)]
struct Row {
    id: String,
    conversation_id: String,
    role: String,
    content: String,
    status: String,
    model: Option<String>,
    prompt_tokens: Option<i64>,
    completion_tokens: Option<i64>,
    total_tokens: Option<i64>,
    estimated: i64,
    prompt_estimate: i64,
    latency_ms: Option<i64>,
    citations: String,
    created_at: String,
    suggestions: Option<String>,
    feedback: Option<String>,
}

/// A stored message and the prompt estimate its usage falls back on.
pub struct Stored {
    pub message: Message,
    pub prompt_estimate: i64,
}

impl From<Row> for Stored {
    fn from(r: Row) -> Stored {
        let usage = match (r.prompt_tokens, r.completion_tokens, r.total_tokens) {
            (Some(p), Some(c), Some(t)) => Some(MessageUsage {
                prompt_tokens: p,
                completion_tokens: c,
                total_tokens: t,
                estimated: r.estimated != 0,
            }),
            _ => None,
        };
        Stored {
            message: Message {
                id: r.id,
                conversation_id: r.conversation_id,
                role: if r.role == "user" {
                    Role::User
                } else {
                    Role::Assistant
                },
                content: r.content,
                status: Status::parse(&r.status).unwrap_or(Status::Incomplete),
                model: r.model,
                usage,
                latency_ms: r.latency_ms,
                citations: serde_json::from_str(&r.citations).unwrap_or_default(),
                suggestions: r
                    .suggestions
                    .and_then(|s| serde_json::from_str(&s).ok())
                    .unwrap_or_default(),
                feedback: r.feedback.and_then(|f| serde_json::from_str(&f).ok()),
                created_at: r.created_at,
            },
            prompt_estimate: r.prompt_estimate,
        }
    }
}

pub struct Storage {
    db: Sqlite,
    /// The last `history` read, while no message has changed since: the object is the only
    /// writer of its messages, so its memory is exact, and a turn reads it instead of its
    /// rows on the way to the model (refreshed as a turn ends, off that way).
    history: RefCell<Option<(u64, Vec<Turn>)>>,
    /// What this instance knows of its own rows and alarm, for the same reason: the replay
    /// window last stored and when the alarm it armed fires. Each saves a write on a turn's way
    /// to the model (the alarm's is a second commit, locally).
    compaction_after_ms: Cell<Option<i64>>,
    alarm_at: Cell<Option<i64>>,
}

/// The marker `wipe` leaves.
const DELETED: &str = "deleted";

impl Storage {
    pub fn new(storage: worker::Storage) -> Self {
        Storage {
            db: Sqlite::new(storage, &SCHEMA),
            history: RefCell::new(None),
            compaction_after_ms: Cell::new(None),
            alarm_at: Cell::new(None),
        }
    }

    fn rows<T: DeserializeOwned>(
        &self,
        query: &str,
        args: Vec<SqlStorageValue>,
    ) -> worker::Result<Vec<T>> {
        self.db.rows(query, args)
    }

    fn run(&self, query: &str, args: Vec<SqlStorageValue>) -> worker::Result<()> {
        self.db.run(query, args)
    }

    pub fn insert(&self, m: &Message, prompt_estimate: i64) -> worker::Result<()> {
        self.history.take();
        let citations = serde_json::to_string(&m.citations)?;
        self.run(
            &format!(
                "INSERT INTO messages ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, NULL, NULL, NULL, 0, ?, NULL, ?, ?)"
            ),
            vec![
                text(&m.id),
                text(&m.conversation_id),
                text(if m.role == Role::User {
                    "user"
                } else {
                    "assistant"
                }),
                text(&m.content),
                text(m.status.as_str()),
                m.model.as_deref().map_or(SqlStorageValue::Null, text),
                prompt_estimate.into(),
                citations.into(),
                text(&m.created_at),
            ],
        )
    }

    /// Writes what a reply has become: its text, status, usage and latency.
    pub fn update_reply(&self, m: &Message) -> worker::Result<()> {
        self.history.take();
        let u = m.usage;
        self.run(
            "UPDATE messages SET content = ?, status = ?, prompt_tokens = ?, completion_tokens = ?, \
             total_tokens = ?, estimated = ?, latency_ms = ?, citations = ? WHERE id = ?",
            vec![
                text(&m.content),
                text(m.status.as_str()),
                opt_int(u.map(|u| u.prompt_tokens)),
                opt_int(u.map(|u| u.completion_tokens)),
                opt_int(u.map(|u| u.total_tokens)),
                i64::from(u.is_some_and(|u| u.estimated)).into(),
                opt_int(m.latency_ms),
                serde_json::to_string(&m.citations)?.into(),
                text(&m.id),
            ],
        )
    }

    /// A finished reply's suggestions (none: nothing written).
    pub fn set_suggestions(&self, id: &str, suggestions: &[String]) -> worker::Result<()> {
        if suggestions.is_empty() {
            return Ok(());
        }
        self.run(
            "INSERT INTO extras (message_id, suggestions) VALUES (?, ?) \
             ON CONFLICT (message_id) DO UPDATE SET suggestions = excluded.suggestions",
            vec![text(id), serde_json::to_string(suggestions)?.into()],
        )
    }

    /// A reply's feedback, replacing any before it.
    pub fn set_feedback(&self, id: &str, feedback: &Feedback) -> worker::Result<()> {
        self.run(
            "INSERT INTO extras (message_id, feedback) VALUES (?, ?) \
             ON CONFLICT (message_id) DO UPDATE SET feedback = excluded.feedback",
            vec![text(id), serde_json::to_string(feedback)?.into()],
        )
    }

    /// The text of a reply still being generated, as it stands (a `generating` reply is in
    /// no history, so the history kept stays exact).
    pub fn update_text(&self, id: &str, content: &str) -> worker::Result<()> {
        self.run(
            "UPDATE messages SET content = ? WHERE id = ?",
            vec![text(content), text(id)],
        )
    }

    pub fn message(&self, id: &str) -> worker::Result<Option<Stored>> {
        let rows: Vec<Row> = self.rows(
            &format!("SELECT {READ} FROM messages WHERE id = ?"),
            vec![text(id)],
        )?;
        Ok(rows.into_iter().next().map(Stored::from))
    }

    /// Every message in turn order (an export), at most `limit`.
    pub fn all(&self, limit: u64) -> worker::Result<Vec<Message>> {
        let rows: Vec<Row> = self.rows(
            &format!("SELECT {READ} FROM messages ORDER BY seq LIMIT ?"),
            vec![(limit as i64).into()],
        )?;
        Ok(rows.into_iter().map(|r| Stored::from(r).message).collect())
    }

    /// Replies the object believes are being generated.
    pub fn generating(&self) -> worker::Result<Vec<Stored>> {
        let rows: Vec<Row> = self.rows(
            &format!("SELECT {READ} FROM messages WHERE status = 'generating'"),
            vec![],
        )?;
        Ok(rows.into_iter().map(Stored::from).collect())
    }

    /// A page of history, oldest first, and the total.
    /// A page of messages in turn order, by number or from a cursor (then also whether more
    /// follow); `None` when the cursor is no message of this conversation.
    pub fn page(&self, page: &PageRequest) -> worker::Result<Option<Listed<Message>>> {
        let PageRequest {
            limit,
            offset,
            ref cursor,
        } = *page;
        #[derive(Deserialize)]
        struct Count {
            n: u64,
        }
        let total = self
            .rows::<Count>("SELECT COUNT(*) AS n FROM messages", vec![])?
            .first()
            .map_or(0, |c| c.n);
        let message = |r: Row| Stored::from(r).message;
        let Some(cursor) = cursor else {
            let rows: Vec<Row> = self.rows(
                &format!("SELECT {READ} FROM messages ORDER BY seq LIMIT ? OFFSET ?"),
                vec![(limit as i64).into(), (offset as i64).into()],
            )?;
            return Ok(Some((rows.into_iter().map(message).collect(), total, None)));
        };
        if self.message(cursor.id())?.is_none() {
            return Ok(None);
        }
        let (beyond, order, binds) =
            cursor::local_keyset(&[cursor::asc("seq")], "messages", cursor.before());
        let mut args = vec![text(cursor.id()); binds];
        args.push(((limit + 1) as i64).into());
        let rows: Vec<Row> = self.rows(
            &format!("SELECT {READ} FROM messages WHERE {beyond} ORDER BY {order} LIMIT ?"),
            args,
        )?;
        let (rows, more) = cursor::page(rows, limit, cursor);
        Ok(Some((
            rows.into_iter().map(message).collect(),
            total,
            Some(more),
        )))
    }

    /// The most recent `rows` finished turns, oldest first: what the model sees as history.
    /// Failed replies carry nothing; a reply being generated is not history yet.
    pub fn history(&self, rows: u64) -> worker::Result<Vec<Turn>> {
        if let Some((n, kept)) = self.history.borrow().as_ref() {
            if *n == rows {
                return Ok(kept.clone());
            }
        }
        #[derive(Deserialize)]
        struct H {
            role: String,
            content: String,
        }
        let mut turns: Vec<Turn> = self
            .rows::<H>(
                "SELECT role, content FROM messages WHERE status NOT IN ('failed', 'generating') \
                 ORDER BY seq DESC LIMIT ?",
                vec![(rows as i64).into()],
            )?
            .into_iter()
            .map(|h| Turn {
                role: h.role,
                content: h.content,
            })
            .collect();
        turns.reverse();
        *self.history.borrow_mut() = Some((rows, turns.clone()));
        Ok(turns)
    }

    pub fn save_turn(&self, message_id: &str, meta: &TurnMeta) -> worker::Result<()> {
        self.run(
            "INSERT OR REPLACE INTO turns (message_id, meta) VALUES (?, ?)",
            vec![text(message_id), serde_json::to_string(meta)?.into()],
        )
    }

    /// The turn started under `key`: (its user message id, its reply id).
    pub fn turn_by_key(&self, key: &str) -> worker::Result<Option<(String, String)>> {
        #[derive(Deserialize)]
        struct T {
            question: String,
            reply: String,
        }
        // A conversation's turns are few enough to scan; the key is in the turn's JSON.
        let rows: Vec<T> = self.rows(
            "SELECT r.id AS reply, \
               (SELECT q.id FROM messages q WHERE q.seq < r.seq ORDER BY q.seq DESC LIMIT 1) AS question \
             FROM turns t JOIN messages r ON r.id = t.message_id \
             WHERE json_extract(t.meta, '$.idempotencyKey') = ?",
            vec![text(key)],
        )?;
        Ok(rows.into_iter().next().map(|t| (t.question, t.reply)))
    }

    pub fn turn(&self, message_id: &str) -> worker::Result<Option<TurnMeta>> {
        #[derive(Deserialize)]
        struct T {
            meta: String,
        }
        let rows: Vec<T> = self.rows(
            "SELECT meta FROM turns WHERE message_id = ?",
            vec![text(message_id)],
        )?;
        Ok(rows
            .into_iter()
            .next()
            .and_then(|t| serde_json::from_str(&t.meta).ok()))
    }

    pub fn log_event(&self, message_id: &str, e: &LoggedEvent) -> worker::Result<()> {
        self.run(
            "INSERT INTO events (message_id, id, event, data) VALUES (?, ?, ?, ?)",
            vec![
                text(message_id),
                (e.id as i64).into(),
                text(&e.event),
                text(&e.data),
            ],
        )
    }

    /// The conversation's activity as its D1 row should show it; `None` when it has no
    /// message yet (read without creating anything).
    pub fn activity(&self) -> worker::Result<Option<(String, Activity)>> {
        if self.db.is_empty()? {
            return Ok(None);
        }
        #[derive(Deserialize)]
        struct A {
            n: i64,
            at: Option<String>,
            conversation_id: Option<String>,
        }
        let rows: Vec<A> = self.rows(
            "SELECT COUNT(*) AS n, MAX(created_at) AS at, MAX(conversation_id) AS conversation_id \
             FROM messages",
            vec![],
        )?;
        Ok(rows.into_iter().next().and_then(|a| {
            Some((
                a.conversation_id?,
                Activity {
                    message_count: a.n,
                    last_message_at: a.at?,
                },
            ))
        }))
    }

    fn meta(&self, k: &str) -> worker::Result<Option<i64>> {
        #[derive(Deserialize)]
        struct V {
            v: i64,
        }
        let rows: Vec<V> = self.rows("SELECT v FROM meta WHERE k = ?", vec![text(k)])?;
        Ok(rows.first().map(|r| r.v))
    }

    /// How long after a reply starts its log may be compacted (`Config::compaction_after_ms`,
    /// sent with each turn), kept for the alarm, which has no turn to read it from.
    pub fn set_compaction_after(&self, ms: i64) -> worker::Result<()> {
        if self.compaction_after_ms.get() == Some(ms) {
            return Ok(());
        }
        self.run(
            "INSERT OR REPLACE INTO meta (k, v) VALUES ('compaction_after_ms', ?)",
            vec![ms.into()],
        )?;
        self.compaction_after_ms.set(Some(ms));
        Ok(())
    }

    pub fn compaction_after(&self) -> worker::Result<Option<i64>> {
        self.meta("compaction_after_ms")
    }

    /// The D1 row must follow a change: due `flush_ms` from `now` unless already due sooner.
    pub fn mark_row(&self, now: i64, flush_ms: i64) -> worker::Result<()> {
        self.run(
            "INSERT INTO meta (k, v) VALUES ('row_version', 1) \
             ON CONFLICT (k) DO UPDATE SET v = v + 1",
            vec![],
        )?;
        self.run(
            "INSERT OR IGNORE INTO meta (k, v) VALUES ('row_due', ?)",
            vec![(now + flush_ms).into()],
        )
    }

    /// When the D1 row is due, and the version it must reach.
    pub fn row_due(&self) -> worker::Result<Option<(i64, i64)>> {
        if self.db.is_empty()? {
            return Ok(None);
        }
        Ok(match self.meta("row_due")? {
            Some(due) => Some((due, self.meta("row_version")?.unwrap_or(0))),
            None => None,
        })
    }

    /// The row was written as of `version`: done, unless a change came meanwhile (then it is
    /// due again `flush_ms` from `now`).
    pub fn row_written(&self, version: i64, now: i64, flush_ms: i64) -> worker::Result<()> {
        if self.meta("row_version")?.unwrap_or(0) == version {
            self.run("DELETE FROM meta WHERE k = 'row_due'", vec![])
        } else {
            self.run(
                "UPDATE meta SET v = ? WHERE k = 'row_due'",
                vec![(now + flush_ms).into()],
            )
        }
    }

    /// Compacts the event logs of replies started before `cutoff` (RFC 3339) that are no longer
    /// generating: every event but the last goes (the deltas, the bulk of a log), so a late
    /// reader still gets the final `complete` (the whole message) or `error` under its own id.
    /// Returns when the next log comes due: the start of the oldest reply whose log is whole.
    pub fn compact(&self, cutoff: &str) -> worker::Result<Option<String>> {
        self.run(
            "DELETE FROM events WHERE message_id IN \
               (SELECT id FROM messages WHERE role = 'assistant' AND status != 'generating' \
                AND created_at < ?) \
             AND id < (SELECT MAX(e.id) FROM events e WHERE e.message_id = events.message_id)",
            vec![text(cutoff)],
        )?;
        #[derive(Deserialize)]
        struct Next {
            at: Option<String>,
        }
        let next: Vec<Next> = self.rows(
            "SELECT MIN(m.created_at) AS at FROM messages m WHERE m.role = 'assistant' \
               AND m.status != 'generating' \
               AND (SELECT COUNT(*) FROM events e WHERE e.message_id = m.id) > 1",
            vec![],
        )?;
        Ok(next.into_iter().next().and_then(|n| n.at))
    }

    /// The logged events of a generation after `after`, in order.
    pub fn events(&self, message_id: &str, after: u64) -> worker::Result<Vec<LoggedEvent>> {
        self.rows(
            "SELECT id, event, data FROM events WHERE message_id = ? AND id > ? ORDER BY id",
            vec![text(message_id), (after as i64).into()],
        )
    }

    /// Arms the object's alarm `in_ms` from now (the heartbeat and watchdog).
    pub async fn set_alarm(&self, now: i64, in_ms: i64) -> worker::Result<()> {
        // Cleared first: if the write fails, the next call arms it again.
        self.alarm_at.set(None);
        self.db.storage().set_alarm(in_ms).await?;
        self.alarm_at.set(Some(now + in_ms));
        Ok(())
    }

    /// Arms the alarm to fire within `in_ms` unless this instance armed it to fire by then
    /// already (a turn right after another keeps the first one's heartbeat).
    pub async fn arm_within(&self, now: i64, in_ms: i64) -> worker::Result<()> {
        if matches!(self.alarm_at.get(), Some(at) if at > now && at <= now + in_ms) {
            return Ok(());
        }
        self.set_alarm(now, in_ms).await
    }

    /// The alarm fired: none is armed until the handler arms the next.
    pub fn alarm_fired(&self) {
        self.alarm_at.set(None);
    }

    /// Everything goes: the conversation is being deleted.
    /// Everything goes but a tombstone: a turn that read the conversation's row before its
    /// deletion (or from a replica that has not seen it yet) and arrives after it is refused
    /// instead of starting the conversation again in an object nothing leads to.
    pub async fn wipe(&self) -> worker::Result<()> {
        self.history.take();
        self.compaction_after_ms.set(None);
        self.alarm_at.set(None);
        self.db.wipe().await?;
        self.db.mark(DELETED)
    }

    pub fn is_deleted(&self) -> worker::Result<bool> {
        self.db.is_marked(DELETED)
    }
}
