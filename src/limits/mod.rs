//! Rate limits and the limits Durable Object: the algorithm, the object's protocol, the
//! object and the Worker's client for it.

#[cfg(target_arch = "wasm32")]
pub mod client;
#[cfg(target_arch = "wasm32")]
pub mod object;
pub mod protocol;
pub mod rate_limit;
