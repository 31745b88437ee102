//! The OpenAI-compatible surface: request and response shapes and the handlers.

#[cfg(target_arch = "wasm32")]
pub mod handlers;
pub mod model;
