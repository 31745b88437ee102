//! The webhook routes (SessionOnly): each passes its call to the account's object, which owns
//! the endpoints and their deliveries and answers in the envelope's terms. Kept to one
//! pass-through so the API's wasm carries none of the webhook rules.

use serde_json::{json, Value};

use crate::accounts::client as accounts;
use crate::http::context::{Ctx, Principal};
use crate::http::error::ApiError;
use crate::http::reply::Reply;
use crate::http::routes::{PathParams, RouteId};
use crate::platform::request::{json_body, query_params, Request};

/// The vars the account's object delivers by (`webhooks::model::Settings`): the cells worker
/// has no vars of its own to read them from.
pub fn settings(env: &worker::Env) -> Value {
    let var = |name: &str| env.var(name).map(|v| v.to_string()).unwrap_or_default();
    json!({
        "retrySecs": var("WEBHOOK_RETRY_SCHEDULE_SECS"),
        "allowHttpHosts": var("WEBHOOK_ALLOW_HTTP_HOSTS"),
        "disableAfterSecs": var("WEBHOOK_DISABLE_AFTER_SECS"),
    })
}

pub async fn call(
    ctx: &Ctx,
    caller: &Principal,
    id: RouteId,
    params: &PathParams,
    req: &mut Request,
) -> Result<Reply, ApiError> {
    use RouteId::*;
    let action = match id {
        ListWebhooks => "list",
        CreateWebhook => "create",
        GetWebhook => "get",
        UpdateWebhook => "update",
        DeleteWebhook => "delete",
        RotateWebhookSecret => "rotate",
        ListWebhookDeliveries => "deliveries",
        RedeliverWebhook => "redeliver",
        _ => return Err(ApiError::internal("not a webhook route")),
    };
    let body = match id {
        CreateWebhook | UpdateWebhook => Value::Object(json_body(req).await?),
        _ => Value::Null,
    };
    let call = json!({
        "action": action,
        "id": params.id(),
        "deliveryId": params.child_id(),
        "body": body,
        "limit": query_params(req).remove("limit"),
        "settings": settings(&ctx.env),
    });
    // Answered as a remembered response is: the same mapping to the envelope.
    let answer = accounts::webhooks(&ctx.env, caller.user_id(), call).await?;
    crate::idempotency::run::replay(ctx, answer).await
}
