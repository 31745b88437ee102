//! The OpenAI-compatible endpoint (docs/openai.md): a twin is a model behind `/api/v1`, so
//! OpenAI's SDKs and tools work unchanged. Completions are stateless (nothing is stored in
//! conversations) but pass the same spend gate as messages and count in usage.

use crate::edge::request::Request;
use serde_json::{json, Value};
use std::cell::RefCell;
use std::rc::Rc;
use worker::AbortController;

use crate::core::chat::{self, Usage};
use crate::core::conversation::{prompt_estimate, MessageUsage, TurnAccount};
use crate::core::error::ApiError;
use crate::core::knowledge::{self, Source};
use crate::core::openai::{self, ChatRequest};
use crate::core::spend;
use crate::core::{ids, sse};
use crate::edge::context::{Ctx, Principal};
use crate::edge::crypto::random_bytes;
use crate::edge::event_stream::{self, Ignore};
use crate::edge::gate;
use crate::edge::reply::Reply;
use crate::edge::request::json_body;
use crate::edge::upstream::{Progress, Upstream};

fn unix_secs(rfc3339: &str) -> i64 {
    crate::core::time::parse_rfc3339_ms(rfc3339).unwrap_or(0) / 1000
}

/// `GET /models`: the twins the caller can use, as models.
pub async fn list_models(ctx: &mut Ctx, caller: &Principal) -> Result<Reply, ApiError> {
    let user = caller.user_id().to_owned();
    let (twins, _) = ctx.store()?.twins_accessible(&user, None, 1000, 0).await?;
    let data: Vec<Value> = twins
        .iter()
        .map(|t| openai::model(&t.id, unix_secs(&t.created_at)))
        .collect();
    Ok(Reply::Plain {
        status: 200,
        body: json!({ "object": "list", "data": data }),
    })
}

/// `GET /models/{id}`.
pub async fn get_model(ctx: &mut Ctx, caller: &Principal, id: &str) -> Result<Reply, ApiError> {
    let user = caller.user_id().to_owned();
    let twin = ctx
        .store()?
        .twin_accessible(&user, id)
        .await?
        .ok_or(ApiError::NotFound("Model"))?;
    let model = openai::model(&twin.id, unix_secs(&twin.created_at));
    Ok(Reply::Plain {
        status: 200,
        body: model,
    })
}

/// A completion ready to run: the upstream request, what its end must record, and how the
/// answer is named.
struct Completion {
    upstream: Upstream,
    body: Value,
    ending: Ending,
    sources: Vec<Source>,
    id: String,
    created: i64,
    /// The twin id the caller sent, echoed as `model`.
    model: String,
}

/// What a completion's end must do: count its usage and give its slot back.
struct Ending {
    env: worker::Env,
    lease: String,
    account: TurnAccount,
    prompt_estimate: i64,
    day: String,
}

impl Ending {
    /// The usage to report (the upstream's own, or an estimate), and the work that counts it
    /// and gives the slot back.
    fn settle(self, reply: &chat::Reply) -> (Usage, impl std::future::Future<Output = ()>) {
        let u = MessageUsage::of(reply.usage, self.prompt_estimate, &reply.content);
        let record = gate::ended(&self.env, Some(self.lease), self.day, self.account.usage(u));
        (u.totals(), record)
    }
}

/// `POST /chat/completions`.
pub async fn chat_completions(
    ctx: &mut Ctx,
    caller: &Principal,
    req: &mut Request,
) -> Result<Reply, ApiError> {
    let request = ChatRequest::parse(&json_body(req).await?)?;
    let completion = prepare(ctx, caller, &request).await?;
    if request.stream {
        Ok(Reply::Raw(stream(ctx, completion, request.include_usage)?))
    } else {
        whole(ctx, completion).await
    }
}

/// Reads the twin (with its sources) and passes the spend gate.
async fn prepare(
    ctx: &Ctx,
    caller: &Principal,
    request: &ChatRequest,
) -> Result<Completion, ApiError> {
    let config = ctx.config.clone();
    let spend = &config.spend;
    let user_id = caller.user_id();
    let day = spend::utc_day(ctx.now_ms);
    let store = ctx.store()?;
    let read = store.twin_persona(user_id, &request.model, &day, request.last_user_text());
    let gate::Admitted {
        context: (persona, sources),
        lease,
    } = gate::admit(ctx, spend, "Model", read).await?;
    let system = knowledge::prompt_with_sources(&persona.system_prompt, &sources);
    let upstream_model = persona.model.unwrap_or_else(|| spend.default_model.clone());
    let user_hash = spend::upstream_user(user_id, request.user.as_deref());
    let body = request.upstream_body(
        &upstream_model,
        &system,
        spend.max_output_tokens,
        &user_hash,
    );
    Ok(Completion {
        upstream: Upstream::new(&ctx.env, &config.upstream),
        ending: Ending {
            env: ctx.env.clone(),
            lease,
            account: TurnAccount {
                user_id: user_id.to_owned(),
                api_key_id: caller.key_id().map(str::to_owned),
                twin_id: request.model.clone(),
                end_user_id: request.user.clone(),
            },
            prompt_estimate: prompt_estimate(&body),
            day,
        },
        body,
        sources,
        id: ids::prefixed("chatcmpl", &random_bytes::<18>()),
        created: ctx.now_ms / 1000,
        model: request.model.clone(),
    })
}

/// The whole answer at once.
async fn whole(ctx: &Ctx, c: Completion) -> Result<Reply, ApiError> {
    let controller = AbortController::default();
    let (reply, failure) = c
        .upstream
        .complete(&c.body, &controller.signal(), |_| {})
        .await;
    let (usage, record) = c.ending.settle(&reply);
    ctx.worker.wait_until(record);
    if let Some(err) = failure {
        controller.abort();
        return Err(err);
    }
    let citations = knowledge::citations(&reply.content, &c.sources);
    let body = openai::completion(&c.id, c.created, &c.model, &reply, usage, &citations);
    Ok(Reply::Plain { status: 200, body })
}

/// `data:` chunks as they come, then the usage chunk if asked for, then `[DONE]`.
fn stream(ctx: &Ctx, c: Completion, include_usage: bool) -> Result<worker::Response, ApiError> {
    let (reader, resp) = event_stream::open(None).map_err(ApiError::internal)?;
    let reader = Rc::new(RefCell::new(Some(reader)));
    ctx.worker.wait_until(async move {
        let ignore = Ignore::default();
        let send = |text: &str| {
            if let Some(r) = reader.borrow().as_ref() {
                r.send(text, &ignore);
            }
        };
        let (id, created, model) = (&c.id, c.created, &c.model);
        let chunk = |delta: Value| {
            openai::data_line(&openai::chunk(id, created, model, delta, None).to_string())
        };
        send(&chunk(json!({ "role": "assistant", "content": "" })));
        let controller = AbortController::default();
        let (reply, failure) = c
            .upstream
            .complete(&c.body, &controller.signal(), |p| match p {
                Progress::Delta(text) => send(&chunk(json!({ "content": text }))),
                Progress::Idle => send(sse::PING),
                Progress::Generating => {}
            })
            .await;
        let (usage, record) = c.ending.settle(&reply);
        match failure {
            None => {
                let citations = knowledge::citations(&reply.content, &c.sources);
                let last = openai::last_chunk(id, created, model, &reply, &citations);
                send(&openai::data_line(&last.to_string()));
                if include_usage {
                    let u = openai::usage_chunk(id, created, model, usage);
                    send(&openai::data_line(&u.to_string()));
                }
                send(openai::DONE);
            }
            Some(err) => {
                controller.abort();
                // One `data: {"error": …}` line: openai-python raises on it.
                send(&openai::data_line(&openai::error_body(&err).to_string()));
            }
        }
        if let Some(r) = reader.borrow_mut().take() {
            r.close(&ignore);
        }
        record.await;
    });
    Ok(resp)
}
