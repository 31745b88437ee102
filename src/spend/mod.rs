//! Spend controls and usage: the allowed models, end users, quotas, the gate every
//! generation passes and `GET /usage` (the aggregates live in the account's object, `accounts`).

#[cfg(target_arch = "wasm32")]
pub mod gate;
#[cfg(target_arch = "wasm32")]
pub mod handlers;
pub mod model;
