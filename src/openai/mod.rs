//! The OpenAI-compatible surface: request and response shapes and the handlers.

#[cfg(target_arch = "wasm32")]
pub mod handlers;
pub mod model;
// The OpenAPI document is generated natively (http::openapi).
#[cfg(not(target_arch = "wasm32"))]
pub mod schema;
