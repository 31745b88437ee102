//! Feedback on a twin's replies (SPEC §19): one rating per reply, the latest wins. The
//! conversation's object keeps it with the message; the twin's object keeps the twin's report
//! (counts by day, the latest comments), so the report reads one object whatever the traffic.

#[cfg(all(target_arch = "wasm32", feature = "cells"))]
pub mod cell;
#[cfg(target_arch = "wasm32")]
pub mod handlers;
pub mod model;
