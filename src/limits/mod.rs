//! Rate limits and the limits Durable Object: the counting algorithm (`rate_limit`), the
//! object's protocol, the object (which holds the counters and a key's verification record)
//! and the Worker's client for it.

#[cfg(target_arch = "wasm32")]
pub mod client;
#[cfg(all(target_arch = "wasm32", not(feature = "cells")))]
pub mod object;
pub mod protocol;
pub mod rate_limit;
