//! A conversation's turns as its Durable Object keeps them: the message model and its JSON
//! view, the event log of a generation (what a resumed stream replays byte for byte), resume
//! cursors, how a turn's ending sets the stored status and usage, and the object's protocol.
//! The guide is docs/streaming.md.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::http::error::ApiError;
use crate::http::validate::{chars, Chars};
use crate::llm::chat::{self, Usage};
use crate::llm::sse;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Assistant,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Completed,
    /// The reply is being written; `content` holds what has arrived.
    Generating,
    Cancelled,
    /// Cut short by the model or the platform; `content` holds what arrived.
    Incomplete,
    /// Nothing arrived.
    Failed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Completed => "completed",
            Status::Generating => "generating",
            Status::Cancelled => "cancelled",
            Status::Incomplete => "incomplete",
            Status::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        [
            Status::Completed,
            Status::Generating,
            Status::Cancelled,
            Status::Incomplete,
            Status::Failed,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }

    /// The status of a reply that stopped with an error after `content` arrived.
    pub fn cut_short(content: &str) -> Status {
        if content.is_empty() {
            Status::Failed
        } else {
            Status::Incomplete
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageUsage {
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub total_tokens: i64,
    /// The upstream reported no usage (cancelled, cut, interrupted): counted at ~4 chars a token.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub estimated: bool,
}

impl MessageUsage {
    /// The upstream's own figures, or an estimate from the prompt estimate and the text.
    pub fn of(reported: Option<Usage>, prompt_estimate: i64, content: &str) -> MessageUsage {
        match reported {
            Some(u) => MessageUsage {
                prompt_tokens: u.prompt_tokens,
                completion_tokens: u.completion_tokens,
                total_tokens: u.total_tokens,
                estimated: false,
            },
            None => {
                let completion = content.chars().count().div_ceil(4) as i64;
                MessageUsage {
                    prompt_tokens: prompt_estimate,
                    completion_tokens: completion,
                    total_tokens: prompt_estimate + completion,
                    estimated: true,
                }
            }
        }
    }
}

impl MessageUsage {
    /// What a generation that called the upstream is charged: the upstream's figures held to
    /// what is plausible (`Usage::clamped`), or the estimate when it gave none.
    pub fn settled(
        reported: Option<Usage>,
        prompt_estimate: i64,
        max_output_tokens: u64,
        content: &str,
    ) -> MessageUsage {
        let plausible = reported.map(|u| u.clamped(prompt_estimate, max_output_tokens));
        MessageUsage::of(plausible, prompt_estimate, content)
    }

    /// The three counts as the upstream protocol names them.
    pub fn totals(self) -> chat::Usage {
        chat::Usage {
            prompt_tokens: self.prompt_tokens,
            completion_tokens: self.completion_tokens,
            total_tokens: self.total_tokens,
        }
    }
}

pub const DEFAULT_TITLE: &str = "New conversation";

// Each field's limits, read by validation here and by the OpenAPI schema
// (conversations/schema.rs).
/// A message's `content`.
pub const CONTENT: Chars = chars(1, 32_000);
pub const TITLE: Chars = chars(1, 200);
pub const TWIN_ID: Chars = chars(1, 100);

/// `POST …/messages` and `…/messages/stream`: `{content}`, kept exactly as sent, and
/// `background` (SPEC §15: answer 202 at once, the reply generated as a streamed one is).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessage {
    pub content: String,
    pub background: bool,
}

impl TryFrom<&serde_json::Map<String, Value>> for NewMessage {
    type Error = ApiError;

    fn try_from(body: &serde_json::Map<String, Value>) -> Result<NewMessage, ApiError> {
        let mut f = crate::http::validate::Fields::new(body);
        let content = f.raw_string("content", CONTENT);
        if content.as_deref().is_some_and(|c| c.trim().is_empty()) {
            f.fail("content", "must not be blank");
        }
        let background = match body.get("background") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                f.fail("background", "must be true or false");
                false
            }
        };
        f.finish()?;
        Ok(NewMessage {
            content: crate::http::validate::Fields::checked(content)?,
            background,
        })
    }
}

/// A conversation as the API shows it (its messages live in its Durable Object), read from its
/// D1 row as is (the column names are the field names).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all(serialize = "camelCase"))]
pub struct Conversation {
    pub id: String,
    #[serde(skip_serializing)]
    pub user_id: String,
    pub twin_id: String,
    pub title: String,
    pub end_user_id: Option<String>,
    pub message_count: i64,
    pub created_at: String,
    pub updated_at: String,
    pub last_message_at: Option<String>,
}

/// What a conversation's object knows of its activity: the index row in D1 follows it at most
/// `ROW_FLUSH_MS` later (the object writes the row from these, so a burst of turns is one write).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Activity {
    pub message_count: i64,
    pub last_message_at: String,
}

/// How long a conversation's D1 row may lag its object (one write per conversation per this
/// long, however many turns: SPEC §14).
pub const ROW_FLUSH_MS: i64 = 10_000;

impl Conversation {
    /// The row brought up to date with its object's own activity (which the row may lag).
    pub fn with_activity(mut self, a: Option<Activity>) -> Conversation {
        if let Some(a) = a.filter(|a| a.message_count >= self.message_count) {
            self.message_count = a.message_count;
            if self.last_message_at.as_deref() < Some(a.last_message_at.as_str()) {
                self.last_message_at = Some(a.last_message_at.clone());
            }
            if self.updated_at < a.last_message_at {
                self.updated_at = a.last_message_at;
            }
        }
        self
    }
}

/// `POST /conversations {twinId, title?, endUserId?}`, or `POST /twins/{id} {title?}` (the
/// seed's route) with the twin from the path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewConversation {
    pub twin_id: String,
    /// `DEFAULT_TITLE` when not given.
    pub title: String,
    pub end_user_id: Option<String>,
}

impl NewConversation {
    /// `twin_in_path`: the seed's route, where the twin is not read from the body.
    pub fn parse(
        body: &serde_json::Map<String, Value>,
        twin_in_path: Option<&str>,
    ) -> Result<NewConversation, ApiError> {
        let mut f = crate::http::validate::Fields::new(body);
        let twin_id = match twin_in_path {
            Some(id) => Some(id.to_owned()),
            None => f.string("twinId", TWIN_ID),
        };
        let title = f.opt_string("title", TITLE);
        let end_user_id = crate::spend::model::end_user_field(&mut f);
        f.finish()?;
        Ok(NewConversation {
            twin_id: crate::http::validate::Fields::checked(twin_id)?,
            title: title.unwrap_or_else(|| DEFAULT_TITLE.to_owned()),
            end_user_id,
        })
    }
}

/// A message as the API shows it (and as the conversation object stores it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    pub id: String,
    pub conversation_id: String,
    pub role: Role,
    pub content: String,
    pub status: Status,
    pub model: Option<String>,
    pub usage: Option<MessageUsage>,
    pub latency_ms: Option<i64>,
    pub citations: Vec<crate::knowledge::model::Citation>,
    /// Follow-up questions the twin offers after a completed reply (0–3; absent when none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub suggestions: Vec<String>,
    /// The caller's rating of a reply, the latest given (absent when none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feedback: Option<Feedback>,
    pub created_at: String,
}

/// A rating of a reply (SPEC §19): one per message, the latest wins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Feedback {
    /// 1 (helpful) or -1 (not).
    pub rating: i8,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    pub updated_at: String,
}

/// The prompt size estimate of an upstream request body: what a reply without reported
/// usage is charged for its prompt.
pub fn prompt_estimate(body: &Value) -> i64 {
    body["messages"]
        .as_array()
        .map(|m| {
            m.iter()
                .filter_map(|m| m["content"].as_str())
                .map(chat::approx_tokens)
                .sum::<usize>()
        })
        .unwrap_or(0) as i64
}

/// One event of a generation's stream, as logged: its frame is the same bytes every time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoggedEvent {
    pub id: u64,
    pub event: String,
    pub data: String,
}

impl LoggedEvent {
    pub fn frame(&self) -> String {
        sse::encode(self.id, &self.event, &self.data)
    }
}

/// The events of one generation, numbered 1, 2, 3, … for every reader alike.
#[derive(Debug, Default, Clone)]
pub struct EventLog {
    events: Vec<LoggedEvent>,
}

impl EventLog {
    pub fn from_events(events: Vec<LoggedEvent>) -> Self {
        EventLog { events }
    }

    /// Appends an event and returns it with its id.
    pub fn push(&mut self, event: &str, data: &Value) -> &LoggedEvent {
        let id = self.events.last().map_or(1, |e| e.id + 1);
        self.events.push(LoggedEvent {
            id,
            event: event.to_owned(),
            data: data.to_string(),
        });
        self.events.last().expect("just pushed")
    }

    /// The events a reader resuming after `after` has not seen.
    pub fn after(&self, after: u64) -> &[LoggedEvent] {
        let start = self.events.partition_point(|e| e.id <= after);
        &self.events[start..]
    }

    /// The reply text the log carries: its deltas, concatenated.
    pub fn text(&self) -> String {
        self.events
            .iter()
            .filter(|e| e.event == "delta")
            .filter_map(|e| serde_json::from_str::<Value>(&e.data).ok())
            .filter_map(|v| v["content"].as_str().map(str::to_owned))
            .collect()
    }

    pub fn last_id(&self) -> u64 {
        self.events.last().map_or(0, |e| e.id)
    }
}

pub fn progress(stage: &str, user_message_id: &str, message_id: &str) -> Value {
    json!({ "stage": stage, "userMessageId": user_message_id, "messageId": message_id })
}

pub fn delta(text: &str) -> Value {
    json!({ "content": text })
}

pub fn complete(message: &Message) -> Value {
    json!({ "message": message, "usage": message.usage })
}

pub fn error_event(err: &ApiError) -> Value {
    json!({ "error": err.code(), "message": err.message(), "statusCode": err.status() })
}

/// Where a resumed stream starts: `Last-Event-ID` wins over `?after=`; neither is 0.
pub fn resume_cursor(last_event_id: Option<&str>, after: Option<&str>) -> Result<u64, ApiError> {
    let (name, value) = match (last_event_id, after) {
        (Some(v), _) => ("Last-Event-ID", v),
        (None, Some(v)) => ("after", v),
        (None, None) => return Ok(0),
    };
    let v = value.trim();
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::field(name, "must be a non-negative integer"));
    }
    // At most 2^63 - 1: the cursor is compared as a signed integer in the object's SQL, where
    // a larger one would wrap around to a negative and replay the whole stream.
    v.parse::<i64>()
        .map(|n| n as u64)
        .map_err(|_| ApiError::field(name, "must be an integer from 0 to 9223372036854775807"))
}

/// What the Worker asks of a conversation's object. The Worker has already checked, in D1,
/// that the caller owns the conversation.
#[derive(Debug, Clone, Serialize, Deserialize)]
// Externally tagged (serde's default): internally tagged enums cost the wasm several KB each.
#[serde(rename_all = "camelCase")]
pub enum Op {
    /// Start a turn; `stream` answers with the SSE stream, else with the finished turn.
    Start {
        turn: Box<TurnRequest>,
        stream: bool,
        /// Answer at once with the turn's two messages (the reply `generating`).
        #[serde(default)]
        background: bool,
    },
    List(crate::http::cursor::PageRequest),
    #[serde(rename_all = "camelCase")]
    Resume {
        message_id: String,
        after: u64,
    },
    #[serde(rename_all = "camelCase")]
    Cancel {
        message_id: String,
    },
    /// The conversation is being deleted: cancel, then remove all storage.
    Wipe,
    /// Its `Activity`, or `null` when it has no message (a read that creates nothing).
    Activity,
    /// The turn started under this `Idempotency-Key`, if any: its stream from event 1, or
    /// (`stream: false`) its result once finished (`Busy` while it runs, `NotFound` if none).
    Replay {
        key: String,
        stream: bool,
    },
    /// Rate a reply (SPEC §19; the latest rating wins). Answers the `Message` with it.
    #[serde(rename_all = "camelCase")]
    Feedback {
        message_id: String,
        rating: i8,
        comment: Option<String>,
    },
    /// Every message, for an export: `json` answers `{conversation, messages}`, `markdown`
    /// the text (`conversations::export`). `conversation` is the row the API read.
    Export {
        conversation: Value,
        format: String,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TurnRequest {
    pub conversation_id: String,
    pub content: String,
    pub model: String,
    pub system_prompt: String,
    pub history_budget: usize,
    pub max_tokens: u64,
    /// The end user as the model provider sees it (a hash).
    pub upstream_user: String,
    /// Who the turn's usage is counted for.
    pub account: TurnAccount,
    /// The account's concurrency slot this turn holds; released when it ends, however.
    pub lease_id: Option<String>,
    /// Set when that slot was only held (taken beside the caller's verdict, `spend::gate`):
    /// the object confirms it for this long once the turn has started.
    #[serde(default)]
    pub confirm_lease_ms: Option<i64>,
    /// The twin's passages retrieved for this message, numbered from 1 in the prompt.
    #[serde(default)]
    pub sources: Vec<crate::knowledge::model::Source>,
    /// The request's `Idempotency-Key`: bound to this turn's messages when it starts, so a
    /// retry whose first request was cut off replays this turn instead of running another.
    #[serde(default)]
    pub idempotency_key: Option<String>,
    pub settings: TurnSettings,
}

/// What the turn needs of the deployment's settings. The Worker sends it: the conversation's
/// object lives in the cells worker, which reads no vars or secrets of its own, so the API's
/// configuration is the only one there is.
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TurnSettings {
    pub upstream: crate::config::UpstreamSettings,
    /// `UPSTREAM_API_KEY`, for this turn's call only: never stored, never printed.
    pub upstream_key: Option<String>,
    /// `Config::compaction_after_ms`, kept by the object for its compaction alarm.
    pub compaction_after_ms: i64,
    /// The webhook settings the turn's `message.*` event is delivered by.
    pub webhooks: Value,
}

impl std::fmt::Debug for TurnSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TurnSettings")
            .field("upstream", &self.upstream)
            .field(
                "upstream_key",
                &self.upstream_key.as_ref().map(|_| "[redacted]"),
            )
            .field("compaction_after_ms", &self.compaction_after_ms)
            .finish_non_exhaustive()
    }
}

/// The attribution of a turn: whose usage, through which key, twin and end user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TurnAccount {
    pub user_id: String,
    pub api_key_id: Option<String>,
    pub twin_id: String,
    pub end_user_id: Option<String>,
}

impl TurnAccount {
    /// What this turn adds to the account's usage.
    pub fn usage(&self, u: MessageUsage) -> crate::spend::model::TurnUsage {
        crate::spend::model::TurnUsage {
            user_id: self.user_id.clone(),
            api_key_id: self.api_key_id.clone(),
            twin_id: self.twin_id.clone(),
            end_user_id: self.end_user_id.clone(),
            prompt_tokens: u.prompt_tokens,
            completion_tokens: u.completion_tokens,
            estimated: u.estimated,
        }
    }
}

/// A page of history.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Page {
    pub messages: Vec<Message>,
    pub total: u64,
    /// A cursor page: whether more messages follow in its direction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub more: Option<bool>,
}

/// A finished plain (non-streamed) turn: the `201` body.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TurnResult {
    pub user_message: Message,
    pub message: Message,
    pub usage: Option<MessageUsage>,
}

/// Why the object refused or failed an op; crosses the Worker/object boundary as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Refusal {
    NotFound,
    /// The conversation was deleted (a turn that read its row before that).
    Deleted,
    #[serde(rename_all = "camelCase")]
    Busy {
        message_id: String,
    },
    Upstream {
        detail: String,
    },
    UpstreamTimeout,
    Internal {
        detail: String,
    },
    /// The generation has its most readers (`MAX_READERS`).
    TooManyReaders,
    /// A list's cursor (`startingAfter`/`endingBefore`) names no message of the conversation.
    UnknownCursor {
        field: String,
    },
    /// Only the twin's replies are rated.
    NotAReply,
}

/// The most readers one generation streams to at once (the starting request among them):
/// each is a stream the object writes every event to.
pub const MAX_READERS: usize = 20;

impl From<Refusal> for ApiError {
    fn from(r: Refusal) -> ApiError {
        match r {
            Refusal::NotFound => ApiError::NotFound("Message"),
            Refusal::Deleted => ApiError::NotFound("Conversation"),
            Refusal::Busy { message_id } => ApiError::ConversationBusy { message_id },
            Refusal::Upstream { detail } => ApiError::Upstream(detail),
            Refusal::UpstreamTimeout => ApiError::UpstreamTimeout,
            Refusal::Internal { detail } => ApiError::Internal(detail),
            Refusal::TooManyReaders => ApiError::RateLimited {
                reason: crate::http::error::LimitReason::Readers,
                retry_after: 1,
                limit: MAX_READERS as u64,
            },
            Refusal::UnknownCursor { field } => {
                ApiError::field(&field, crate::http::cursor::CURSOR_RULE)
            }
            Refusal::NotAReply => ApiError::field(
                "messageId",
                "must be a reply of the twin (a message with role assistant)",
            ),
        }
    }
}

impl From<&ApiError> for Refusal {
    fn from(e: &ApiError) -> Refusal {
        match e {
            ApiError::Upstream(d) => Refusal::Upstream { detail: d.clone() },
            ApiError::UpstreamTimeout => Refusal::UpstreamTimeout,
            ApiError::ConversationBusy { message_id } => Refusal::Busy {
                message_id: message_id.clone(),
            },
            other => Refusal::Internal {
                detail: other.log_detail().unwrap_or(other.code()).to_owned(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_that_lags_its_object_is_brought_up_to_date_and_never_back() {
        let row = Conversation {
            id: "conv_1".into(),
            user_id: "usr_1".into(),
            twin_id: "twn_1".into(),
            title: "t".into(),
            end_user_id: None,
            message_count: 2,
            created_at: "2026-12-06T10:00:00.000Z".into(),
            updated_at: "2026-12-06T10:30:00.000Z".into(),
            last_message_at: Some("2026-12-06T10:00:05.000Z".into()),
        };
        let live = Activity {
            message_count: 6,
            last_message_at: "2026-12-06T10:20:00.000Z".into(),
        };
        let c = row.clone().with_activity(Some(live));
        assert_eq!(c.message_count, 6);
        assert_eq!(
            c.last_message_at.as_deref(),
            Some("2026-12-06T10:20:00.000Z")
        );
        // A rename after the last turn keeps the later activity time.
        assert_eq!(c.updated_at, "2026-12-06T10:30:00.000Z");
        assert_eq!(row.clone().with_activity(None), row);
    }

    #[test]
    fn statuses_round_trip_and_cut_short_depends_on_text() {
        for s in [
            "completed",
            "generating",
            "cancelled",
            "incomplete",
            "failed",
        ] {
            assert_eq!(Status::parse(s).unwrap().as_str(), s);
        }
        assert_eq!(Status::parse("done"), None);
        assert_eq!(Status::cut_short(""), Status::Failed);
        assert_eq!(Status::cut_short("Xin"), Status::Incomplete);
    }

    #[test]
    fn settled_usage_holds_the_upstream_to_plausible_figures() {
        let absurd = Usage {
            prompt_tokens: 9_000_000_000_000,
            completion_tokens: -5,
            total_tokens: 1,
        };
        let u = MessageUsage::settled(Some(absurd), 10, 64, "ignored");
        assert_eq!(
            (
                u.prompt_tokens,
                u.completion_tokens,
                u.total_tokens,
                u.estimated
            ),
            (40, 0, 40, false)
        );
        assert!(MessageUsage::settled(None, 10, 64, "abcd").estimated);
    }

    #[test]
    fn usage_is_reported_or_estimated() {
        let reported = Usage {
            prompt_tokens: 10,
            completion_tokens: 5,
            total_tokens: 15,
        };
        let u = MessageUsage::of(Some(reported), 99, "ignored");
        assert_eq!((u.total_tokens, u.estimated), (15, false));
        let e = MessageUsage::of(None, 12, "abcdefghi");
        assert_eq!(
            (
                e.prompt_tokens,
                e.completion_tokens,
                e.total_tokens,
                e.estimated
            ),
            (12, 3, 15, true)
        );
        assert!(serde_json::to_value(u).unwrap().get("estimated").is_none());
        assert_eq!(serde_json::to_value(e).unwrap()["estimated"], true);
    }

    #[test]
    fn the_log_numbers_events_and_replays_after_a_cursor() {
        let mut log = EventLog::default();
        log.push("progress", &progress("accepted", "u", "m"));
        log.push("delta", &delta("Xin "));
        log.push("delta", &delta("chào 👋"));
        assert_eq!(log.last_id(), 3);
        assert_eq!(log.after(0).len(), 3);
        assert_eq!(log.after(1)[0].id, 2);
        assert!(log.after(3).is_empty());
        assert!(log.after(1_000).is_empty());
        assert_eq!(log.text(), "Xin chào 👋");
        let again = EventLog::from_events(log.after(0).to_vec());
        let frames: String = again.after(1).iter().map(LoggedEvent::frame).collect();
        assert_eq!(
            frames,
            "id: 2\nevent: delta\ndata: {\"content\":\"Xin \"}\n\nid: 3\nevent: delta\ndata: {\"content\":\"chào 👋\"}\n\n"
        );
    }

    #[test]
    fn resume_cursor_prefers_last_event_id_and_rejects_junk() {
        assert_eq!(resume_cursor(None, None).unwrap(), 0);
        assert_eq!(resume_cursor(None, Some("4")).unwrap(), 4);
        assert_eq!(resume_cursor(Some("7"), Some("4")).unwrap(), 7);
        assert_eq!(
            resume_cursor(None, Some("9223372036854775807")).unwrap(),
            i64::MAX as u64
        );
        for bad in [
            "",
            "-1",
            "abc",
            "1.5",
            "9223372036854775808",
            "18446744073709551615",
        ] {
            let err = resume_cursor(None, Some(bad)).unwrap_err();
            assert_eq!(err.code(), "VALIDATION_ERROR");
            assert!(err.details()["fields"]["after"].is_string());
        }
        let err = resume_cursor(Some("x"), None).unwrap_err();
        assert!(err.details()["fields"]["Last-Event-ID"].is_string());
    }

    #[test]
    fn refusals_cross_the_boundary_as_the_api_errors_they_stand_for() {
        let busy = Refusal::Busy {
            message_id: "msg_1".into(),
        };
        let wire = serde_json::to_string(&busy).unwrap();
        let back: Refusal = serde_json::from_str(&wire).unwrap();
        let err = ApiError::from(back);
        assert_eq!((err.status(), err.code()), (409, "CONVERSATION_BUSY"));
        assert_eq!(err.details()["messageId"], "msg_1");
        let up = Refusal::from(&ApiError::UpstreamTimeout);
        assert_eq!(ApiError::from(up).status(), 504);
    }

    #[test]
    fn message_view_is_camel_case_with_citations() {
        let m = Message {
            id: "msg_1".into(),
            conversation_id: "conv_1".into(),
            role: Role::Assistant,
            content: "Chào".into(),
            status: Status::Generating,
            model: Some("m".into()),
            usage: None,
            latency_ms: None,
            citations: vec![],
            suggestions: vec![],
            feedback: None,
            created_at: "2026-01-01T00:00:00.000Z".into(),
        };
        let v = serde_json::to_value(&m).unwrap();
        assert!(
            v.get("suggestions").is_none() && v.get("feedback").is_none(),
            "absent when none"
        );
        assert_eq!(v["conversationId"], "conv_1");
        assert_eq!(v["status"], "generating");
        assert_eq!(v["role"], "assistant");
        assert_eq!(v["citations"], json!([]));
        assert!(v["usage"].is_null());
        assert_eq!(complete(&m)["message"]["id"], "msg_1");
    }
}
