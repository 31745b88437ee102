use serde_json::json;

use crate::core::error::ApiError;
use crate::edge::context::Reply;

pub fn get() -> Result<Reply, ApiError> {
    Reply::ok(json!({ "status": "ok", "version": env!("CARGO_PKG_VERSION") }))
}
