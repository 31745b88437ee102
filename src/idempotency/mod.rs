//! `Idempotency-Key`: the rules and fingerprint, the D1 record, and the run of a POST under it.

pub mod model;
#[cfg(target_arch = "wasm32")]
pub mod run;
#[cfg(target_arch = "wasm32")]
pub mod store;
