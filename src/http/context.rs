//! What a handler gets besides its caller and path ids: the environment, the settings, the
//! request id and time, and what the pipeline learns on the way (the limit, a replay).

use crate::platform::request::Request;
use std::rc::Rc;
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::Env;

pub use crate::auth::access::Principal;
use crate::config::Config;
use crate::http::error::ApiError;
use crate::http::routes::PathParams;
use crate::limits::rate_limit::{Decision, Policy};

use crate::platform::d1::Store;
use crate::platform::request::header;

pub struct Ctx {
    pub env: Env,
    /// The deployment's settings, parsed once per isolate.
    pub config: Rc<Config>,
    pub worker: worker::Context,
    pub request_id: String,
    pub now_ms: i64,
    pub principal: Option<Principal>,
    pub params: PathParams,
    /// The answer is a remembered one (`Idempotent-Replayed: true`).
    pub replayed: bool,
    /// The request's `Idempotency-Key`, once claimed (a turn binds it to its messages).
    pub idempotency_key: Option<String>,
    /// The answer holds a secret (a JWT, a new key): `Cache-Control: no-store`.
    pub secret_in_response: bool,
    /// The rate limit this request was counted against: its headers go on the answer.
    pub limit: Option<(Policy, Decision)>,
    /// Errors are answered in OpenAI's shape (the OpenAI-compatible routes).
    pub openai_shape: bool,
}

impl Ctx {
    pub fn store(&self) -> Result<Store, ApiError> {
        Ok(Store::new(&self.env)?)
    }

    /// A context for the same request acting as `principal` (a read started before the
    /// caller's verification returns: `pipeline::read_ahead`).
    pub fn fork(&self, principal: Principal) -> Ctx {
        Ctx {
            env: self.env.clone(),
            config: Rc::clone(&self.config),
            // The same event's context: the runtime's object, one more handle to it.
            worker: worker::Context::new(JsValue::from(self.worker.as_ref()).unchecked_into()),
            request_id: self.request_id.clone(),
            now_ms: self.now_ms,
            principal: Some(principal),
            params: self.params.clone(),
            replayed: self.replayed,
            idempotency_key: self.idempotency_key.clone(),
            secret_in_response: self.secret_in_response,
            limit: None,
            openai_shape: self.openai_shape,
        }
    }

    /// The caller; only called on routes whose access rule guarantees one.
    pub fn principal(&self) -> Result<&Principal, ApiError> {
        self.principal.as_ref().ok_or(ApiError::Unauthorized)
    }

    /// The client's address as its limits count it (an IPv6 address by its /64).
    pub fn client_ip(req: &Request) -> String {
        crate::auth::access::ip_bucket(
            &header(req, "CF-Connecting-IP").unwrap_or_else(|| "unknown".into()),
        )
    }
}
