//! A twin's knowledge (docs/knowledge.md): its owner adds, lists and removes documents; turns
//! retrieve their passages as numbered sources.

use crate::platform::request::Request;

use crate::http::context::{Ctx, Principal};
use crate::http::envelope::Deleted;
use crate::http::error::ApiError;
use crate::http::reply::Reply;
use crate::knowledge::model::{Document, NewDocument};
use crate::knowledge::store::NotAdded;
use crate::platform::crypto::random_bytes;
use crate::platform::ids;
use crate::platform::request::{json_body, ListQuery};
use crate::platform::time;

/// `POST /twins/{id}/knowledge` → 201 document.
pub async fn create(
    ctx: &Ctx,
    caller: &Principal,
    id: &str,
    req: &mut Request,
) -> Result<Reply, ApiError> {
    let input = NewDocument::parse(&json_body(req).await?)?;
    let owner = caller.user_id().to_owned();
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
    match ctx
        .store()?
        .add_document(&owner, &doc, &passages, max)
        .await?
    {
        Ok(()) => Reply::created(doc),
        Err(NotAdded::NoTwin) => Err(ApiError::NotFound("Twin")),
        Err(NotAdded::Full) => Err(ApiError::Conflict(format!(
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
    let owner = caller.user_id().to_owned();
    let (docs, total) = ctx
        .store()?
        .documents(&owner, id, list.limit(), list.offset())
        .await?
        .ok_or(ApiError::NotFound("Twin"))?;
    list.reply(docs, total)
}

/// `DELETE /twins/{id}/knowledge/{docId}` → 200 `{id, deleted: true}`.
pub async fn delete(
    ctx: &Ctx,
    caller: &Principal,
    id: &str,
    child_id: &str,
) -> Result<Reply, ApiError> {
    let owner = caller.user_id().to_owned();
    if !ctx.store()?.delete_document(&owner, id, child_id).await? {
        return Err(ApiError::NotFound("Document"));
    }
    Reply::ok(Deleted::new(child_id))
}
