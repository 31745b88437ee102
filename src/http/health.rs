use serde_json::json;

use crate::http::error::ApiError;
use crate::http::reply::Reply;

pub fn get() -> Result<Reply, ApiError> {
    Reply::ok(json!({ "status": "ok", "version": env!("CARGO_PKG_VERSION") }))
}

/// The OpenAPI document itself (not wrapped in the envelope, so tools read it as is). It is a
/// static asset of the docs site (`src/site/openapi.json`), not embedded in the wasm, where
/// its 130 KB would count against the worker's size.
pub async fn openapi(env: &worker::Env) -> Result<Reply, ApiError> {
    let body = crate::http::site::asset(env, "/openapi.json").await?;
    let headers = worker::Headers::new();
    let _ = headers.set("Content-Type", "application/json; charset=utf-8");
    let resp = worker::Response::from_bytes(body).map_err(ApiError::internal)?;
    Ok(Reply::Raw(resp.with_headers(headers)))
}
