//! Conversations: created from a twin, listed by activity, renamed, deleted; and their history.

use crate::platform::request::Request;

use crate::conversations::client::ConversationObject;
use crate::conversations::model::{
    self as conv, Activity, Conversation, NewConversation, Op, Page,
};
use crate::http::context::{Ctx, Principal};
use crate::http::envelope::Deleted;
use crate::http::error::ApiError;
use crate::http::reply::Reply;
use crate::http::validate::Fields;
use crate::platform::crypto::random_bytes;
use crate::platform::ids;
use crate::platform::request::{json_body, query_params, ListQuery};
use crate::platform::time;

/// `POST /conversations {twinId, title?, endUserId?}`.
pub async fn create(ctx: &Ctx, caller: &Principal, req: &mut Request) -> Result<Reply, ApiError> {
    let new = NewConversation::parse(&json_body(req).await?, None)?;
    start(ctx, caller, new).await
}

/// `POST /twins/{id} {title?, endUserId?}`: the seed's route, same result.
pub async fn create_for_twin(
    ctx: &Ctx,
    caller: &Principal,
    id: &str,
    req: &mut Request,
) -> Result<Reply, ApiError> {
    let new = NewConversation::parse(&json_body(req).await?, Some(id))?;
    start(ctx, caller, new).await
}

async fn start(ctx: &Ctx, caller: &Principal, mut new: NewConversation) -> Result<Reply, ApiError> {
    if let Some(grant) = caller.grant() {
        // A client token starts conversations of its own twin and end user, none other.
        let other_end_user = new.end_user_id.as_ref().is_some_and(|e| *e != grant.eu);
        if new.twin_id != grant.twn || other_end_user || grant.cnv.is_some() {
            return Err(ApiError::Forbidden(
                "This client token starts conversations only with its own twin and end user",
            ));
        }
        new.end_user_id = Some(grant.eu.clone());
    }
    let user = caller.user_id();
    let store = ctx.store()?;
    store
        .twin_accessible(user, &new.twin_id)
        .await?
        .ok_or(ApiError::NotFound("Twin"))?;
    let now = time::rfc3339_ms(ctx.now_ms);
    let conversation = Conversation {
        id: ids::prefixed("conv", &random_bytes::<24>()),
        user_id: user.to_owned(),
        twin_id: new.twin_id,
        title: new.title,
        end_user_id: new.end_user_id,
        message_count: 0,
        created_at: now.clone(),
        updated_at: now,
        last_message_at: None,
    };
    store.insert_conversation(&conversation).await?;
    Reply::created(conversation)
}

pub async fn list(ctx: &Ctx, caller: &Principal, req: &Request) -> Result<Reply, ApiError> {
    let list = ListQuery::parse(req)?;
    let (rows, total, more) = ctx
        .store()?
        .conversations_of(
            caller.user_id(),
            list.filter("twinId"),
            list.filter("endUserId"),
            list.limit(),
            list.offset(),
            list.cursor(),
        )
        .await?;
    list.reply(rows, total, more)
}

/// The D1 row (the owner's check) and, in parallel, its object's own activity, which the row
/// may lag by up to `ROW_FLUSH_MS`: a client reads its own turns at once.
pub async fn get(ctx: &Ctx, caller: &Principal, id: &str) -> Result<Reply, ApiError> {
    let store = ctx.store()?;
    let object = ConversationObject::get(&ctx.env, id)?;
    let (row, activity) = futures::join!(
        store.conversation(caller.user_id(), id),
        object.call::<Option<Activity>>(&Op::Activity)
    );
    let c = row?
        .filter(|c| caller.may_use(&c.id, &c.twin_id, c.end_user_id.as_deref()))
        .ok_or(ApiError::NotFound("Conversation"))?;
    // An object that cannot answer leaves the row as D1 has it (at most ROW_FLUSH_MS behind).
    Reply::ok(c.with_activity(activity.ok().flatten()))
}

pub async fn rename(
    ctx: &Ctx,
    caller: &Principal,
    id: &str,
    req: &mut Request,
) -> Result<Reply, ApiError> {
    let body = json_body(req).await?;
    let mut f = Fields::new(&body);
    let title = f.string("title", conv::TITLE);
    f.finish()?;
    let title = Fields::checked(title)?;
    let now = time::rfc3339_ms(ctx.now_ms);
    let c = ctx
        .store()?
        .rename_conversation(caller.user_id(), id, &title, &now)
        .await?
        .ok_or(ApiError::NotFound("Conversation"))?;
    Reply::ok(c)
}

/// The object of a conversation the caller owns (checked in D1), or 404.
pub async fn owned_object(
    ctx: &Ctx,
    caller: &Principal,
    id: &str,
) -> Result<ConversationObject, ApiError> {
    ctx.store()?
        .conversation(caller.user_id(), id)
        .await?
        .filter(|c| caller.may_use(id, &c.twin_id, c.end_user_id.as_deref()))
        .ok_or(ApiError::NotFound("Conversation"))?;
    ConversationObject::get(&ctx.env, id)
}

pub async fn delete(ctx: &Ctx, caller: &Principal, id: &str) -> Result<Reply, ApiError> {
    let store = ctx.store()?;
    let row = store
        .conversation(caller.user_id(), id)
        .await?
        .ok_or(ApiError::NotFound("Conversation"))?;
    // The object first (cancelling a running generation): a failure leaves the row to retry.
    ConversationObject::get(&ctx.env, id)?
        .call::<bool>(&Op::Wipe)
        .await?;
    if !store.delete_conversation(caller.user_id(), id).await? {
        return Err(ApiError::NotFound("Conversation"));
    }
    // Its ratings stay counted in the twin's report, without their comments.
    let op = crate::knowledge::protocol::Op::ForgetConversation {
        conversation_id: id.to_owned(),
    };
    crate::knowledge::client::call::<i64>(&ctx.env, &row.twin_id, op).await?;
    Reply::ok(Deleted::new(id))
}

/// `GET /conversations/{id}/export?format=json|markdown`: every message with its citations,
/// suggestions and feedback; JSON in the envelope (`{conversation, messages}`), Markdown as a
/// `text/markdown` attachment.
pub async fn export(
    ctx: &Ctx,
    caller: &Principal,
    id: &str,
    req: &Request,
) -> Result<Reply, ApiError> {
    let format = query_params(req)
        .remove("format")
        .unwrap_or_else(|| "json".into());
    if format != "json" && format != "markdown" {
        return Err(ApiError::field("format", "must be json or markdown"));
    }
    let row = ctx
        .store()?
        .conversation(caller.user_id(), id)
        .await?
        .ok_or(ApiError::NotFound("Conversation"))?;
    let op = Op::Export {
        conversation: serde_json::to_value(&row).map_err(ApiError::internal)?,
        format: format.clone(),
    };
    let export: serde_json::Value = ConversationObject::get(&ctx.env, id)?.call(&op).await?;
    let Some(text) = export.as_str().filter(|_| format == "markdown") else {
        return Reply::ok(export);
    };
    let headers = worker::Headers::new();
    let _ = headers.set("Content-Type", "text/markdown; charset=utf-8");
    let _ = headers.set(
        "Content-Disposition",
        &format!("attachment; filename=\"{id}.md\""),
    );
    let response = worker::Response::ok(text)
        .map_err(ApiError::internal)?
        .with_headers(headers);
    Ok(Reply::Raw(response))
}

pub async fn messages(
    ctx: &Ctx,
    caller: &Principal,
    id: &str,
    req: &Request,
) -> Result<Reply, ApiError> {
    let list = ListQuery::parse(req)?;
    let page: Page = owned_object(ctx, caller, id)
        .await?
        .call(&Op::List(list.page_request()))
        .await?;
    list.reply(page.messages, page.total, page.more)
}
