//! A twin's knowledge: documents split into passages, the FTS5 query, retrieval, handlers.

#[cfg(target_arch = "wasm32")]
pub mod handlers;
pub mod model;
#[cfg(target_arch = "wasm32")]
pub mod store;
// The OpenAPI document is generated natively (http::openapi).
#[cfg(not(target_arch = "wasm32"))]
pub mod schema;
