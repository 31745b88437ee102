//! An account's cell (SPEC §14): one Durable Object per account holding what grows with its
//! traffic — its generation slots (persisted, so they survive an eviction or a deploy), its usage
//! by day, key, twin and end user (which answers `GET /usage` and gives the quota check today's
//! tokens without reading D1). D1 keeps only the directory.

#[cfg(target_arch = "wasm32")]
pub mod client;
pub mod model;
#[cfg(all(target_arch = "wasm32", feature = "cells"))]
pub mod object;
pub mod slots;
