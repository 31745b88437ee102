//! Adapters to the Workers runtime: the request and response, D1, crypto, the event stream,
//! the abort of an upstream call, the log line, the typed Durable Object client and an object's own SQLite; plus the pure ids and timestamps they all use.

#[cfg(target_arch = "wasm32")]
pub mod abort;
#[cfg(target_arch = "wasm32")]
pub mod crypto;
#[cfg(target_arch = "wasm32")]
pub mod d1;
#[cfg(target_arch = "wasm32")]
pub mod event_stream;
pub mod ids;
pub mod instance;
#[cfg(target_arch = "wasm32")]
pub mod log;
#[cfg(target_arch = "wasm32")]
pub mod object;
#[cfg(target_arch = "wasm32")]
pub mod request;
#[cfg(target_arch = "wasm32")]
pub mod respond;
#[cfg(target_arch = "wasm32")]
pub mod sqlite;
pub mod time;
