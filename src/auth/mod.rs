//! Who the caller is: accounts, passwords, session tokens, API keys (format, cache record,
//! store, handlers) and the access rules that admit a principal to a route.

pub mod access;
pub mod api_key;
#[cfg(target_arch = "wasm32")]
pub mod authn;
#[cfg(target_arch = "wasm32")]
pub mod client_handlers;
pub mod client_token;
pub mod credentials;
#[cfg(target_arch = "wasm32")]
pub mod handlers;
pub mod key_cache;
#[cfg(target_arch = "wasm32")]
pub mod key_handlers;
pub mod model;
pub mod password;
#[cfg(target_arch = "wasm32")]
pub mod store;
pub mod token;
// The OpenAPI document is generated natively (http::openapi).
#[cfg(not(target_arch = "wasm32"))]
pub mod schema;
