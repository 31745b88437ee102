//! The upstream model: the Chat Completions request built from a turn, the SSE parser and
//! encoder, and (wasm) the streamed call with its timeouts.

pub mod chat;
pub mod sse;
#[cfg(target_arch = "wasm32")]
pub mod upstream;
