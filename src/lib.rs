//! TwinExpert API. `core` is pure and host-testable; `edge` (workerd adapters) and
//! `controllers` (handlers) wrap it.

// The OpenAPI document is one large `json!` literal.
#![recursion_limit = "512"]

pub mod core;

#[cfg(target_arch = "wasm32")]
mod controllers;
#[cfg(target_arch = "wasm32")]
mod edge;

#[cfg(target_arch = "wasm32")]
pub use edge::conversation::Conversation;
#[cfg(target_arch = "wasm32")]
pub use edge::limits::RateLimiter;

#[cfg(target_arch = "wasm32")]
#[worker::event(start)]
fn start() {
    console_error_panic_hook::set_once();
}

#[cfg(target_arch = "wasm32")]
#[worker::event(fetch)]
async fn fetch(
    // The runtime's own object: `worker::Request` would read `request.cf` up front (see
    // edge::request::Request).
    req: worker::worker_sys::web_sys::Request,
    env: worker::Env,
    ctx: worker::Context,
) -> worker::Result<worker::Response> {
    Ok(edge::pipeline::handle(req, env, ctx).await)
}
