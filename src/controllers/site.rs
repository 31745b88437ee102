//! Paths outside `/api/v1` belong to the human-facing site (HTML, not the JSON envelope).

use worker::{Headers, Response};

use crate::core::error::ApiError;
use crate::edge::reply::Reply;

pub fn page(method: &str, path: &str) -> Result<Reply, ApiError> {
    // The docs are static assets under /docs/; the root sends people there.
    if matches!(method, "GET" | "HEAD") && path == "/" {
        // Built by hand: Response.redirect() has immutable headers (no X-Request-Id).
        let headers = Headers::new();
        let _ = headers.set("Location", "/docs/");
        let resp = Response::empty().map_err(ApiError::internal)?;
        return Ok(Reply::Raw(resp.with_status(302).with_headers(headers)));
    }
    let headers = Headers::new();
    let _ = headers.set("Content-Type", "text/html; charset=utf-8");
    let resp = Response::from_html(NOT_FOUND).map_err(ApiError::internal)?;
    Ok(Reply::Raw(resp.with_status(404).with_headers(headers)))
}

const NOT_FOUND: &str = "<!doctype html><meta charset=utf-8><title>Not found</title>\
<h1>Not found</h1><p>See the <a href=\"/docs/\">TwinExpert API docs</a>.</p>";
