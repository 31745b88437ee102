//! Twins: browsing (public ones and the caller's own) and owner management.

use crate::platform::request::Request;

use crate::http::context::{Ctx, Principal};
use crate::http::envelope::Deleted;
use crate::http::error::{ApiError, StoreError};
use crate::http::reply::Reply;
use crate::platform::crypto::random_bytes;
use crate::platform::ids;
use crate::platform::request::{json_body, ListQuery};
use crate::platform::time;
use crate::spend::model as spend;
use crate::twins::model::{NewTwin, TwinPatch};

/// A slug already used by another of the owner's twins is a 409.
fn slug_taken(e: StoreError) -> ApiError {
    if e.is_unique_on("twins.slug") {
        ApiError::Conflict("You already have a twin with this slug".into())
    } else {
        e.into()
    }
}

pub async fn list(ctx: &Ctx, caller: &Principal, req: &Request) -> Result<Reply, ApiError> {
    let list = ListQuery::parse(req)?;
    let q = list.filter("q");
    if q.is_some_and(|q| q.chars().count() > 200) {
        return Err(ApiError::field("q", "must be at most 200 characters"));
    }
    let user = caller.user_id();
    let (twins, total, more) = ctx
        .store()?
        .twins_accessible(user, q, list.limit(), list.offset(), list.cursor())
        .await?;
    list.reply(
        twins.iter().map(|t| t.view(user)).collect::<Vec<_>>(),
        total,
        more,
    )
}

pub async fn get(ctx: &Ctx, caller: &Principal, id: &str) -> Result<Reply, ApiError> {
    if caller.grant().is_some_and(|g| g.twn != id) {
        return Err(ApiError::NotFound("Twin"));
    }
    let user = caller.user_id();
    let twin = ctx
        .store()?
        .twin_accessible(user, id)
        .await?
        .ok_or(ApiError::NotFound("Twin"))?;
    Reply::ok(twin.view(user))
}

pub async fn create(ctx: &Ctx, caller: &Principal, req: &mut Request) -> Result<Reply, ApiError> {
    let new = NewTwin::try_from(&json_body(req).await?)?;
    spend::check_model(new.model.as_deref(), &ctx.config.spend.allowed_models)?;
    let twin = new.into_twin(
        ids::prefixed("twn", &random_bytes::<24>()),
        caller.user_id().to_owned(),
        time::rfc3339_ms(ctx.now_ms),
    );
    let max = ctx.config.max_twins;
    if !ctx
        .store()?
        .insert_twin(&twin, max)
        .await
        .map_err(slug_taken)?
    {
        return Err(ApiError::Conflict(format!(
            "This account already has its maximum of {max} twins; delete one first"
        )));
    }
    Reply::created(twin.view(caller.user_id()))
}

pub async fn update(
    ctx: &Ctx,
    caller: &Principal,
    id: &str,
    req: &mut Request,
) -> Result<Reply, ApiError> {
    let patch = TwinPatch::try_from(&json_body(req).await?)?;
    spend::check_model(patch.model.as_deref(), &ctx.config.spend.allowed_models)?;
    let owner = caller.user_id();
    let now = time::rfc3339_ms(ctx.now_ms);
    let twin = ctx
        .store()?
        .update_twin(owner, id, &patch, &now)
        .await
        .map_err(slug_taken)?
        .ok_or(ApiError::NotFound("Twin"))?;
    Reply::ok(twin.view(owner))
}

pub async fn delete(ctx: &Ctx, caller: &Principal, id: &str) -> Result<Reply, ApiError> {
    let now = time::rfc3339_ms(ctx.now_ms);
    let store = ctx.store()?;
    if !store.delete_twin(caller.user_id(), id, &now).await? {
        return Err(ApiError::NotFound("Twin"));
    }
    // Its knowledge goes (SPEC §14: deleted twins' documents are purged), off the answer's path.
    let env = ctx.env.clone();
    let twin_id = id.to_owned();
    ctx.worker.wait_until(async move {
        let _ = crate::knowledge::client::purge(&env, &twin_id).await;
        if let Ok(store) = crate::platform::d1::Store::new(&env) {
            let _ = store.purge_legacy_knowledge(&twin_id).await;
        }
    });
    Reply::ok(Deleted::new(id))
}
