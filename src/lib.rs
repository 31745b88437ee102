//! TwinExpert API, one folder per resource (docs/ARCHITECTURE.md). In each slice the model and
//! its rules are pure and unit-tested natively; its store, handlers and Durable Object are
//! wasm-only, and so is the `worker` stack itself (a wasm32-only dependency in Cargo.toml).

// The OpenAPI document is one large `json!` literal.
#![recursion_limit = "512"]

pub mod accounts;
pub mod auth;
pub mod config;
pub mod conversations;
pub mod http;
pub mod idempotency;
pub mod knowledge;
pub mod limits;
pub mod llm;
pub mod openai;
pub mod platform;
pub mod spend;
pub mod twins;

#[cfg(target_arch = "wasm32")]
pub use accounts::object::Account;
#[cfg(target_arch = "wasm32")]
pub use conversations::object::Conversation;
#[cfg(target_arch = "wasm32")]
pub use knowledge::object::TwinKnowledge;
#[cfg(target_arch = "wasm32")]
pub use limits::object::RateLimiter;

#[cfg(target_arch = "wasm32")]
#[worker::event(start)]
fn start() {
    console_error_panic_hook::set_once();
}

#[cfg(target_arch = "wasm32")]
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
