//! Turns replies and errors into HTTP responses: envelopes, request id, rate-limit and CORS
//! headers. The only place a response is assembled.

use worker::{Headers, Response};

use crate::http::envelope::{self, RequestMeta};
use crate::http::error::ApiError;
use crate::limits::rate_limit::{Decision, Policy};
use crate::openai::model as openai;

use crate::http::reply::Reply;

fn json_response(status: u16, body: &serde_json::Value) -> Response {
    let text = body.to_string();
    let headers = Headers::new();
    let _ = headers.set("Content-Type", "application/json; charset=utf-8");
    Response::from_bytes(text.into_bytes())
        .map(|r| r.with_status(status).with_headers(headers))
        .unwrap_or_else(|_| Response::empty().expect("empty response").with_status(500))
}

pub fn reply(reply: Reply, meta: &RequestMeta) -> Response {
    match reply {
        Reply::Json {
            status,
            data,
            meta: extra,
        } => json_response(status, &envelope::success(data, extra, meta)),
        Reply::Plain { status, body } => json_response(status, &body),
        Reply::Raw(resp) | Reply::Stream { response: resp, .. } => resp,
    }
}

/// Seconds a client should wait before retrying, for the errors that say so.
fn retry_after(err: &ApiError) -> Option<u64> {
    match err {
        ApiError::RateLimited { retry_after, .. }
        | ApiError::ConcurrencyLimitExceeded { retry_after, .. }
        | ApiError::TokenQuotaExceeded { retry_after, .. }
        | ApiError::EndUserLimitExceeded { retry_after, .. } => Some(*retry_after),
        ApiError::IdempotencyKeyInUse => Some(1),
        _ => None,
    }
}

/// The error response: the envelope, or OpenAI's error shape on the OpenAI-compatible routes
/// (with `retry-after-ms`, which OpenAI's SDKs read first).
pub fn error(err: &ApiError, meta: &RequestMeta, openai_shape: bool) -> Response {
    let body = if openai_shape {
        openai::error_body(err)
    } else {
        envelope::error_body(err, meta)
    };
    let mut resp = json_response(err.status(), &body);
    if let ApiError::MethodNotAllowed { allow } = err {
        resp = set(resp, "Allow", &allow.join(", "));
    }
    // The end user's own limit, not the key's (the pipeline leaves these as they are).
    if let ApiError::EndUserLimitExceeded {
        which,
        limit,
        window_secs,
        retry_after,
    } = err
    {
        resp = set(
            resp,
            "RateLimit-Policy",
            &format!("\"{which}\";q={limit};w={window_secs}"),
        );
        resp = set(
            resp,
            "RateLimit",
            &format!("\"{which}\";r=0;t={retry_after}"),
        );
    }
    if let Some(secs) = retry_after(err) {
        resp = set(resp, "Retry-After", &secs.to_string());
        if openai_shape {
            resp = set(resp, "retry-after-ms", &(secs * 1000).to_string());
        }
    }
    resp
}

pub fn set(resp: Response, name: &str, value: &str) -> Response {
    let _ = resp.headers().set(name, value);
    resp
}

/// `X-RateLimit-*` plus the IETF draft `RateLimit` / `RateLimit-Policy` headers.
pub fn rate_limit_headers(resp: &Response, policy: &Policy, d: &Decision) {
    let h = resp.headers();
    let _ = h.set("X-RateLimit-Limit", &d.limit.to_string());
    let _ = h.set("X-RateLimit-Remaining", &d.remaining.to_string());
    let _ = h.set("X-RateLimit-Reset", &d.reset_at.to_string());
    let _ = h.set("X-RateLimit-Window", &policy.window_secs.to_string());
    let _ = h.set(
        "RateLimit-Policy",
        &format!(
            "\"hourly\";q={};w={}, \"burst\";q={};w={}",
            policy.limit, policy.window_secs, policy.burst, policy.burst_period_secs
        ),
    );
    let _ = h.set(
        "RateLimit",
        &format!("\"hourly\";r={};t={}", d.remaining, d.reset_in),
    );
}

const EXPOSED: &str = "X-Request-Id, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset, X-RateLimit-Window, RateLimit, RateLimit-Policy, Retry-After, Idempotent-Replayed, X-Message-Id";

pub fn cors(resp: &Response, origin: &str) {
    let h = resp.headers();
    let _ = h.set("Access-Control-Allow-Origin", origin);
    let _ = h.set("Access-Control-Expose-Headers", EXPOSED);
    if origin != "*" {
        let _ = h.append("Vary", "Origin");
    }
}

/// Request headers a preflight allows when the browser names none.
const ALLOWED_HEADERS: &str =
    "Authorization, X-API-Key, Content-Type, X-Request-Id, Idempotency-Key, Last-Event-ID";

/// The headers a preflight asks for, if each is a plain header name (the OpenAI SDKs send
/// `x-stainless-*` ones): echoed, since credentials travel in headers we check anyway.
fn requested_headers(asked: Option<&str>) -> Option<&str> {
    let asked = asked?.trim();
    let token = |h: &str| {
        !h.is_empty()
            && h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    (asked.len() <= 2048 && asked.split(',').map(str::trim).all(token)).then_some(asked)
}

pub fn preflight(origin: Option<&str>, methods: &[&str], asked_headers: Option<&str>) -> Response {
    let resp = Response::empty().expect("empty response").with_status(204);
    let h = resp.headers();
    let _ = h.set("Allow", &methods.join(", "));
    if let Some(origin) = origin {
        cors(&resp, origin);
        let _ = h.set("Access-Control-Allow-Methods", &methods.join(", "));
        let _ = h.set(
            "Access-Control-Allow-Headers",
            requested_headers(asked_headers).unwrap_or(ALLOWED_HEADERS),
        );
        let _ = h.set("Access-Control-Max-Age", "600");
    }
    resp
}
