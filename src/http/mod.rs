//! The HTTP layer every slice shares: the route table and its access rules, the one error
//! enum and the envelopes it becomes, request bodies and queries, OpenAPI; and (wasm) the
//! pipeline a request runs through and the dispatch from a route to its slice's handler.

pub mod body;
pub mod cursor;
pub mod envelope;
pub mod error;
pub mod query;
pub mod request_id;
pub mod routes;
pub mod validate;
// Generated natively into src/site/openapi.json, which the worker serves as a static asset.
#[cfg(target_arch = "wasm32")]
pub mod context;
#[cfg(target_arch = "wasm32")]
pub mod dispatch;
#[cfg(target_arch = "wasm32")]
pub mod health;
#[cfg(not(target_arch = "wasm32"))]
pub mod openapi;
#[cfg(target_arch = "wasm32")]
pub mod pipeline;
#[cfg(target_arch = "wasm32")]
pub mod reply;
#[cfg(target_arch = "wasm32")]
pub mod site;
