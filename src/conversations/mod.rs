//! Conversations and their messages: the turn model, the D1 index, the handlers, and the
//! conversation's Durable Object that owns its messages and its running generation.

#[cfg(target_arch = "wasm32")]
pub mod client;
#[cfg(target_arch = "wasm32")]
pub mod erasure;
pub mod export;
#[cfg(target_arch = "wasm32")]
pub mod handlers;
#[cfg(target_arch = "wasm32")]
pub mod messages;
pub mod model;
#[cfg(all(target_arch = "wasm32", feature = "cells"))]
pub mod object;
#[cfg(target_arch = "wasm32")]
pub mod storage;
#[cfg(target_arch = "wasm32")]
pub mod store;
pub mod suggestions;
// The OpenAPI document is generated natively (http::openapi).
#[cfg(not(target_arch = "wasm32"))]
pub mod schema;
