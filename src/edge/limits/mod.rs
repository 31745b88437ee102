//! Keys and limits: the Durable Object that verifies API keys (a cache of each key's record)
//! and keeps every counter (rate limits, failed attempts, an account's generation slots), and
//! the Worker's calls to it.

mod client;
mod object;

pub use client::*;
pub use object::RateLimiter;
