//! Webhooks (SPEC §15, docs/webhooks.md): an account's endpoints and their deliveries live in
//! the account's object (its cell); a delivery is sent through a Cloudflare Queue and signed as
//! Standard Webhooks says. The API's routes only pass their call through to that object.

#[cfg(all(target_arch = "wasm32", feature = "cells"))]
pub mod cell;
#[cfg(target_arch = "wasm32")]
pub mod handlers;
pub mod model;
// The OpenAPI document is generated natively (http::openapi).
#[cfg(not(target_arch = "wasm32"))]
pub mod schema;
