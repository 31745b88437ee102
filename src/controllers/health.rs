use serde_json::json;

use crate::core::error::ApiError;
use crate::edge::reply::Reply;

pub fn get() -> Result<Reply, ApiError> {
    Reply::ok(json!({ "status": "ok", "version": env!("CARGO_PKG_VERSION") }))
}

/// The OpenAPI document itself (not wrapped in the envelope, so tools read it as is). It is a
/// static asset of the docs site (`src/site/openapi.json`), not embedded in the wasm, where
/// its 100 KB would count against the worker's size.
pub async fn openapi(env: &worker::Env) -> Result<Reply, ApiError> {
    let fail = |e: worker::Error| ApiError::internal(format!("assets: {e}"));
    let mut asset = env
        .assets("ASSETS")
        .map_err(fail)?
        .fetch("https://assets.local/openapi.json", None)
        .await
        .map_err(fail)?;
    if asset.status_code() != 200 {
        return Err(ApiError::internal("the OpenAPI asset is missing"));
    }
    let body = asset.bytes().await.map_err(fail)?;
    let headers = worker::Headers::new();
    let _ = headers.set("Content-Type", "application/json; charset=utf-8");
    let resp = worker::Response::from_bytes(body).map_err(ApiError::internal)?;
    Ok(Reply::Raw(resp.with_headers(headers)))
}
