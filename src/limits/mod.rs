//! Rate limits and the limits Durable Object: the counting algorithm (`rate_limit`), an
//! account's generation slots (`slots`), the object's protocol, the object (which holds the
//! counters, a key's verification record and the slots) and the Worker's client for it.

#[cfg(target_arch = "wasm32")]
pub mod client;
#[cfg(target_arch = "wasm32")]
pub mod object;
pub mod protocol;
pub mod rate_limit;
pub mod slots;
