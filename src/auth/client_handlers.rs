//! `POST /client-tokens` (SPEC §16): an app's server mints a short-lived token for one twin and
//! one end user, for its browser or mobile client (docs/browser.md).

use chrono::{TimeZone, Utc};
use serde_json::json;

use crate::auth::authn;
use crate::auth::client_token::{self, Grant, NewClientToken};
use crate::config::env as config;
use crate::http::context::{Ctx, Principal};
use crate::http::error::ApiError;
use crate::http::reply::Reply;
use crate::platform::request::{json_body, Request};
use crate::platform::time;

/// → 201 `{token, expiresAt, twinId, endUserId, conversationId}`.
pub async fn create(ctx: &Ctx, caller: &Principal, req: &mut Request) -> Result<Reply, ApiError> {
    let (
        Principal::Key {
            user_id, key_id, ..
        },
        Some(key_hash),
    ) = (caller, authn::key_hash(req))
    else {
        return Err(ApiError::Forbidden(
            "Client tokens are minted by your server with a full_access API key; they are revoked with it",
        ));
    };
    let new = NewClientToken::parse(&json_body(req).await?)?;
    let store = ctx.store()?;
    store
        .twin_accessible(user_id, &new.twin_id)
        .await?
        .ok_or(ApiError::NotFound("Twin"))?;
    if let Some(id) = &new.conversation_id {
        let c = store
            .conversation(user_id, id)
            .await?
            .ok_or(ApiError::NotFound("Conversation"))?;
        if c.twin_id != new.twin_id || c.end_user_id.as_deref() != Some(&new.end_user_id) {
            return Err(ApiError::field(
                "conversationId",
                "must be a conversation with this twin and this end user",
            ));
        }
    }
    let grant = Grant::new(
        user_id,
        (key_id, &key_hash),
        &new.twin_id,
        &new.end_user_id,
        new.conversation_id.as_deref(),
    );
    let secret = config::jwt_secret(&ctx.env)?;
    let now = Utc
        .timestamp_millis_opt(ctx.now_ms)
        .single()
        .unwrap_or_default();
    let token = client_token::issue(secret.as_bytes(), &grant, now, new.ttl_secs)?;
    Reply::created(json!({
        "token": token,
        "expiresAt": time::rfc3339_ms(ctx.now_ms / 1000 * 1000 + new.ttl_secs * 1000),
        "twinId": new.twin_id,
        "endUserId": new.end_user_id,
        "conversationId": new.conversation_id,
    }))
}
