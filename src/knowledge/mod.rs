//! A twin's knowledge: documents split into passages, the FTS5 query, retrieval, handlers.

#[cfg(target_arch = "wasm32")]
pub mod handlers;
pub mod model;
#[cfg(target_arch = "wasm32")]
pub mod store;
