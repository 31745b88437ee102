//! Talking to a twin: a plain reply, or the same reply streamed as Server-Sent Events. Every
//! word is stored: the user message before the model is called, the reply when it completes
//! (also if the client has gone), or what arrived if the model fails.

use futures::channel::mpsc;
use serde_json::{json, Value};
use worker::{Date, Env, Headers, Request, Response};

use crate::core::chat::{self, Turn};
use crate::core::error::ApiError;
use crate::core::validate::Fields;
use crate::core::{ids, sse, time};
use crate::edge::config;
use crate::edge::context::{json_body, Ctx, Reply};
use crate::edge::crypto::random_bytes;
use crate::edge::store::{MessageRow, Store};
use crate::edge::upstream::{Progress, Upstream};

use super::conversations::message_json;

pub const MAX_CONTENT_CHARS: usize = 32_000;
/// The most history rows read before trimming to the token budget.
const HISTORY_ROWS: u64 = 100;

/// Everything decided before the model is called; any failure here is a plain JSON error.
struct Turnout {
    env: Env,
    user_id: String,
    user_message: MessageRow,
    assistant_id: String,
    model: String,
    body: Value,
}

async fn prepare(ctx: &mut Ctx, req: &mut Request) -> Result<Turnout, ApiError> {
    let body = json_body(req).await?;
    let mut f = Fields::new(&body);
    let content = f.raw_string("content", 1, MAX_CONTENT_CHARS);
    f.finish()?;
    let content = content.unwrap_or_default();
    if content.trim().is_empty() {
        return Err(ApiError::field("content", "must not be blank"));
    }

    let user_id = ctx.principal()?.user_id().to_owned();
    let store = ctx.store()?;
    let user_message = MessageRow {
        id: ids::prefixed("msg", &random_bytes::<24>()),
        conversation_id: ctx.id().to_owned(),
        role: "user".into(),
        content,
        status: "completed".into(),
        model: None,
        prompt_tokens: None,
        completion_tokens: None,
        total_tokens: None,
        latency_ms: None,
        created_at: time::rfc3339_ms(ctx.now_ms),
    };
    // Stored before the model is called: the question is never lost.
    let (chat_context, history) = store
        .open_turn(&user_id, &user_message, HISTORY_ROWS)
        .await?
        .ok_or(ApiError::NotFound("Conversation"))?;
    let budget = config::var_u64(&ctx.env, "HISTORY_TOKEN_BUDGET", 3000) as usize;
    let history: &[Turn] = chat::trim_history(&history, budget);
    let model = chat_context
        .model
        .or_else(|| config::var(&ctx.env, "DEFAULT_MODEL"))
        .unwrap_or_else(|| "gpt-4o-mini".into());
    let body = chat::request_body(
        &model,
        &chat_context.system_prompt,
        history,
        &user_message.content,
    );
    Ok(Turnout {
        env: ctx.env.clone(),
        user_id,
        user_message,
        assistant_id: ids::prefixed("msg", &random_bytes::<24>()),
        model,
        body,
    })
}

/// Stores the reply with the status its ending gives it.
async fn store_reply(
    t: &Turnout,
    reply: &chat::Reply,
    failure: Option<&ApiError>,
    started_ms: u64,
) -> Result<MessageRow, ApiError> {
    let now = Date::now().as_millis();
    let row = MessageRow {
        id: t.assistant_id.clone(),
        conversation_id: t.user_message.conversation_id.clone(),
        role: "assistant".into(),
        content: reply.content.clone(),
        status: if failure.is_some() {
            reply.failed_status()
        } else {
            "completed"
        }
        .into(),
        model: Some(t.model.clone()),
        prompt_tokens: reply.usage.map(|u| u.prompt_tokens),
        completion_tokens: reply.usage.map(|u| u.completion_tokens),
        total_tokens: reply.usage.map(|u| u.total_tokens),
        latency_ms: Some(now.saturating_sub(started_ms) as i64),
        created_at: time::rfc3339_ms(now as i64),
    };
    Store::new(&t.env)?.add_message(&t.user_id, &row).await?;
    Ok(row)
}

fn usage_json(reply: &chat::Reply) -> Value {
    reply.usage.map_or(Value::Null, chat::Usage::to_json)
}

/// `POST /conversations/{id}/messages` → 201 once the whole reply is stored.
pub async fn send(ctx: &mut Ctx, req: &mut Request) -> Result<Reply, ApiError> {
    let turn = prepare(ctx, req).await?;
    let started = Date::now().as_millis();
    let (reply, failure) = Upstream::from_env(&turn.env)
        .complete(&turn.body, |_| {})
        .await;
    let stored = store_reply(&turn, &reply, failure.as_ref(), started).await?;
    if let Some(err) = failure {
        return Err(err);
    }
    Reply::created(json!({
        "userMessage": message_json(&turn.user_message),
        "message": message_json(&stored),
        "usage": usage_json(&reply),
    }))
}

/// `POST /conversations/{id}/messages/stream` → `text/event-stream`, opened at once.
pub async fn stream(ctx: &mut Ctx, req: &mut Request) -> Result<Reply, ApiError> {
    let turn = prepare(ctx, req).await?;
    let (tx, rx) = mpsc::unbounded::<Result<Vec<u8>, worker::Error>>();
    let ids = json!({ "userMessageId": turn.user_message.id, "messageId": turn.assistant_id });
    let mut events = Events { tx, next_id: 1 };
    events.send("progress", &with_stage(&ids, "accepted"));

    // The generation is the request's background work, not the response's: if the client
    // goes away, the reply still runs to its end and is stored.
    ctx.worker.wait_until(async move {
        let started = Date::now().as_millis();
        let (reply, failure) = Upstream::from_env(&turn.env)
            .complete(&turn.body, |p| match p {
                Progress::Generating => events.send("progress", &with_stage(&ids, "generating")),
                Progress::Delta(text) => events.send("delta", &json!({ "content": text })),
                Progress::Idle => events.raw(sse::PING),
            })
            .await;
        let stored = store_reply(&turn, &reply, failure.as_ref(), started).await;
        match (failure, stored) {
            (None, Ok(message)) => {
                events.send("complete", &json!({ "message": message_json(&message), "usage": usage_json(&reply) }))
            }
            (Some(err), _) | (None, Err(err)) => events.send(
                "error",
                &json!({ "error": err.code(), "message": err.message(), "statusCode": err.status() }),
            ),
        }
    });

    let headers = Headers::new();
    let _ = headers.set("Content-Type", "text/event-stream; charset=utf-8");
    let _ = headers.set("Cache-Control", "no-cache");
    let _ = headers.set("X-Accel-Buffering", "no");
    let resp = Response::from_stream(rx)
        .map_err(ApiError::internal)?
        .with_headers(headers);
    Ok(Reply::Raw(resp))
}

fn with_stage(ids: &Value, stage: &str) -> Value {
    let mut v = json!({ "stage": stage });
    if let (Some(target), Some(source)) = (v.as_object_mut(), ids.as_object()) {
        target.extend(source.clone());
    }
    v
}

/// Our side of the SSE stream. Sends fail once the client has gone; that is fine.
struct Events {
    tx: mpsc::UnboundedSender<Result<Vec<u8>, worker::Error>>,
    next_id: u64,
}

impl Events {
    fn send(&mut self, event: &str, data: &Value) {
        let text = sse::encode(self.next_id, event, &data.to_string());
        self.next_id += 1;
        self.raw(&text);
    }

    fn raw(&mut self, text: &str) {
        let _ = self.tx.unbounded_send(Ok(text.as_bytes().to_vec()));
    }
}
