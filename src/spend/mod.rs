//! Spend controls and usage: the allowed models, end users, quotas, the gate every
//! generation passes and the daily usage aggregates behind `GET /usage`.

#[cfg(target_arch = "wasm32")]
pub mod gate;
#[cfg(target_arch = "wasm32")]
pub mod handlers;
pub mod model;
#[cfg(target_arch = "wasm32")]
pub mod store;
