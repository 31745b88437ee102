use serde_json::json;

use crate::core::error::ApiError;
use crate::edge::context::Reply;

pub fn get() -> Result<Reply, ApiError> {
    Reply::ok(json!({ "status": "ok", "version": env!("CARGO_PKG_VERSION") }))
}

/// The OpenAPI document itself (not wrapped in the envelope, so tools read it as is).
pub fn openapi() -> Result<Reply, ApiError> {
    const DOCUMENT: &str = include_str!("../openapi.json");
    let headers = worker::Headers::new();
    let _ = headers.set("Content-Type", "application/json; charset=utf-8");
    let resp =
        worker::Response::from_bytes(DOCUMENT.as_bytes().to_vec()).map_err(ApiError::internal)?;
    Ok(Reply::Raw(resp.with_headers(headers)))
}
