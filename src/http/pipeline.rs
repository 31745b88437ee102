//! The request pipeline: request id → route → credentials (401) → rate limit (429) →
//! scope (403) → handler (400/413/415/404) → envelope, headers and one log line.

use crate::platform::request::Request;
use std::rc::Rc;
use worker::worker_sys::web_sys;
use worker::{Date, Env, Response};

use crate::auth::access;
use crate::config::Config;
use crate::http::envelope::RequestMeta;
use crate::http::error::ApiError;
use crate::http::request_id;
use crate::http::routes::{self, Access, Resolved, Route};
use crate::idempotency::model as idempotency;
use crate::platform::time;

use crate::auth::authn;
use crate::config::env as config;
use crate::http::context::{Ctx, Principal};
use crate::http::reply::Reply;
use crate::limits::client as limits;
use crate::platform::crypto::random_bytes;
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
    let mut ctx = Ctx {
        env,
        config,
        worker: worker_ctx,
        request_id,
        now_ms,
        principal: None,
        params: Default::default(),
        replayed: false,
        idempotency_key: None,
        secret_in_response: false,
        limit: None,
        openai_shape: false,
    };
    let api = path == routes::BASE || path.starts_with("/api/v1/");
    let outcome = match config_error.filter(|_| api) {
        Some(e) => Err(e),
        None if api => route(&mut ctx, &mut req, &method, &path, cors_origin.as_deref()).await,
        None => crate::http::site::page(&ctx.env, &req, &method, &path).await,
    };
    let (resp, error) = respond_to(&ctx, outcome, &method, &path, cors_origin.as_deref());
    RequestLog {
        request_id: &ctx.request_id,
        method: &method,
        path: &path,
        status: resp.status_code(),
        duration_ms: Date::now().as_millis() as i64 - now_ms,
        user_id: ctx.principal.as_ref().map(Principal::user_id),
        key_id: ctx.principal.as_ref().and_then(Principal::key_id),
        error: error.as_ref().map(ApiError::code),
        detail: error.as_ref().and_then(ApiError::log_detail),
    }
    .emit_after_response(&ctx.worker);
    resp
}

/// An API request: its route (404, 405, a preflight), then `run`.
async fn route(
    ctx: &mut Ctx,
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
            ctx.params = params;
            ctx.secret_in_response = route.id.returns_secret();
            ctx.openai_shape = route.id.speaks_openai();
            run(route, ctx, req).await
        }
    }
}

/// The response: the envelope (or the handler's own), and the headers every answer carries.
fn respond_to(
    ctx: &Ctx,
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
    let (resp, error) = match outcome {
        Ok(reply) => (respond::reply(reply, &meta), None),
        Err(e) => (respond::error(&e, &meta, ctx.openai_shape), Some(e)),
    };
    let resp = respond::set(resp, "X-Request-Id", &ctx.request_id);
    // The API's bodies are JSON or SSE, never something to sniff; anything carrying a secret
    // (a new key's plaintext, a JWT) must not be cached anywhere.
    let resp = respond::set(resp, "X-Content-Type-Options", "nosniff");
    let resp = if ctx.secret_in_response {
        respond::set(resp, "Cache-Control", "no-store")
    } else {
        resp
    };
    let resp = if ctx.replayed {
        respond::set(resp, "Idempotent-Replayed", "true")
    } else {
        resp
    };
    if let Some((policy, decision)) = &ctx.limit {
        respond::rate_limit_headers(&resp, policy, decision);
    }
    if let Some(origin) = cors_origin {
        respond::cors(&resp, origin);
    }
    (resp, error)
}

async fn run(route: &'static Route, ctx: &mut Ctx, req: &mut Request) -> Result<Reply, ApiError> {
    match route.access {
        Access::Public => {}
        Access::PublicPerIp => {
            let policy = ctx.config.auth_attempts;
            let name = format!("ip:{}", Ctx::client_ip(req));
            let decision = limits::limit(&ctx.env, &name, policy).await?;
            ctx.limit = Some((policy, decision));
            access::limit_refusal(&decision)?;
        }
        Access::Scoped(_) | Access::SessionOnly => {
            if route.id.is_plain_read() {
                if let Some(likely) = authn::likely_caller(req) {
                    return read_ahead(route, ctx, req, likely).await;
                }
            }
            let admission = authn::authenticate(ctx, req).await?;
            admit(route, ctx, admission)?;
        }
    }
    if route.method == "POST" && route.access != Access::PublicPerIp {
        if let Some(value) = header(req, idempotency::HEADER) {
            let key = idempotency::parse_key(&value)?;
            return crate::idempotency::run::run(route, ctx, req, key).await;
        }
    }
    crate::http::dispatch::dispatch(route.id, ctx, req).await
}

/// The caller's admission goes on the context (its limit headers go on any answer); a refusal
/// (429, then 403 for the scope) ends the request.
fn admit(route: &Route, ctx: &mut Ctx, admission: authn::Admission) -> Result<(), ApiError> {
    ctx.limit = Some((admission.policy, admission.decision));
    ctx.principal = Some(admission.principal.clone());
    access::limit_refusal(&admission.decision)?;
    access::authorize(route.access, &admission.principal)
}

/// A plain read with an API key this isolate admitted before: the read runs while the key's
/// object verifies and counts the request — two round trips at once instead of one after the
/// other. Its answer is used only if the verdict admits the same caller; a refusal is answered
/// as usual, and a different verdict (the key's record changed) runs the read again for it.
async fn read_ahead(
    route: &'static Route,
    ctx: &mut Ctx,
    req: &mut Request,
    likely: Principal,
) -> Result<Reply, ApiError> {
    let mut ahead = ctx.fork(likely);
    let mut alias = req.alias();
    let (admission, answer) = futures::join!(
        authn::authenticate(ctx, req),
        crate::http::dispatch::dispatch(route.id, &mut ahead, &mut alias),
    );
    admit(route, ctx, admission?)?;
    if ctx.principal == ahead.principal {
        return answer;
    }
    crate::http::dispatch::dispatch(route.id, ctx, req).await
}
