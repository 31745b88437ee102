//! The API's side of files and web pages (SPEC §17): after the owner check, the request goes
//! to the ingest worker (`src/ingest/`, JavaScript: the best-kept extractors for PDF, DOCX and
//! HTML are), which keeps the original in R2, records the document as `processing` in the
//! twin's object and queues its extraction. The multipart body is streamed through, never
//! read here: the API's wasm carries no multipart or PDF code.

use serde_json::Value;
use worker::{Headers, Method, RequestInit};

use crate::http::context::Ctx;
use crate::http::error::ApiError;
use crate::http::reply::Reply;
use crate::knowledge::client::totals;
use crate::platform::request::Request;
use crate::platform::time;
use crate::webhooks::model::Settings;

pub enum Upload<'a> {
    /// `multipart/form-data` with a `file`.
    File(&'a mut Request),
    /// `{url, title?, sourceUrl?}` as JSON text.
    Page(String),
    /// An imported page, fetched again.
    Refresh,
}

fn settings(ctx: &Ctx) -> Value {
    crate::webhooks::handlers::settings(&ctx.env)
}

/// `url` is an https URL of a public host, as a webhook endpoint's must be (§15); answered
/// at once, before anything is stored.
pub fn check_url(ctx: &Ctx, body: &serde_json::Map<String, Value>) -> Result<(), ApiError> {
    let url = body.get("url").and_then(Value::as_str).unwrap_or("");
    crate::webhooks::model::check_url(url, &Settings::from_json(&settings(ctx)))
        .map_err(|why| ApiError::field("url", why))
}

/// Hands the upload to the ingest worker: 202 with the document, or its refusal as this API's
/// error. The twin's D1 row learns its new totals as for a JSON document.
pub async fn add(
    ctx: &Ctx,
    owner: &str,
    twin_id: &str,
    document_id: &str,
    used_chars: u64,
    upload: Upload<'_>,
) -> Result<Reply, ApiError> {
    let headers = Headers::new();
    let config = &ctx.config;
    let allow = settings(ctx)["allowHttpHosts"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    let left = config.max_knowledge_chars.saturating_sub(used_chars);
    for (name, value) in [
        ("x-twin-id", twin_id.to_owned()),
        ("x-document-id", document_id.to_owned()),
        ("x-created-at", time::rfc3339_ms(ctx.now_ms)),
        ("x-max-docs", config.max_knowledge_docs.to_string()),
        ("x-chars-left", left.to_string()),
        ("x-allow-http-hosts", allow),
    ] {
        headers.set(name, &value).map_err(ApiError::internal)?;
    }
    let mut init = RequestInit::new();
    init.with_method(Method::Post);
    let path = match upload {
        Upload::File(req) => {
            let raw = req.forward();
            if let Some(t) = raw
                .headers()
                .get("Content-Type")
                .map_err(ApiError::internal)?
            {
                headers
                    .set("Content-Type", &t)
                    .map_err(ApiError::internal)?;
            }
            init.with_body(raw.inner().body().map(Into::into));
            "documents"
        }
        Upload::Page(json) => {
            headers
                .set("Content-Type", "application/json")
                .map_err(ApiError::internal)?;
            init.with_body(Some(json.into()));
            "documents"
        }
        Upload::Refresh => "refresh",
    };
    init.with_headers(headers);
    let outgoing = worker::Request::new_with_init(&format!("https://ingest.local/{path}"), &init)
        .map_err(ApiError::internal)?;
    let failed = |e: worker::Error| ApiError::internal(format!("ingest: {e}"));
    let mut resp = ctx
        .env
        .service("INGEST")
        .map_err(failed)?
        .fetch_request(outgoing)
        .await
        .map_err(failed)?;
    let status = resp.status_code();
    let mut answer: Value = resp.json().await.map_err(failed)?;
    let message = || answer["message"].as_str().unwrap_or("").to_owned();
    match status {
        202 => {
            if let Some(t) = totals(&answer["totals"]) {
                ctx.store()?
                    .set_knowledge_totals(owner, twin_id, t.documents, t.chars)
                    .await?;
            }
            Reply::with_status(202, answer["document"].take())
        }
        400 => {
            let field = answer["field"].as_str().unwrap_or("file").to_owned();
            Err(ApiError::field(&field, &message()))
        }
        404 => Err(ApiError::NotFound("Document")),
        409 => Err(ApiError::Conflict(message())),
        _ => Err(ApiError::internal(format!("ingest answered {status}"))),
    }
}
