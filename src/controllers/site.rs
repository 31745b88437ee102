//! Paths outside `/api/v1` belong to the human-facing site (HTML, not the JSON envelope).

use worker::{Headers, Response};

use crate::core::error::ApiError;
use crate::edge::context::Reply;

const LANDING: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>TwinExpert API</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 40rem; margin: 3rem auto">
<h1>TwinExpert API</h1>
<p>Integrate AI twins of human experts into your app. The API lives under
<code>/api/v1</code>; check <a href="/api/v1/health">/api/v1/health</a>.</p>
</body></html>"#;

pub fn page(method: &str, path: &str) -> Result<Reply, ApiError> {
    let (status, body) = match (method, path) {
        ("GET" | "HEAD", "/" | "/docs" | "/docs/") => (200, LANDING),
        _ => (
            404,
            "<!doctype html><title>Not found</title><h1>Not found</h1>",
        ),
    };
    let headers = Headers::new();
    let _ = headers.set("Content-Type", "text/html; charset=utf-8");
    let resp = Response::from_html(body).map_err(ApiError::internal)?;
    Ok(Reply::Raw(resp.with_status(status).with_headers(headers)))
}
