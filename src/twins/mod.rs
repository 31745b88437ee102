//! Twins: the fields and their rules, the directory rows in D1, the handlers.

#[cfg(target_arch = "wasm32")]
pub mod handlers;
pub mod model;
#[cfg(target_arch = "wasm32")]
pub mod store;
// The OpenAPI document is generated natively (http::openapi).
#[cfg(not(target_arch = "wasm32"))]
pub mod schema;
