//! Paths outside `/api/v1` belong to the human-facing site (HTML, not the JSON envelope). The
//! docs are the static assets of a Worker of their own (`src/site/wrangler.toml`), reached over
//! the `SITE` service binding; the API worker itself carries no assets (see wrangler.toml).

use worker::{Env, Fetcher, Headers, Response};

use crate::http::error::ApiError;
use crate::http::reply::Reply;
use crate::platform::request::Request;

pub async fn page(env: &Env, req: &Request, method: &str, path: &str) -> Result<Reply, ApiError> {
    // The root sends people to the docs.
    if matches!(method, "GET" | "HEAD") && path == "/" {
        // Built by hand: Response.redirect() has immutable headers (no X-Request-Id).
        let headers = Headers::new();
        let _ = headers.set("Location", "/docs/");
        let resp = Response::empty().map_err(ApiError::internal)?;
        return Ok(Reply::Raw(resp.with_status(302).with_headers(headers)));
    }
    let resp = site(env)?
        .fetch_request(req.forward())
        .await
        .map_err(failed)?;
    if resp.status_code() != 404 {
        return Ok(Reply::Raw(resp));
    }
    let headers = Headers::new();
    let _ = headers.set("Content-Type", "text/html; charset=utf-8");
    let resp = Response::from_html(NOT_FOUND).map_err(ApiError::internal)?;
    Ok(Reply::Raw(resp.with_status(404).with_headers(headers)))
}

/// One file of the site, read whole (the OpenAPI document the API serves under its own path).
pub async fn asset(env: &Env, path: &str) -> Result<Vec<u8>, ApiError> {
    let mut resp = site(env)?
        .fetch(format!("https://site.local{path}"), None)
        .await
        .map_err(failed)?;
    if resp.status_code() != 200 {
        return Err(ApiError::internal(format!("site: {path} is missing")));
    }
    resp.bytes().await.map_err(failed)
}

fn failed(e: worker::Error) -> ApiError {
    ApiError::internal(format!("site: {e}"))
}

fn site(env: &Env) -> Result<Fetcher, ApiError> {
    env.service("SITE")
        .map_err(|e| ApiError::internal(format!("site binding: {e}")))
}

const NOT_FOUND: &str = "<!doctype html><meta charset=utf-8><title>Not found</title>\
<h1>Not found</h1><p>See the <a href=\"/docs/\">TwinExpert API docs</a>.</p>";
