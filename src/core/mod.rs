//! The pure core: everything that decides what the API does, with no `worker` imports,
//! so it compiles and is unit-tested natively with `cargo test`.

pub mod access;
pub mod accounts;
pub mod api_key;
pub mod body;
pub mod chat;
pub mod config;
pub mod conversation;
pub mod credentials;
pub mod envelope;
pub mod error;
pub mod idempotency;
pub mod ids;
pub mod key_cache;
pub mod knowledge;
pub mod limits;
// Generated natively into src/site/openapi.json, which the worker serves as a static asset.
pub mod openai;
#[cfg(not(target_arch = "wasm32"))]
pub mod openapi;
pub mod password;
pub mod query;
pub mod rate_limit;
pub mod request_id;
pub mod routes;
pub mod spend;
pub mod sse;
pub mod time;
pub mod token;
pub mod twins;
pub mod validate;
