//! Runs a POST under its `Idempotency-Key` (docs/idempotency.md): claim the key in the
//! account's object (SPEC §14: the account's records live in its cell), run the
//! handler once, remember what it answered (or free the key after a refusal); a retry gets
//! the remembered answer, a streamed reply's retry the same generation's stream from event 1.

use crate::platform::request::Request;
use serde_json::Value;

use crate::conversations::model::Op;
use crate::http::body;
use crate::http::envelope::ExtraMeta;
use crate::http::error::ApiError;
use crate::http::routes::{Effect, Route};
use crate::idempotency::model::{self as idempotency, Claim, Remembered};

use crate::accounts::client as accounts;
use crate::conversations::client::ConversationObject;
use crate::http::context::{Call, Ctx};
use crate::http::dispatch::dispatch;
use crate::http::reply::Reply;
use crate::platform::request::{body_bytes, header};

/// The body as the handler will read it; `None` when it will refuse it (too large, not JSON):
/// such a request runs without the key, and its 4xx is not remembered anyway.
async fn peek_body(req: &Request) -> Option<Value> {
    let content_type = header(req, "Content-Type");
    // A JSON body is read once for both; any other (an upload, passed on as it came) through
    // a copy of its own.
    let mut copy = if content_type
        .as_deref()
        .is_some_and(body::is_json_media_type)
    {
        req.share()
    } else {
        req.try_clone()?
    };
    let bytes = body_bytes(&mut copy).await.ok()?;
    body::parse_object(content_type.as_deref(), &bytes)
        .ok()
        .map(Value::Object)
}

pub async fn run(
    route: &'static Route,
    ctx: &Ctx,
    call: &mut Call,
    req: &mut Request,
    key: String,
    replayed: &mut bool,
) -> Result<Reply, ApiError> {
    let Some(body) = peek_body(req).await else {
        return dispatch(route.id, ctx, call, req).await;
    };
    let user = call
        .principal
        .as_ref()
        .ok_or(ApiError::Unauthorized)?
        .user_id()
        .to_owned();
    let fingerprint = idempotency::fingerprint("POST", req.path(), Some(&body));
    let env = &ctx.env;
    let times = (idempotency::LEASE_MS, idempotency::RETENTION_MS);
    let claim = match accounts::claim_key(env, &user, &key, &fingerprint, times).await? {
        None => Claim::Fresh,
        Some((held, response)) => idempotency::decide(&fingerprint, &held, response.as_deref()),
    };
    match claim {
        // Scoped to the user: only the caller's own turns are ever found by it.
        Claim::Fresh => call.idempotency_key = Some(format!("{user}:{key}")),
        Claim::InUse => {
            let key = format!("{user}:{key}");
            return in_use(route, ctx, call, &key, replayed).await;
        }
        Claim::Reused => return Err(ApiError::IdempotencyKeyReused),
        Claim::Replay(remembered) => {
            *replayed = true;
            return replay(ctx, remembered).await;
        }
    }
    let outcome = dispatch(route.id, ctx, call, req).await;
    match remembered(route, &outcome) {
        Some(r) => {
            let text = serde_json::to_string(&r).map_err(ApiError::internal)?;
            accounts::remember_key(env, &user, &key, text).await?
        }
        None => accounts::release_key(env, &user, &key).await?,
    }
    outcome
}

/// What to remember of an outcome; `None` for a refusal (the key stays free).
fn remembered(route: &Route, outcome: &Result<Reply, ApiError>) -> Option<Remembered> {
    match outcome {
        Ok(Reply::Json { status, data, .. }) if idempotency::remembers(*status) => {
            let mut data = data.clone();
            if route.effect == Effect::Secret {
                // A new key's plaintext, or a webhook's signing secret, is shown once and never
                // stored.
                for field in ["key", "secret"] {
                    if data.get(field).is_some() {
                        data[field] = Value::Null;
                    }
                }
            }
            Some(Remembered::Json {
                status: *status,
                data,
            })
        }
        Ok(Reply::Plain { status, body }) if idempotency::remembers(*status) => {
            Some(Remembered::Plain {
                status: *status,
                body: body.clone(),
            })
        }
        Ok(Reply::Stream {
            conversation_id,
            message_id,
            ..
        }) => Some(Remembered::Stream {
            conversation_id: conversation_id.clone(),
            message_id: message_id.clone(),
        }),
        Err(e) if idempotency::remembers(e.status()) => Some(Remembered::error(e)),
        _ => None,
    }
}

/// The key is claimed and nothing is remembered yet: the first request is running, or was cut
/// off before it could remember its answer (the platform cancels a request whose client
/// leaves). A turn is bound to its key in the conversation's object when it starts, so the
/// object answers: the turn's stream from event 1, or its result once finished.
/// `key` is the user's id and their key (`usr_…:key`).
async fn in_use(
    route: &Route,
    ctx: &Ctx,
    call: &Call,
    key: &str,
    replayed: &mut bool,
) -> Result<Reply, ApiError> {
    let Effect::Turn { stream } = route.effect else {
        return Err(ApiError::IdempotencyKeyInUse);
    };
    let conversation_id = call.params.id().ok_or(ApiError::IdempotencyKeyInUse)?;
    let object = ConversationObject::get(&ctx.env, conversation_id)?;
    let op = Op::Replay {
        key: key.to_owned(),
        stream,
    };
    match object.turn(&op, stream).await {
        Ok(reply) => {
            *replayed = true;
            Ok(reply)
        }
        // Not started yet, or still running (non-streaming): §9's answer.
        Err(ApiError::NotFound(_) | ApiError::ConversationBusy { .. }) => {
            Err(ApiError::IdempotencyKeyInUse)
        }
        Err(e) => Err(e),
    }
}

/// A remembered response as the reply it was (also how the account object's webhook answers
/// are given: `webhooks::handlers`).
pub async fn replay(ctx: &Ctx, remembered: Remembered) -> Result<Reply, ApiError> {
    match remembered {
        Remembered::Json { status, data } => Ok(Reply::Json {
            status,
            data,
            meta: ExtraMeta::None,
        }),
        Remembered::Plain { status, body } => Ok(Reply::Plain { status, body }),
        Remembered::Error {
            status,
            code,
            message,
            details,
        } => Err(ApiError::Remembered {
            status,
            code,
            message,
            details,
        }),
        Remembered::Stream {
            conversation_id,
            message_id,
        } => {
            let op = Op::Resume {
                message_id,
                after: 0,
            };
            ConversationObject::get(&ctx.env, &conversation_id)?
                .stream(&op)
                .await
        }
    }
}
