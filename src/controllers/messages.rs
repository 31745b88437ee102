//! Talking to a twin. The conversation's Durable Object owns the turn: it stores the question,
//! makes the model call and keeps the reply's event log. These handlers check the caller in D1
//! (ownership, the twin's visibility, the persona) and hand the turn to the object: a plain
//! reply waits for its end, a streamed one is the object's event stream, which can be resumed
//! (`GET …/stream`) and cancelled (`POST …/cancel`). The guide is docs/streaming.md.

use worker::Request;

use crate::core::conversation::{self, Message, Op, TurnRequest, TurnResult};
use crate::core::error::ApiError;
use crate::core::validate::Fields;
use crate::edge::config;
use crate::edge::context::{header, json_body, Ctx, Reply};
use crate::edge::conversation::ConversationObject;

pub const MAX_CONTENT_CHARS: usize = 32_000;

/// Validates the message and reads what the model needs; nothing is stored yet.
async fn turn(ctx: &Ctx, req: &mut Request) -> Result<TurnRequest, ApiError> {
    let body = json_body(req).await?;
    let mut f = Fields::new(&body);
    let content = f.raw_string("content", 1, MAX_CONTENT_CHARS);
    f.finish()?;
    let content = content.unwrap_or_default();
    if content.trim().is_empty() {
        return Err(ApiError::field("content", "must not be blank"));
    }
    let user_id = ctx.principal()?.user_id();
    let chat = ctx
        .store()?
        .chat_context(user_id, ctx.id())
        .await?
        .ok_or(ApiError::NotFound("Conversation"))?;
    let model = chat
        .model
        .or_else(|| config::var(&ctx.env, "DEFAULT_MODEL"))
        .unwrap_or_else(|| "gpt-4o-mini".into());
    Ok(TurnRequest {
        conversation_id: ctx.id().to_owned(),
        content,
        model,
        system_prompt: chat.system_prompt,
        history_budget: config::var_u64(&ctx.env, "HISTORY_TOKEN_BUDGET", 3000) as usize,
    })
}

/// `POST /conversations/{id}/messages` → 201 once the whole reply is stored.
pub async fn send(ctx: &mut Ctx, req: &mut Request) -> Result<Reply, ApiError> {
    let turn = turn(ctx, req).await?;
    let object = ConversationObject::get(&ctx.env, ctx.id())?;
    let result: TurnResult = object
        .call(&Op::Start {
            turn,
            stream: false,
        })
        .await?;
    Reply::created(result)
}

/// `POST /conversations/{id}/messages/stream` → `text/event-stream`, opened at once.
pub async fn stream(ctx: &mut Ctx, req: &mut Request) -> Result<Reply, ApiError> {
    let turn = turn(ctx, req).await?;
    let object = ConversationObject::get(&ctx.env, ctx.id())?;
    let resp = object.stream(&Op::Start { turn, stream: true }).await?;
    Ok(Reply::Raw(resp))
}

/// The object of a conversation the caller owns, or 404.
async fn owned_object(ctx: &Ctx) -> Result<ConversationObject, ApiError> {
    let user_id = ctx.principal()?.user_id();
    ctx.store()?
        .conversation(user_id, ctx.id())
        .await?
        .ok_or(ApiError::NotFound("Conversation"))?;
    ConversationObject::get(&ctx.env, ctx.id())
}

/// `GET /conversations/{id}/messages/{messageId}/stream`: the events after `Last-Event-ID`
/// (or `?after=`), then the live generation.
pub async fn resume(ctx: &mut Ctx, req: &Request) -> Result<Reply, ApiError> {
    let after_param = req.url().ok().and_then(|u| {
        u.query_pairs()
            .find(|(k, _)| k == "after")
            .map(|(_, v)| v.into_owned())
    });
    let after = conversation::resume_cursor(
        header(req, "Last-Event-ID").as_deref(),
        after_param.as_deref(),
    )?;
    let object = owned_object(ctx).await?;
    let op = Op::Resume {
        message_id: ctx.child_id().to_owned(),
        after,
    };
    Ok(Reply::Raw(object.stream(&op).await?))
}

/// `POST /conversations/{id}/messages/{messageId}/cancel` → 200 `{message}`.
pub async fn cancel(ctx: &mut Ctx) -> Result<Reply, ApiError> {
    let object = owned_object(ctx).await?;
    let message: Message = object
        .call(&Op::Cancel {
            message_id: ctx.child_id().to_owned(),
        })
        .await?;
    Reply::ok(serde_json::json!({ "message": message }))
}
