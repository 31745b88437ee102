//! A twin's knowledge (docs/knowledge.md): its owner adds, lists and removes documents, which
//! live in the twin's own object; turns retrieve their passages as numbered sources. The owner
//! is checked in D1 before the object is called, so no object is made for a twin that is not
//! the caller's.

use crate::platform::request::Request;

use crate::http::context::{Ctx, Principal};
use crate::http::envelope::Deleted;
use crate::http::error::ApiError;
use crate::http::reply::Reply;
use crate::knowledge::client as knowledge;
use crate::knowledge::model::{Document, NewDocument};
use crate::platform::crypto::random_bytes;
use crate::platform::ids;
use crate::platform::request::{json_body, ListQuery};
use crate::platform::time;

/// 404 unless the caller owns the twin.
async fn owned(ctx: &Ctx, caller: &Principal, id: &str) -> Result<(), ApiError> {
    if ctx.store()?.owns_twin(caller.user_id(), id).await? {
        Ok(())
    } else {
        Err(ApiError::NotFound("Twin"))
    }
}

/// The twin's row learns its new number of documents.
async fn recount(ctx: &Ctx, caller: &Principal, id: &str, n: u64) -> Result<(), ApiError> {
    Ok(ctx
        .store()?
        .set_knowledge_docs(caller.user_id(), id, n)
        .await?)
}

/// `POST /twins/{id}/knowledge` → 201 document.
pub async fn create(
    ctx: &Ctx,
    caller: &Principal,
    id: &str,
    req: &mut Request,
) -> Result<Reply, ApiError> {
    let input = NewDocument::parse(&json_body(req).await?)?;
    owned(ctx, caller, id).await?;
    let passages = input.passages();
    let doc = Document {
        id: ids::prefixed("doc", &random_bytes::<24>()),
        twin_id: id.to_owned(),
        chars: input.content.chars().count() as u64,
        chunk_count: passages.len() as u64,
        title: input.title,
        source_url: input.source_url,
        created_at: time::rfc3339_ms(ctx.now_ms),
    };
    let max = ctx.config.max_knowledge_docs;
    match knowledge::add(&ctx.env, doc.clone(), passages, max).await? {
        Some(n) => {
            recount(ctx, caller, id, n).await?;
            Reply::created(doc)
        }
        None => Err(ApiError::Conflict(format!(
            "This twin already has its maximum of {max} documents; delete one first"
        ))),
    }
}

/// `GET /twins/{id}/knowledge` → the documents, newest first, without their content.
pub async fn list(
    ctx: &Ctx,
    caller: &Principal,
    id: &str,
    req: &Request,
) -> Result<Reply, ApiError> {
    let list = ListQuery::parse(req)?;
    owned(ctx, caller, id).await?;
    let (docs, total, more) = knowledge::list(&ctx.env, id, list.page_request()).await?;
    list.reply(docs, total, more)
}

/// `DELETE /twins/{id}/knowledge/{docId}` → 200 `{id, deleted: true}`.
pub async fn delete(
    ctx: &Ctx,
    caller: &Principal,
    id: &str,
    child_id: &str,
) -> Result<Reply, ApiError> {
    owned(ctx, caller, id).await?;
    let n = knowledge::delete(&ctx.env, id, child_id)
        .await?
        .ok_or(ApiError::NotFound("Document"))?;
    recount(ctx, caller, id, n).await?;
    Reply::ok(Deleted::new(child_id))
}
