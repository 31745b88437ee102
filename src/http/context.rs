//! What a handler gets besides its caller and path ids: the environment, the settings, the
//! request id and time; and what the pipeline learned of the call (the caller, the path's ids).

use crate::platform::request::Request;
use futures::channel::oneshot;
use std::cell::{Cell, RefCell};
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
    /// Set when the handler was started alongside the caller's verification
    /// (`http::pipeline::ahead`): `verified` waits for it.
    pub verdict: Option<Verdict>,
}

/// The verification a handler started ahead of it waits for before it stores anything: true
/// when it admitted the very caller the handler runs for (same principal, within its limits
/// and scope).
#[derive(Clone)]
pub struct Verdict {
    pending: Rc<RefCell<Option<oneshot::Receiver<bool>>>>,
    known: Rc<Cell<Option<bool>>>,
}

impl Verdict {
    pub fn new(rx: oneshot::Receiver<bool>) -> Verdict {
        Verdict {
            pending: Rc::new(RefCell::new(Some(rx))),
            known: Rc::default(),
        }
    }
}

impl Call {
    /// Returns once the caller is verified. A handler started ahead of the verdict reads
    /// until here and writes only after; if the verdict is anything but this caller admitted,
    /// it stops (having stored nothing) and the pipeline answers the verdict, or runs the
    /// handler again for the caller it found.
    pub async fn verified(&self) -> Result<(), ApiError> {
        let Some(v) = &self.verdict else {
            return Ok(());
        };
        let admitted = match v.known.get() {
            Some(known) => known,
            None => {
                let rx = v.pending.borrow_mut().take();
                let admitted = match rx {
                    Some(rx) => rx.await == Ok(true),
                    None => false,
                };
                v.known.set(Some(admitted));
                admitted
            }
        };
        admitted.then_some(()).ok_or(ApiError::Unauthorized)
    }
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
