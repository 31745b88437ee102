//! What a handler gets besides its caller and path ids: the environment, the settings, the
//! request id and time; and what the pipeline learned of the call (the caller, the path's ids).

use crate::platform::request::Request;
use std::rc::Rc;
use worker::Env;

pub use crate::auth::access::Principal;
use crate::config::Config;
use crate::http::error::ApiError;
use crate::http::routes::PathParams;

use crate::platform::d1::Store;
use crate::platform::request::header;

/// The request's surroundings, the same for everything that runs for it: handlers take `&Ctx`,
/// so a read started ahead of the caller's verification shares it as it is.
pub struct Ctx {
    pub env: Env,
    /// The deployment's settings, parsed once per isolate.
    pub config: Rc<Config>,
    pub worker: worker::Context,
    pub request_id: String,
    pub now_ms: i64,
}

/// What the pipeline established about the request before its handler runs.
#[derive(Clone, Default)]
pub struct Call {
    /// The caller, on every authenticated route.
    pub principal: Option<Principal>,
    pub params: PathParams,
    /// The request's `Idempotency-Key` once claimed, as `usr_…:key` (a turn binds it).
    pub idempotency_key: Option<String>,
}

impl Ctx {
    pub fn store(&self) -> Result<Store, ApiError> {
        Ok(Store::new(&self.env)?)
    }

    /// The client's address as its limits count it (an IPv6 address by its /64).
    pub fn client_ip(req: &Request) -> String {
        crate::auth::access::ip_bucket(
            &header(req, "CF-Connecting-IP").unwrap_or_else(|| "unknown".into()),
        )
    }
}
