//! A twin's knowledge (docs/knowledge.md): its owner adds, lists and removes documents, which
//! live in the twin's own object; turns retrieve their passages as numbered sources. The owner
//! is checked in D1 before the object is called, so no object is made for a twin that is not
//! the caller's. Files and web pages (SPEC §17) go on to the ingest worker (`ingest`).

use crate::platform::request::Request;

use crate::http::context::{Ctx, Principal};
use crate::http::envelope::Deleted;
use crate::http::error::ApiError;
use crate::http::reply::Reply;
use crate::knowledge::client::{self as knowledge, Totals};
use crate::knowledge::ingest;
use crate::knowledge::model::{Document, NewDocument};
use crate::knowledge::protocol::Op;
use crate::platform::crypto::random_bytes;
use crate::platform::ids;
use crate::platform::request::{header, json_body, ListQuery};
use crate::platform::time;

/// 404 unless the caller owns the twin; else the characters of knowledge the account holds.
async fn owned(ctx: &Ctx, caller: &Principal, id: &str) -> Result<u64, ApiError> {
    ctx.store()?
        .owned_twin_knowledge(caller.user_id(), id)
        .await?
        .ok_or(ApiError::NotFound("Twin"))
}

/// The twin's row learns its new totals.
async fn recount(ctx: &Ctx, caller: &Principal, id: &str, t: Totals) -> Result<(), ApiError> {
    Ok(ctx
        .store()?
        .set_knowledge_totals(caller.user_id(), id, t.documents, t.chars)
        .await?)
}

fn new_id() -> String {
    ids::prefixed("doc", &random_bytes::<24>())
}

/// `POST /twins/{id}/knowledge` → 201 document (JSON text), or 202 `processing` (a
/// multipart file, or `{url}`: the ingest worker takes it from there).
pub async fn create(
    ctx: &Ctx,
    caller: &Principal,
    id: &str,
    req: &mut Request,
) -> Result<Reply, ApiError> {
    let multipart = header(req, "Content-Type")
        .is_some_and(|t| t.to_ascii_lowercase().starts_with("multipart/form-data"));
    if multipart {
        let used = owned(ctx, caller, id).await?;
        return ingest::add(
            ctx,
            caller.user_id(),
            id,
            &new_id(),
            used,
            ingest::Upload::File(req),
        )
        .await;
    }
    let body = json_body(req).await?;
    if body.contains_key("url") && !body.contains_key("content") {
        ingest::check_url(ctx, &body)?;
        let used = owned(ctx, caller, id).await?;
        let page = ingest::Upload::Page(serde_json::Value::Object(body).to_string());
        return ingest::add(ctx, caller.user_id(), id, &new_id(), used, page).await;
    }
    let input = NewDocument::parse(&body)?;
    let used = owned(ctx, caller, id).await?;
    let chars = input.content.chars().count() as u64;
    let cap = ctx.config.max_knowledge_chars;
    if used + chars > cap {
        return Err(ApiError::Conflict(format!(
            "This account's twins already hold {used} of their {cap} characters of knowledge; \
             delete documents first"
        )));
    }
    let mut doc = Document {
        id: new_id(),
        twin_id: id.to_owned(),
        chars,
        chunk_count: 0,
        title: input.title,
        source_url: input.source_url,
        status: "ready".to_owned(),
        error: None,
        kind: "text".to_owned(),
        format: None,
        filename: None,
        pages: None,
        created_at: time::rfc3339_ms(ctx.now_ms),
    };
    let max = ctx.config.max_knowledge_docs;
    match knowledge::add(&ctx.env, doc.clone(), max, input.content).await? {
        Some((totals, passages)) => {
            doc.chunk_count = passages;
            // The document is stored: it is answered 201 whatever D1 says (a 500 here would
            // have the client add it twice). A count left stale is set by the next add or
            // delete; it is tried twice first.
            if recount(ctx, caller, id, totals).await.is_err() {
                let _ = recount(ctx, caller, id, totals).await;
            }
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
    let totals = knowledge::delete(&ctx.env, id, child_id)
        .await?
        .ok_or(ApiError::NotFound("Document"))?;
    recount(ctx, caller, id, totals).await?;
    Reply::ok(Deleted::new(child_id))
}

/// `GET /twins/{id}/knowledge/{docId}` → the document (its status, for a file or a page being
/// processed) with the text its passages were cut from (`content`).
pub async fn get(
    ctx: &Ctx,
    caller: &Principal,
    id: &str,
    child_id: &str,
) -> Result<Reply, ApiError> {
    owned(ctx, caller, id).await?;
    let op = Op::Get {
        document_id: child_id.to_owned(),
    };
    let mut found: serde_json::Value = knowledge::call(&ctx.env, id, op).await?;
    let mut document = found["document"].take();
    if !document.is_object() {
        return Err(ApiError::NotFound("Document"));
    }
    document["content"] = found["content"].take();
    Reply::ok(document)
}

/// `POST /twins/{id}/knowledge/{docId}/refresh` → 202: an imported page is fetched again.
pub async fn refresh(
    ctx: &Ctx,
    caller: &Principal,
    id: &str,
    child_id: &str,
) -> Result<Reply, ApiError> {
    let used = owned(ctx, caller, id).await?;
    ingest::add(
        ctx,
        caller.user_id(),
        id,
        child_id,
        used,
        ingest::Upload::Refresh,
    )
    .await
}

/// `POST /twins/{id}/knowledge/search` `{query}` → the passages a turn would be given for it,
/// best first (at most five), with their page and section.
pub async fn search(
    ctx: &Ctx,
    caller: &Principal,
    id: &str,
    req: &mut Request,
) -> Result<Reply, ApiError> {
    let body = json_body(req).await?;
    let query = body
        .get("query")
        .and_then(serde_json::Value::as_str)
        .filter(|q| (1..=4000).contains(&q.chars().count()))
        .ok_or_else(|| ApiError::field("query", "must be a string of 1 to 4000 characters"))?;
    // `retrieve` skips the object for a twin whose D1 row counts no documents; a search asks
    // it anyway (the owner may be checking a document that is still processing).
    let documents = owned(ctx, caller, id).await.map(|_| 1)?;
    Reply::ok(knowledge::retrieve(&ctx.env, id, documents, query).await?)
}
