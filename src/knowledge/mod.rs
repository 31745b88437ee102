//! A twin's knowledge: documents split into passages, the FTS5 query, retrieval, handlers. Each
//! twin's documents, passages and index live in its own Durable Object (`object`, SPEC §14); D1
//! keeps only the number of documents on the twin's row (a turn calls the object only when it
//! is above zero).

#[cfg(target_arch = "wasm32")]
pub mod client;
#[cfg(target_arch = "wasm32")]
pub mod handlers;
#[cfg(target_arch = "wasm32")]
pub mod ingest;
pub mod model;
#[cfg(all(target_arch = "wasm32", feature = "cells"))]
pub mod object;
pub mod protocol;
// The OpenAPI document is generated natively (http::openapi).
#[cfg(not(target_arch = "wasm32"))]
pub mod schema;
#[cfg(target_arch = "wasm32")]
pub mod store;
