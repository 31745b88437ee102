//! Edge adapters: the thin layer between workerd and the pure core.

pub mod abort;
pub mod authn;
pub mod config;
pub mod context;
pub mod conversation;
pub mod crypto;
pub mod event_stream;
pub mod gate;
pub mod idempotency;
pub mod limits;
pub mod log;
pub mod pipeline;
pub mod reply;
pub mod request;
pub mod respond;
pub mod store;
pub mod upstream;
