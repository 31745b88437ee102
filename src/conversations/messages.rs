//! Talking to a twin. The conversation's Durable Object owns the turn: it stores the question,
//! makes the model call and keeps the reply's event log. These handlers check the caller in D1
//! (ownership, the twin's visibility, the persona) and hand the turn to the object: a plain
//! reply waits for its end, a streamed one is the object's event stream, which can be resumed
//! (`GET …/stream`) and cancelled (`POST …/cancel`). The guide is docs/streaming.md.

use crate::platform::request::Request;
use std::cell::RefCell;

use crate::conversations::client::ConversationObject;
use crate::conversations::model::{
    self as conversation, Message, NewMessage, Op, TurnAccount, TurnRequest, TurnSettings,
};
use crate::http::context::{Call, Ctx, Principal};
use crate::http::error::ApiError;
use crate::http::reply::Reply;
use crate::platform::d1::near_then_primary;
use crate::platform::request::{header, json_body, query_params};
use crate::spend::model as spend;

use crate::knowledge::client as knowledge;
use crate::spend::gate;

use crate::conversations::handlers::owned_object;

thread_local! {
    /// The twin of each of the last conversations this isolate started a turn in whose twin
    /// had documents. A conversation's twin never changes, so the next turn here asks the
    /// twin's object for passages beside the conversation's row instead of after it. Only a
    /// hint: the row read beside it decides.
    static TWINS: RefCell<Vec<(String, String)>> = const { RefCell::new(Vec::new()) };
}

/// The most conversations remembered per isolate (a scan of them costs nothing beside a turn).
const MAX_TWINS: usize = 256;

/// Validates the message, reads what the model needs and applies the spend limits (`gate`);
/// nothing is stored yet. With a key this isolate admitted before, everything here runs beside
/// the key's verdict (`Call::verified`): the conversation's row (D1), the twin's passages (its
/// object, for a conversation seen here before) and the account's slot, held only in its
/// object's memory until the turn starts. The conversation's object is then the second and
/// last round trip before the model is called.
async fn turn(
    ctx: &Ctx,
    caller: &Principal,
    call: &Call,
    id: &str,
    req: &mut Request,
    stream: bool,
) -> Result<(TurnRequest, bool), ApiError> {
    let user_id = caller.user_id();
    let spend = &ctx.config.spend;
    let hint = TWINS.with(|t| {
        let t = t.borrow();
        t.iter()
            .find(|(c, _)| c == id)
            .map(|(_, twin)| twin.clone())
    });
    // The message, then (for a conversation seen here) the passages for it.
    let message = async {
        let message = NewMessage::try_from(&json_body(req).await?)?;
        if message.background && stream {
            return Err(ApiError::field(
                "background",
                "is for POST …/messages: a streamed reply is generated whatever the client does",
            ));
        }
        let early = match &hint {
            Some(twin) => knowledge::retrieve(&ctx.env, twin, 1, &message.content)
                .await
                .map(Some),
            None => Ok(None),
        };
        Ok((message, early))
    };
    let read = async {
        // The conversation's row (D1, the nearest replica): its owner, twin and persona; beside
        // the message's body, which the row does not need.
        let row = near_then_primary(&ctx.env, |store| async move {
            store.chat_context(user_id, id).await
        });
        let (row, message) = futures::join!(row, message);
        let (message, early) = message?;
        let Some(chat) = row?.filter(|c| caller.may_use(id, &c.twin_id, c.end_user_id.as_deref()))
        else {
            return Ok(None);
        };
        TWINS.with(|t| {
            let mut t = t.borrow_mut();
            t.retain(|(c, _)| c != id);
            if chat.knowledge_docs > 0 {
                if t.len() >= MAX_TWINS {
                    t.remove(0);
                }
                t.push((id.to_owned(), chat.twin_id.clone()));
            }
        });
        let sources = match early? {
            Some(s) if hint.as_ref() == Some(&chat.twin_id) => s,
            _ => {
                let content = &message.content;
                knowledge::retrieve(&ctx.env, &chat.twin_id, chat.knowledge_docs, content).await?
            }
        };
        Ok(Some((chat, sources, message)))
    };
    let gate::Admitted {
        context:
            (
                chat,
                sources,
                NewMessage {
                    content,
                    background,
                },
            ),
        model,
        lease,
        held,
    } = gate::admit(ctx, call, true, ("Conversation", read), |(c, ..)| {
        c.model.clone()
    })
    .await?;
    // The key's limits for this end user (only keys that set them pay for the check).
    gate::end_user(ctx, caller, chat.end_user_id.as_deref(), &lease).await?;
    let turn = TurnRequest {
        conversation_id: id.to_owned(),
        content,
        model,
        system_prompt: chat.system_prompt,
        history_budget: ctx.config.history_token_budget,
        max_tokens: spend.max_output_tokens,
        upstream_user: spend::upstream_user(user_id, chat.end_user_id.as_deref()),
        account: TurnAccount {
            user_id: user_id.to_owned(),
            api_key_id: caller.key_id().map(str::to_owned),
            twin_id: chat.twin_id,
            end_user_id: chat.end_user_id,
        },
        lease_id: Some(lease),
        confirm_lease_ms: held,
        sources,
        idempotency_key: call.idempotency_key.clone(),
        settings: TurnSettings {
            upstream: ctx.config.upstream.clone(),
            upstream_key: crate::config::env::upstream_key(&ctx.env),
            compaction_after_ms: ctx.config.compaction_after_ms(),
            webhooks: crate::webhooks::handlers::settings(&ctx.env),
        },
    };
    Ok((turn, background))
}

/// `POST /conversations/{id}/messages` (201 once the whole reply is stored; 202 at once with
/// `background: true`) and
/// `…/messages/stream` (`stream`: `text/event-stream`, opened at once). The turn is validated
/// and admitted, then handed to the conversation's object; on any error the turn's slot goes
/// back.
pub async fn send(
    ctx: &Ctx,
    caller: &Principal,
    id: &str,
    call: &Call,
    req: &mut Request,
    stream: bool,
) -> Result<Reply, ApiError> {
    let (turn, background) = turn(ctx, caller, call, id, req, stream).await?;
    let object = ConversationObject::get(&ctx.env, id)?;
    let lease = turn.lease_id.clone();
    let op = Op::Start {
        turn: Box::new(turn),
        stream,
        background,
    };
    let outcome = match object.turn(&op, stream).await {
        // Started, not finished: 202 (SPEC §15).
        Ok(Reply::Json { data, meta, .. }) if background => Ok(Reply::Json {
            status: 202,
            data,
            meta,
        }),
        other => other,
    };
    // Any error gives the slot back at once: a turn that never started (busy, refused, the
    // object unreachable) holds none, and one that ended in error has already released it (a
    // release is idempotent). Only a lost release waits out the lease.
    if let (Err(_), Some(lease)) = (&outcome, &lease) {
        gate::release(ctx, caller.user_id(), lease).await;
    }
    outcome
}

/// `GET /conversations/{id}/messages/{messageId}/stream`: the events after `Last-Event-ID`
/// (or `?after=`), then the live generation.
pub async fn resume(
    ctx: &Ctx,
    caller: &Principal,
    id: &str,
    child_id: &str,
    req: &Request,
) -> Result<Reply, ApiError> {
    let after_param = query_params(req).remove("after");
    let after = conversation::resume_cursor(
        header(req, "Last-Event-ID").as_deref(),
        after_param.as_deref(),
    )?;
    let object = owned_object(ctx, caller, id).await?;
    let op = Op::Resume {
        message_id: child_id.to_owned(),
        after,
    };
    object.stream(&op).await
}

/// `POST /conversations/{id}/messages/{messageId}/cancel` → 200 `{message}`.
pub async fn cancel(
    ctx: &Ctx,
    caller: &Principal,
    id: &str,
    child_id: &str,
) -> Result<Reply, ApiError> {
    let object = owned_object(ctx, caller, id).await?;
    let message: Message = object
        .call(&Op::Cancel {
            message_id: child_id.to_owned(),
        })
        .await?;
    Reply::ok(serde_json::json!({ "message": message }))
}
