//! `Idempotency-Key`: the rules and fingerprint, and the run of a POST under it (the records
//! live in the account's object, `accounts::object`).

pub mod model;
#[cfg(target_arch = "wasm32")]
pub mod run;
