//! The OpenAI-compatible endpoint (docs/openai.md): a twin is a model behind `/api/v1`, so
//! OpenAI's SDKs and tools work unchanged. Completions are stateless (nothing is stored in
//! conversations) but pass the same spend gate as messages and count in usage.

use crate::platform::request::Request;
use futures::channel::oneshot;
use serde_json::{json, Value};
use std::cell::RefCell;
use std::rc::Rc;

use crate::conversations::model::{prompt_estimate, MessageUsage, TurnAccount};
use crate::http::context::{Call, Ctx, Principal};
use crate::http::error::ApiError;
use crate::http::reply::Reply;
use crate::knowledge::client as knowledge_client;
use crate::knowledge::model::{self as knowledge, Source};
use crate::llm::chat::{self, Usage};
use crate::llm::sse;
use crate::llm::upstream::{Progress, Upstream};
use crate::openai::model::{self as openai, ChatRequest};
use crate::platform::abort::{Abort, Hook};
use crate::platform::crypto::random_bytes;
use crate::platform::d1::near_then_primary;
use crate::platform::event_stream::{self, Ignore};
use crate::platform::ids;
use crate::platform::request::json_body;
use crate::spend::gate;
use crate::spend::model::{self as spend, TurnUsage};

fn unix_secs(rfc3339: &str) -> i64 {
    crate::platform::time::parse_rfc3339_ms(rfc3339).unwrap_or(0) / 1000
}

/// `GET /models`: the twins the caller can use, as models.
pub async fn list_models(ctx: &Ctx, caller: &Principal) -> Result<Reply, ApiError> {
    let user = caller.user_id().to_owned();
    let twins = ctx.store()?.models_accessible(&user, None).await?;
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
pub async fn get_model(ctx: &Ctx, caller: &Principal, id: &str) -> Result<Reply, ApiError> {
    let user = caller.user_id().to_owned();
    let twin = ctx
        .store()?
        .models_accessible(&user, Some(id))
        .await?
        .into_iter()
        .next()
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
    max_output_tokens: u64,
    day: String,
}

impl Ending {
    /// The most this completion can cost: its prompt estimate and every output token allowed.
    fn reservation(&self) -> TurnUsage {
        self.account.usage(MessageUsage {
            prompt_tokens: self.prompt_estimate,
            completion_tokens: self.max_output_tokens as i64,
            total_tokens: self.prompt_estimate + self.max_output_tokens as i64,
            estimated: true,
        })
    }

    /// The usage to report (the upstream's own, or an estimate), and the work that counts it
    /// (less what `reserved` already counted) and gives the slot back.
    fn settle(
        self,
        reply: &chat::Reply,
        reserved: Option<TurnUsage>,
    ) -> (Usage, impl std::future::Future<Output = ()>) {
        let u = MessageUsage::settled(
            reply.usage,
            self.prompt_estimate,
            self.max_output_tokens,
            &reply.content,
        );
        let turn = self.account.usage(u);
        let record = gate::ended(&self.env, Some(self.lease), self.day, turn, reserved, None);
        (u.totals(), record)
    }
}

impl Completion {
    /// Calls the upstream under `abort` while the reservation is written alongside (one D1
    /// write, in parallel with the model's first byte); `Some` reservation once it is stored.
    async fn generate(
        &self,
        abort: &Abort,
        on: impl FnMut(Progress),
    ) -> (chat::Reply, Option<ApiError>, Option<TurnUsage>) {
        let reservation = self.ending.reservation();
        let reserve = gate::reserve(&self.ending.env, &self.ending.day, &reservation);
        let call = self.upstream.complete(&self.body, abort.signal(), on);
        let (reserved, (reply, failure)) = futures::join!(reserve, call);
        (reply, failure, reserved.ok().map(|()| reservation))
    }
}

/// `POST /chat/completions`.
pub async fn chat_completions(
    ctx: &Ctx,
    caller: &Principal,
    call: &Call,
    req: &mut Request,
) -> Result<Reply, ApiError> {
    let request = ChatRequest::parse(&json_body(req).await?)?;
    let completion = prepare(ctx, caller, call, &request).await?;
    // The generation runs in `waitUntil`, not in the request: on the platform a request whose
    // client leaves is cancelled and runs no more code, while `waitUntil` work goes on (~30 s),
    // long enough to see the abort through, count the usage and give the slot back. Past
    // that, the reservation made at admission has charged the most the completion can cost.
    let abort = Abort::default();
    let follow = abort.follow(req.signal());
    if request.stream {
        Ok(Reply::Raw(
            stream(ctx, completion, request.include_usage, abort, follow).await?,
        ))
    } else {
        whole(ctx, completion, abort, follow).await
    }
}

/// Reads the twin (with its sources) and passes the spend gate; the caller's verdict is waited
/// for before the gate (`Call::verified`).
async fn prepare(
    ctx: &Ctx,
    caller: &Principal,
    call: &Call,
    request: &ChatRequest,
) -> Result<Completion, ApiError> {
    let config = ctx.config.clone();
    let spend = &config.spend;
    let user_id = caller.user_id();
    let day = spend::utc_day(ctx.now_ms);
    // The twin's persona (D1, the nearest replica) and then its passages (its object), beside
    // the caller's verdict; after the verdict, the account's object admits the completion:
    // two round trips in a row before the model is called.
    let read = async {
        let persona = near_then_primary(&ctx.env, |store| async move {
            store.twin_persona(user_id, &request.model).await
        });
        let Some(persona) = persona.await? else {
            return Ok(None);
        };
        let (twin, docs) = (&request.model, persona.knowledge_docs);
        let sources =
            knowledge_client::retrieve(&ctx.env, twin, docs, request.last_user_text()).await?;
        Ok(Some((persona, sources)))
    };
    let gate::Admitted {
        context: (persona, sources),
        model: upstream_model,
        lease,
        ..
    } = gate::admit(ctx, call, false, ("Model", read), |(p, _)| p.model.clone()).await?;
    gate::end_user(ctx, caller, request.user.as_deref(), &lease).await?;
    let system = knowledge::prompt_with_sources(&persona.system_prompt, &sources);
    let user_hash = spend::upstream_user(user_id, request.user.as_deref());
    let body = request.upstream_body(
        &upstream_model,
        &system,
        spend.max_output_tokens,
        &user_hash,
    );
    Ok(Completion {
        upstream: Upstream::new(&config.upstream, crate::config::env::upstream_key(&ctx.env)),
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
            max_output_tokens: config.spend.max_output_tokens,
            day,
        },
        body,
        sources,
        // A hyphen, as OpenAI's ids (SDKs and tools match on `chatcmpl-`).
        id: ids::prefixed("chatcmpl", &random_bytes::<18>()).replacen('_', "-", 1),
        created: ctx.now_ms / 1000,
        model: request.model.clone(),
    })
}

/// The whole answer at once.
async fn whole(ctx: &Ctx, c: Completion, abort: Abort, follow: Hook) -> Result<Reply, ApiError> {
    let (tx, rx) = oneshot::channel();
    ctx.worker.wait_until(async move {
        let (reply, failure, reserved) = c.generate(&abort, |_| {}).await;
        let (usage, record) = c.ending.settle(&reply, reserved);
        let answer = match failure {
            Some(err) => {
                abort.abort();
                Err(err)
            }
            None => {
                let citations = knowledge::citations(&reply.content, &c.sources);
                Ok(openai::completion(
                    &c.id, c.created, &c.model, &reply, usage, &citations,
                ))
            }
        };
        let _ = tx.send(answer);
        drop(follow);
        record.await;
    });
    let body = rx
        .await
        .map_err(|_| ApiError::internal("the completion ended without an answer"))??;
    Ok(Reply::Plain { status: 200, body })
}

/// `data:` chunks as they come, then the usage chunk if asked for, then `[DONE]`.
async fn stream(
    ctx: &Ctx,
    c: Completion,
    include_usage: bool,
    abort: Abort,
    follow: Hook,
) -> Result<worker::Response, ApiError> {
    let (reader, resp) = match event_stream::open(None) {
        Ok(opened) => opened,
        Err(e) => {
            // Nothing will run this generation: its slot goes back now.
            gate::release(ctx, &c.ending.account.user_id, &c.ending.lease).await;
            return Err(ApiError::internal(e));
        }
    };
    // The reader gone (its writer's `closed` rejects within about a second) aborts the call.
    let gone = abort.on_rejection(&reader.closed());
    let reader = Rc::new(RefCell::new(Some(reader)));
    ctx.worker.wait_until(async move {
        let ignore = Ignore::default();
        let send = |text: &str| {
            if let Some(r) = reader.borrow().as_ref() {
                if !r.send(text, &ignore) {
                    abort.abort();
                }
            }
        };
        let (id, created, model) = (&c.id, c.created, &c.model);
        let chunk = |delta: Value| {
            openai::data_line(&openai::chunk(id, created, model, delta, None).to_string())
        };
        send(&chunk(json!({ "role": "assistant", "content": "" })));
        let (reply, failure, reserved) = c
            .generate(&abort, |p| match p {
                Progress::Delta(text) => send(&chunk(json!({ "content": text }))),
                Progress::ToolCalls(calls) => send(&chunk(json!({ "tool_calls": calls }))),
                Progress::Idle => send(sse::PING),
                Progress::Generating => {}
            })
            .await;
        let (usage, record) = c.ending.settle(&reply, reserved);
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
                abort.abort();
                // One `data: {"error": …}` line: openai-python raises on it.
                send(&openai::data_line(&openai::error_body(&err).to_string()));
            }
        }
        if let Some(r) = reader.borrow_mut().take() {
            r.close(&ignore);
        }
        drop((follow, gone));
        record.await;
    });
    Ok(resp)
}
