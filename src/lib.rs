//! TwinExpert API, one folder per resource (docs/ARCHITECTURE.md). In each slice the model and
//! its rules are pure and unit-tested natively; its store, handlers and Durable Object are
//! wasm-only, and so is the `worker` stack itself (a wasm32-only dependency in Cargo.toml).

// The OpenAPI document is one large `json!` literal.
#![recursion_limit = "512"]

pub mod accounts;
pub mod auth;
pub mod config;
pub mod conversations;
pub mod feedback;
pub mod http;
pub mod idempotency;
pub mod knowledge;
pub mod limits;
pub mod llm;
pub mod openai;
pub mod platform;
pub mod spend;
pub mod twins;
pub mod webhooks;

// Which Durable Object classes a build holds (their modules are compiled only there, so the
// other build carries no object code for them): the API worker keeps the key objects; the cells
// worker (`--features cells`) the tenants' cells: accounts, conversations, twins' knowledge.
#[cfg(all(target_arch = "wasm32", feature = "cells"))]
pub use accounts::object::Account;
#[cfg(all(target_arch = "wasm32", feature = "cells"))]
pub use conversations::object::Conversation;
#[cfg(all(target_arch = "wasm32", feature = "cells"))]
pub use knowledge::object::TwinKnowledge;
#[cfg(all(target_arch = "wasm32", not(feature = "cells")))]
pub use limits::object::RateLimiter;

#[cfg(target_arch = "wasm32")]
#[worker::event(start)]
fn start() {
    console_error_panic_hook::set_once();
}

#[cfg(all(target_arch = "wasm32", not(feature = "cells")))]
#[worker::event(fetch)]
async fn fetch(
    // The runtime's own object: `worker::Request` would read `request.cf` up front (see
    // platform::request::Request).
    req: worker::worker_sys::web_sys::Request,
    env: worker::Env,
    ctx: worker::Context,
) -> worker::Result<worker::Response> {
    Ok(http::pipeline::handle(req, env, ctx).await)
}

/// The cells worker answers no request of its own: it is reached through its objects.
#[cfg(all(target_arch = "wasm32", feature = "cells"))]
#[worker::event(fetch)]
async fn fetch(
    _req: worker::worker_sys::web_sys::Request,
    _env: worker::Env,
    _ctx: worker::Context,
) -> worker::Result<worker::Response> {
    worker::Response::error("Not found", 404)
}

/// The cells worker's queue consumer: each message names a webhook delivery, which the
/// account's object attempts (webhooks::cell). A message whose object call fails is retried
/// by the queue; the object ignores one that is no longer due.
#[cfg(all(target_arch = "wasm32", feature = "cells"))]
#[worker::event(queue)]
async fn queue(
    batch: worker::MessageBatch<String>,
    env: worker::Env,
    _ctx: worker::Context,
) -> worker::Result<()> {
    use accounts::model::{Accounts, Op};
    use platform::instance::Instance;
    use platform::object::DoClient;
    use worker::MessageExt;
    for message in batch.messages()? {
        let body: serde_json::Value = serde_json::from_str(message.body()).unwrap_or_default();
        let (Some(user_id), Some(delivery_id)) =
            (body["userId"].as_str(), body["deliveryId"].as_str())
        else {
            message.ack();
            continue;
        };
        let op = Op::Deliver {
            delivery_id: delivery_id.to_owned(),
        };
        let delivered = match DoClient::<Accounts>::get(&env, &Instance::Account { user_id }) {
            Ok(object) => object.call::<bool>(&op).await.is_ok(),
            Err(_) => false,
        };
        if delivered {
            message.ack();
        } else {
            message.retry();
        }
    }
    Ok(())
}
