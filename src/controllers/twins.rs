//! Twins: browsing (public ones and the caller's own) and owner management.

use serde_json::{json, Value};
use worker::Request;

use crate::core::error::ApiError;
use crate::core::spend;
use crate::core::twins::TwinInput;
use crate::core::{ids, time};
use crate::edge::config;
use crate::edge::context::{json_body, Ctx, ListQuery, Reply};
use crate::edge::crypto::random_bytes;
use crate::edge::store::TwinRow;

/// The public shape; `systemPrompt` only for the owner.
pub fn twin_json(t: &TwinRow, viewer: &str) -> Value {
    let expertise: Value = serde_json::from_str(&t.expertise).unwrap_or_else(|_| json!([]));
    let mut v = json!({
        "id": t.id,
        "name": t.name,
        "slug": t.slug,
        "headline": t.headline,
        "description": t.description,
        "avatarUrl": t.avatar_url,
        "expertise": expertise,
        "language": t.language,
        "greeting": t.greeting,
        "visibility": t.visibility,
        "model": t.model,
        "createdAt": t.created_at,
        "updatedAt": t.updated_at,
    });
    if t.owner_id == viewer {
        v["systemPrompt"] = Value::String(t.system_prompt.clone());
    }
    v
}

pub async fn list(ctx: &mut Ctx, req: &Request) -> Result<Reply, ApiError> {
    let list = ListQuery::parse(req)?;
    let q = list.filter("q");
    if q.is_some_and(|q| q.chars().count() > 200) {
        return Err(ApiError::field("q", "must be at most 200 characters"));
    }
    let user = ctx.principal()?.user_id().to_owned();
    let (rows, total) = ctx
        .store()?
        .twins_accessible(&user, q, list.limit(), list.offset())
        .await?;
    list.reply(
        rows.iter().map(|t| twin_json(t, &user)).collect::<Vec<_>>(),
        total,
    )
}

pub async fn get(ctx: &mut Ctx) -> Result<Reply, ApiError> {
    let user = ctx.principal()?.user_id().to_owned();
    let twin = ctx
        .store()?
        .twin_accessible(&user, ctx.id())
        .await?
        .ok_or(ApiError::NotFound("Twin"))?;
    Reply::ok(twin_json(&twin, &user))
}

pub async fn create(ctx: &mut Ctx, req: &mut Request) -> Result<Reply, ApiError> {
    let input = TwinInput::parse(&json_body(req).await?, true)?;
    spend::check_model(
        input.model.as_deref(),
        &config::Spend::from_env(&ctx.env).allowed_models,
    )?;
    let owner = ctx.principal()?.user_id().to_owned();
    let now = time::rfc3339_ms(ctx.now_ms);
    let twin = TwinRow {
        id: ids::prefixed("twn", &random_bytes::<24>()),
        owner_id: owner.clone(),
        name: input.name.unwrap_or_default(),
        slug: input.slug.unwrap_or_default(),
        headline: input.headline.unwrap_or_default(),
        description: input.description.unwrap_or_default(),
        avatar_url: input.avatar_url,
        expertise: Value::from(input.expertise.unwrap_or_default()).to_string(),
        language: input.language.unwrap_or_else(|| "en".into()),
        greeting: input.greeting.unwrap_or_default(),
        system_prompt: input.system_prompt.unwrap_or_default(),
        visibility: input.visibility.unwrap_or_else(|| "private".into()),
        model: input.model,
        created_at: now.clone(),
        updated_at: now,
    };
    ctx.store()?.insert_twin(&twin).await?;
    Reply::created(twin_json(&twin, &owner))
}

pub async fn update(ctx: &mut Ctx, req: &mut Request) -> Result<Reply, ApiError> {
    let input = TwinInput::parse(&json_body(req).await?, false)?;
    spend::check_model(
        input.model.as_deref(),
        &config::Spend::from_env(&ctx.env).allowed_models,
    )?;
    let owner = ctx.principal()?.user_id().to_owned();
    let now = time::rfc3339_ms(ctx.now_ms);
    let twin = ctx
        .store()?
        .update_twin(&owner, ctx.id(), &input, &now)
        .await?
        .ok_or(ApiError::NotFound("Twin"))?;
    Reply::ok(twin_json(&twin, &owner))
}

pub async fn delete(ctx: &mut Ctx) -> Result<Reply, ApiError> {
    let owner = ctx.principal()?.user_id().to_owned();
    let now = time::rfc3339_ms(ctx.now_ms);
    if !ctx.store()?.delete_twin(&owner, ctx.id(), &now).await? {
        return Err(ApiError::NotFound("Twin"));
    }
    Reply::ok(json!({ "id": ctx.id(), "deleted": true }))
}
