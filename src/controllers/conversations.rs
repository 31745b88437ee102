//! Conversations: created from a twin, listed by activity, renamed, deleted; and their history.

use serde_json::{json, Value};
use worker::Request;

use crate::core::conversation::{Op, Page};
use crate::core::error::ApiError;
use crate::core::spend;
use crate::core::validate::Fields;
use crate::core::{ids, time};
use crate::edge::context::{json_body, Ctx, ListQuery, Reply};
use crate::edge::conversation::ConversationObject;
use crate::edge::crypto::random_bytes;
use crate::edge::store::ConversationRow;

pub const DEFAULT_TITLE: &str = "New conversation";

pub fn conversation_json(c: &ConversationRow) -> Value {
    json!({
        "id": c.id,
        "twinId": c.twin_id,
        "title": c.title,
        "endUserId": c.end_user_id,
        "messageCount": c.message_count,
        "createdAt": c.created_at,
        "updatedAt": c.updated_at,
        "lastMessageAt": c.last_message_at,
    })
}

/// `endUserId`, checked with the other fields.
fn end_user(f: &mut Fields) -> Option<String> {
    let id = f.opt_string("endUserId", 1, 64)?;
    if spend::is_end_user_id(&id) {
        Some(id)
    } else {
        f.fail("endUserId", spend::END_USER_RULE);
        None
    }
}

/// `POST /conversations {twinId, title?, endUserId?}`.
pub async fn create(ctx: &mut Ctx, req: &mut Request) -> Result<Reply, ApiError> {
    let body = json_body(req).await?;
    let mut f = Fields::new(&body);
    let twin_id = f.string("twinId", 1, 100);
    let title = f.opt_string("title", 1, 200);
    let end_user_id = end_user(&mut f);
    f.finish()?;
    start(ctx, &twin_id.unwrap_or_default(), title, end_user_id).await
}

/// `POST /twins/{id} {title?}`: the seed's route, same result.
pub async fn create_for_twin(ctx: &mut Ctx, req: &mut Request) -> Result<Reply, ApiError> {
    let body = json_body(req).await?;
    let mut f = Fields::new(&body);
    let title = f.opt_string("title", 1, 200);
    let end_user_id = end_user(&mut f);
    f.finish()?;
    let twin_id = ctx.id().to_owned();
    start(ctx, &twin_id, title, end_user_id).await
}

async fn start(
    ctx: &mut Ctx,
    twin_id: &str,
    title: Option<String>,
    end_user_id: Option<String>,
) -> Result<Reply, ApiError> {
    let user = ctx.principal()?.user_id().to_owned();
    let store = ctx.store()?;
    store
        .twin_accessible(&user, twin_id)
        .await?
        .ok_or(ApiError::NotFound("Twin"))?;
    let now = time::rfc3339_ms(ctx.now_ms);
    let conversation = ConversationRow {
        id: ids::prefixed("conv", &random_bytes::<24>()),
        user_id: user,
        twin_id: twin_id.to_owned(),
        title: title.unwrap_or_else(|| DEFAULT_TITLE.to_owned()),
        end_user_id,
        message_count: 0,
        created_at: now.clone(),
        updated_at: now,
        last_message_at: None,
    };
    store.insert_conversation(&conversation).await?;
    Reply::created(conversation_json(&conversation))
}

pub async fn list(ctx: &mut Ctx, req: &Request) -> Result<Reply, ApiError> {
    let list = ListQuery::parse(req)?;
    let user = ctx.principal()?.user_id().to_owned();
    let (rows, total) = ctx
        .store()?
        .conversations_of(
            &user,
            list.filter("twinId"),
            list.filter("endUserId"),
            list.limit(),
            list.offset(),
        )
        .await?;
    list.reply(
        rows.iter().map(conversation_json).collect::<Vec<_>>(),
        total,
    )
}

pub async fn get(ctx: &mut Ctx) -> Result<Reply, ApiError> {
    let user = ctx.principal()?.user_id().to_owned();
    let c = ctx
        .store()?
        .conversation(&user, ctx.id())
        .await?
        .ok_or(ApiError::NotFound("Conversation"))?;
    Reply::ok(conversation_json(&c))
}

pub async fn rename(ctx: &mut Ctx, req: &mut Request) -> Result<Reply, ApiError> {
    let body = json_body(req).await?;
    let mut f = Fields::new(&body);
    let title = f.string("title", 1, 200);
    f.finish()?;
    let user = ctx.principal()?.user_id().to_owned();
    let now = time::rfc3339_ms(ctx.now_ms);
    let c = ctx
        .store()?
        .rename_conversation(&user, ctx.id(), &title.unwrap_or_default(), &now)
        .await?
        .ok_or(ApiError::NotFound("Conversation"))?;
    Reply::ok(conversation_json(&c))
}

/// The object of a conversation the caller owns (checked in D1), or 404.
pub async fn owned_object(ctx: &Ctx) -> Result<ConversationObject, ApiError> {
    let user_id = ctx.principal()?.user_id();
    ctx.store()?
        .conversation(user_id, ctx.id())
        .await?
        .ok_or(ApiError::NotFound("Conversation"))?;
    ConversationObject::get(&ctx.env, ctx.id())
}

pub async fn delete(ctx: &mut Ctx) -> Result<Reply, ApiError> {
    let user = ctx.principal()?.user_id().to_owned();
    // The object first (cancelling a running generation): a failure leaves the row to retry.
    owned_object(ctx).await?.call::<bool>(&Op::Wipe).await?;
    if !ctx.store()?.delete_conversation(&user, ctx.id()).await? {
        return Err(ApiError::NotFound("Conversation"));
    }
    Reply::ok(json!({ "id": ctx.id(), "deleted": true }))
}

pub async fn messages(ctx: &mut Ctx, req: &Request) -> Result<Reply, ApiError> {
    let list = ListQuery::parse(req)?;
    let page: Page = owned_object(ctx)
        .await?
        .call(&Op::List {
            limit: list.limit(),
            offset: list.offset(),
        })
        .await?;
    list.reply(page.messages, page.total)
}
