//! `POST /conversations/{id}/messages/{messageId}/feedback` and `GET /twins/{id}/feedback`.

use serde_json::{json, Value};

use crate::conversations::handlers::owned_object;
use crate::conversations::model::{Message, Op};
use crate::feedback::model;
use crate::http::context::{Ctx, Principal};
use crate::http::error::ApiError;
use crate::http::reply::Reply;
use crate::knowledge::client as knowledge;
use crate::knowledge::protocol::Op as TwinOp;
use crate::platform::request::{json_body, query_params, Request};
use crate::spend::model::UsageQuery;

/// → 200 `{message}`, the message showing its `feedback`.
pub async fn rate(
    ctx: &Ctx,
    caller: &Principal,
    id: &str,
    message_id: &str,
    req: &mut Request,
) -> Result<Reply, ApiError> {
    let (rating, comment) = model::parse(&json_body(req).await?)?;
    let op = Op::Feedback {
        message_id: message_id.to_owned(),
        rating,
        comment,
    };
    let message: Message = owned_object(ctx, caller, id).await?.call(&op).await?;
    Reply::ok(json!({ "message": message }))
}

/// `?from&to` (UTC days, inclusive; the 30 days to today by default) → `{twinId, from, to,
/// days: [{date, positive, negative}], totals, comments}`.
pub async fn report(
    ctx: &Ctx,
    caller: &Principal,
    twin_id: &str,
    req: &Request,
) -> Result<Reply, ApiError> {
    let q = query_params(req);
    let range = UsageQuery::parse(
        q.get("from").map(String::as_str),
        q.get("to").map(String::as_str),
        None,
        ctx.now_ms,
    )?;
    ctx.store()?
        .owned_twin_knowledge(caller.user_id(), twin_id)
        .await?
        .ok_or(ApiError::NotFound("Twin"))?;
    let op = TwinOp::FeedbackReport {
        from: range.from.clone(),
        to: range.to.clone(),
    };
    let mut report: Value = knowledge::call(&ctx.env, twin_id, op).await?;
    report["twinId"] = json!(twin_id);
    report["from"] = json!(range.from);
    report["to"] = json!(range.to);
    Reply::ok(report)
}
