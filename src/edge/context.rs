//! What a handler gets: the environment, who is calling, and helpers to read the request.

use futures::StreamExt;
use serde_json::{Map, Value};
use std::rc::Rc;
use worker::{Env, Request, Response};

pub use crate::core::access::Principal;
use crate::core::body;
use crate::core::config::Config;
use crate::core::envelope::{ExtraMeta, Pagination};
use crate::core::error::ApiError;
use crate::core::routes::PathParams;
use crate::core::validate::page_params;

use super::store::Store;

pub struct Ctx {
    pub env: Env,
    /// The deployment's settings, parsed once per isolate.
    pub config: Rc<Config>,
    pub worker: worker::Context,
    pub request_id: String,
    pub now_ms: i64,
    pub principal: Option<Principal>,
    pub params: PathParams,
    /// The answer is a remembered one (`Idempotent-Replayed: true`).
    pub replayed: bool,
    /// The answer holds a secret (a JWT, a new key): `Cache-Control: no-store`.
    pub secret_in_response: bool,
}

impl Ctx {
    pub fn store(&self) -> Result<Store, ApiError> {
        Ok(Store::new(&self.env)?)
    }

    /// The caller; only called on routes whose access rule guarantees one.
    pub fn principal(&self) -> Result<&Principal, ApiError> {
        self.principal.as_ref().ok_or(ApiError::Unauthorized)
    }

    pub fn client_ip(req: &Request) -> String {
        header(req, "CF-Connecting-IP").unwrap_or_else(|| "unknown".into())
    }
}

/// A list request's query string: `page` and `limit` checked, the rest kept as filters.
pub struct ListQuery {
    params: std::collections::HashMap<String, String>,
    page: u64,
    limit: u64,
}

impl ListQuery {
    pub fn parse(req: &Request) -> Result<Self, ApiError> {
        // The last value wins when a parameter repeats.
        let params = query_params(req);
        let (page, limit) = page_params(
            params.get("page").map(String::as_str),
            params.get("limit").map(String::as_str),
        )?;
        Ok(ListQuery {
            params,
            page,
            limit,
        })
    }

    /// A filter parameter, trimmed; `None` when absent or empty.
    pub fn filter(&self, name: &str) -> Option<&str> {
        self.params
            .get(name)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    }

    pub fn limit(&self) -> u64 {
        self.limit
    }

    pub fn offset(&self) -> u64 {
        Pagination::new(self.page, self.limit, 0).offset()
    }

    /// The page of `data` out of `total`, with its pagination metadata.
    pub fn reply(&self, data: impl serde::Serialize, total: u64) -> Result<Reply, ApiError> {
        let data = serde_json::to_value(data).map_err(ApiError::internal)?;
        Ok(Reply::Json {
            status: 200,
            data,
            meta: ExtraMeta::Pagination(Pagination::new(self.page, self.limit, total)),
        })
    }
}

/// The request's query parameters (the last value wins when one repeats).
pub fn query_params(req: &Request) -> std::collections::HashMap<String, String> {
    crate::core::query::params(&req.inner().url())
}

pub fn header(req: &Request, name: &str) -> Option<String> {
    req.headers().get(name).ok().flatten()
}

/// The request body, refused with 413 as soon as it passes the size limit — also when it
/// comes chunked, without `Content-Length`: it is read as a stream, never buffered whole first.
pub async fn body_bytes(req: &mut Request) -> Result<Vec<u8>, ApiError> {
    if let Some(len) = header(req, "Content-Length").and_then(|l| l.parse::<usize>().ok()) {
        body::check_length(len)?;
    }
    let Ok(mut stream) = req.stream() else {
        return Ok(Vec::new()); // no body at all
    };
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ApiError::InvalidJson(format!("unreadable body: {e}")))?;
        body::check_length(bytes.len() + chunk.len())?;
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

/// Reads the body as a JSON object, applying the size and media-type rules (README, Conventions).
pub async fn json_body(req: &mut Request) -> Result<Map<String, Value>, ApiError> {
    let content_type = header(req, "Content-Type");
    let bytes = body_bytes(req).await?;
    body::parse_object(content_type.as_deref(), &bytes)
}

pub enum Reply {
    Json {
        status: u16,
        data: Value,
        meta: ExtraMeta,
    },
    /// JSON outside the envelope (the OpenAI-compatible routes).
    Plain { status: u16, body: Value },
    /// A response built by the handler itself (the SSE stream).
    Raw(Response),
}

impl Reply {
    pub fn ok(data: impl serde::Serialize) -> Result<Reply, ApiError> {
        Self::with_status(200, data)
    }

    pub fn created(data: impl serde::Serialize) -> Result<Reply, ApiError> {
        Self::with_status(201, data)
    }

    pub fn with_status(status: u16, data: impl serde::Serialize) -> Result<Reply, ApiError> {
        let data = serde_json::to_value(data).map_err(ApiError::internal)?;
        Ok(Reply::Json {
            status,
            data,
            meta: ExtraMeta::None,
        })
    }
}
