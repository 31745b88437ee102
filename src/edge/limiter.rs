//! The rate-limit Durable Object: one instance per key (or user, or client IP), holding the
//! state of `core::rate_limit` in its storage. The runtime runs one request at a time per
//! instance, so counts are exact across isolates and under concurrency.

use serde::{Deserialize, Serialize};
use worker::{durable_object, Date, Env, Method, Request, RequestInit, Response, State};

use crate::core::error::ApiError;
use crate::core::rate_limit::{self, Decision, Policy};

const STATE_KEY: &str = "rate";

#[derive(Serialize, Deserialize)]
struct CheckRequest {
    policy: Policy,
}

#[durable_object]
pub struct RateLimiter {
    state: State,
}

impl worker::DurableObject for RateLimiter {
    fn new(state: State, _env: Env) -> Self {
        RateLimiter { state }
    }

    async fn fetch(&self, mut req: Request) -> worker::Result<Response> {
        let CheckRequest { policy } = req.json().await?;
        let storage = self.state.storage();
        let current = storage
            .get::<rate_limit::State>(STATE_KEY)
            .await?
            .unwrap_or_default();
        let (decision, next) = rate_limit::check(&policy, current, Date::now().as_millis() as i64);
        storage.put(STATE_KEY, next).await?;
        Response::from_json(&decision)
    }
}

/// Asks the instance named `name` whether one more request may pass, and counts it if so.
pub async fn check(env: &Env, name: &str, policy: Policy) -> Result<Decision, ApiError> {
    let fail = |e: worker::Error| ApiError::internal(format!("rate limiter: {e}"));
    let stub = env
        .durable_object("RATE_LIMITER")
        .map_err(fail)?
        .get_by_name(name)
        .map_err(fail)?;
    let body = serde_json::to_string(&CheckRequest { policy }).map_err(ApiError::internal)?;
    let mut init = RequestInit::new();
    init.with_method(Method::Post).with_body(Some(body.into()));
    let req = Request::new_with_init("https://rate-limiter/check", &init).map_err(fail)?;
    let mut resp = stub.fetch_with_request(req).await.map_err(fail)?;
    resp.json::<Decision>().await.map_err(fail)
}
