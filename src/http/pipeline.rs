//! The request pipeline: request id → route → credentials (401) → rate limit (429) →
//! scope (403) → handler (400/413/415/404) → envelope, headers and one log line.

use crate::platform::request::Request;
use futures::channel::oneshot;
use std::rc::Rc;
use worker::worker_sys::web_sys;
use worker::{Date, Env, Response};

use crate::auth::access;
use crate::config::Config;
use crate::http::envelope::RequestMeta;
use crate::http::error::ApiError;
use crate::http::request_id;
use crate::http::routes::{self, Access, Effect, Resolved, Route, RouteId, Shape};
use crate::idempotency::model as idempotency;
use crate::platform::time;

use crate::auth::authn;
use crate::config::env as config;
use crate::http::context::{Call, Ctx, Principal, Verdict};
use crate::http::dispatch::dispatch;
use crate::http::reply::Reply;
use crate::limits::client as limits;
use crate::limits::rate_limit::{Decision, Policy};
use crate::platform::crypto::random_bytes;
use crate::platform::instance::Instance;
use crate::platform::log::RequestLog;
use crate::platform::request::header;
use crate::platform::respond;

pub async fn handle(raw: web_sys::Request, env: Env, worker_ctx: worker::Context) -> Response {
    let mut req = Request::new(raw);
    let now_ms = Date::now().as_millis() as i64;
    let request_id = request_id::accept(header(&req, "X-Request-Id").as_deref())
        .unwrap_or_else(|| request_id::generate(&random_bytes::<24>()));
    let method = req.method();
    let path = req.path().to_owned();
    // A var that does not parse fails every API request loudly (500, the log names it).
    let (config, config_error) = match config::get(&env) {
        Ok(c) => (c, None),
        Err(e) => (Rc::new(Config::defaults()), Some(e)),
    };
    let cors_origin =
        access::allowed_origin(&config.allowed_origins, header(&req, "Origin").as_deref());
    let ctx = Ctx {
        env,
        config,
        worker: worker_ctx,
        request_id,
        now_ms,
    };
    let mut call = Call::default();
    let mut flags = Flags::default();
    let api = path == routes::BASE || path.starts_with("/api/v1/");
    let outcome = match config_error.filter(|_| api) {
        Some(e) => Err(e),
        None if api => {
            let cors = cors_origin.as_deref();
            route(&ctx, &mut call, &mut flags, &mut req, &method, &path, cors).await
        }
        None => crate::http::site::page(&ctx.env, &req, &method, &path).await,
    };
    let (resp, error) = respond_to(
        &ctx,
        &flags,
        outcome,
        &method,
        &path,
        cors_origin.as_deref(),
    );
    RequestLog {
        request_id: &ctx.request_id,
        method: &method,
        path: &path,
        status: resp.status_code(),
        duration_ms: Date::now().as_millis() as i64 - now_ms,
        user_id: call.principal.as_ref().map(Principal::user_id),
        key_id: call.principal.as_ref().and_then(Principal::key_id),
        error: error.as_ref().map(ApiError::code),
        detail: error.as_ref().and_then(ApiError::log_detail),
    }
    .emit_after_response(&ctx.worker);
    resp
}

/// What the answer's headers say beyond the envelope, learned on the request's way.
#[derive(Default)]
struct Flags {
    /// The route's facts (`no-store`, OpenAI's error shape), once it is known.
    route: Option<&'static Route>,
    /// The answer is a remembered one (`Idempotent-Replayed: true`).
    replayed: bool,
    /// The rate limit this request was counted against: its headers go on the answer.
    limit: Option<(Policy, Decision)>,
}

/// An API request: its route (404, 405, a preflight), then `run`.
async fn route(
    ctx: &Ctx,
    call: &mut Call,
    flags: &mut Flags,
    req: &mut Request,
    method: &str,
    path: &str,
    cors_origin: Option<&str>,
) -> Result<Reply, ApiError> {
    match routes::resolve(method, path) {
        Resolved::NotFound => Err(ApiError::NotFound("Route")),
        Resolved::MethodNotAllowed { allow } if method == "OPTIONS" => {
            Ok(Reply::Raw(respond::preflight(
                cors_origin,
                &allow,
                header(req, "Access-Control-Request-Headers").as_deref(),
            )))
        }
        Resolved::MethodNotAllowed { allow } => Err(ApiError::MethodNotAllowed { allow }),
        Resolved::Found { route, params } => {
            call.params = params;
            flags.route = Some(route);
            run(route, ctx, call, flags, req).await
        }
    }
}

/// The response: the envelope (or the handler's own), and the headers every answer carries.
fn respond_to(
    ctx: &Ctx,
    flags: &Flags,
    outcome: Result<Reply, ApiError>,
    method: &str,
    path: &str,
    cors_origin: Option<&str>,
) -> (Response, Option<ApiError>) {
    let timestamp = time::rfc3339_ms(ctx.now_ms);
    let meta = RequestMeta {
        request_id: &ctx.request_id,
        timestamp: &timestamp,
        path,
        method,
    };
    let openai_shape = flags.route.is_some_and(|r| r.shape == Shape::OpenAi);
    let (resp, error) = match outcome {
        Ok(reply) => (respond::reply(reply, &meta), None),
        Err(e) => (respond::error(&e, &meta, openai_shape), Some(e)),
    };
    let resp = respond::set(resp, "X-Request-Id", &ctx.request_id);
    // The API's bodies are JSON or SSE, never something to sniff; anything carrying a secret
    // (a new key's plaintext, a JWT) must not be cached anywhere.
    let resp = respond::set(resp, "X-Content-Type-Options", "nosniff");
    let resp = if flags.route.is_some_and(|r| r.effect == Effect::Secret) {
        respond::set(resp, "Cache-Control", "no-store")
    } else {
        resp
    };
    let resp = if flags.replayed {
        respond::set(resp, "Idempotent-Replayed", "true")
    } else {
        resp
    };
    if let Some((policy, decision)) = &flags.limit {
        if !matches!(error, Some(ApiError::EndUserLimitExceeded { .. })) {
            respond::rate_limit_headers(&resp, policy, decision);
        }
    }
    if let Some(origin) = cors_origin {
        respond::cors(&resp, origin);
    }
    (resp, error)
}

async fn run(
    route: &'static Route,
    ctx: &Ctx,
    call: &mut Call,
    flags: &mut Flags,
    req: &mut Request,
) -> Result<Reply, ApiError> {
    match route.access {
        Access::Public => {}
        Access::PublicPerIp => {
            let policy = ctx.config.auth_attempts;
            let ip = Ctx::client_ip(req);
            let decision = limits::limit(&ctx.env, Instance::Ip { ip: &ip }, policy).await?;
            flags.limit = Some((policy, decision));
            access::limit_refusal(&decision)?;
        }
        Access::Scoped(_) | Access::SessionOnly => {
            if let Some((likely, copy)) = ahead_of_verdict(route, req) {
                return ahead(route, ctx, call, flags, req, likely, copy).await;
            }
            let admission = authn::authenticate(ctx, req).await?;
            admit(route, call, flags, admission)?;
        }
    }
    if route.method == "POST" && route.access != Access::PublicPerIp {
        if let Some(value) = header(req, idempotency::HEADER) {
            let key = idempotency::parse_key(&value)?;
            let replayed = &mut flags.replayed;
            return crate::idempotency::run::run(route, ctx, call, req, key, replayed).await;
        }
    }
    dispatch(route.id, ctx, call, req).await
}

/// The caller's admission goes on the call (its limit headers go on any answer); a refusal
/// (429, then 403 for the scope) ends the request.
fn admit(
    route: &Route,
    call: &mut Call,
    flags: &mut Flags,
    admission: authn::Admission,
) -> Result<(), ApiError> {
    flags.limit = Some((admission.policy, admission.decision));
    call.principal = Some(admission.principal.clone());
    access::limit_refusal(&admission.decision)?;
    access::authorize(route.id, route.access, &admission.principal)
}

/// Whether the handler may start before its caller's verification returns, and then for whom
/// and on which copy of the request: a plain read (its answer is only used for the caller the
/// verdict admits; it never reads its body), and a generation without an `Idempotency-Key`
/// (whose claim is a write), which reads its context, then waits for the verdict
/// (`Call::verified`) before it admits, stores or calls anything. It reads a copy of the body,
/// so a second run has it whole. Only for an API key this isolate admitted before.
fn ahead_of_verdict(route: &Route, req: &Request) -> Option<(Principal, Request)> {
    let read = route.effect == Effect::Read;
    let generation = (matches!(route.effect, Effect::Turn { .. })
        || route.id == RouteId::ChatCompletions)
        && header(req, idempotency::HEADER).is_none();
    if !matches!(route.access, Access::Scoped(_)) || !(read || generation) {
        return None;
    }
    let likely = authn::likely_caller(req)?;
    let copy = if read { req.alias() } else { req.share() };
    Some((likely, copy))
}

/// A request with an API key this isolate admitted before: its handler runs while the key's
/// object verifies and counts the request — two round trips at once instead of one after the
/// other (issue 27: a turn's context read beside the verdict). Its answer is used only if the
/// verdict admits the same caller; a refusal is answered as usual, and a different verdict
/// (the key's record changed) runs the handler again for it.
async fn ahead(
    route: &'static Route,
    ctx: &Ctx,
    call: &mut Call,
    flags: &mut Flags,
    req: &mut Request,
    likely: Principal,
    mut copy: Request,
) -> Result<Reply, ApiError> {
    let (tx, rx) = oneshot::channel();
    let early = Call {
        principal: Some(likely.clone()),
        verdict: Some(Verdict::new(rx)),
        ..call.clone()
    };
    let verdict = async {
        let admission = authn::authenticate(ctx, req).await;
        if let Ok(a) = &admission {
            let _ = tx.send(
                a.principal == likely
                    && access::limit_refusal(&a.decision).is_ok()
                    && access::authorize(route.id, route.access, &a.principal).is_ok(),
            );
        }
        admission
    };
    let (admission, answer) = futures::join!(verdict, dispatch(route.id, ctx, &early, &mut copy));
    admit(route, call, flags, admission?)?;
    if call.principal == early.principal {
        return answer;
    }
    dispatch(route.id, ctx, call, req).await
}
