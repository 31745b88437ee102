//! Twins: the fields and their rules, the directory rows in D1, the handlers.

#[cfg(target_arch = "wasm32")]
pub mod handlers;
pub mod model;
#[cfg(target_arch = "wasm32")]
pub mod store;
