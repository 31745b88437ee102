//! Reading a request: headers, the query string, list parameters, and the body under the size
//! and media-type rules.

use futures::StreamExt;
use serde_json::{Map, Value};
use worker::worker_sys::web_sys;
use worker::ByteStream;

use crate::http::body;
use crate::http::cursor::{self, Cursor, PageRequest};
use crate::http::envelope::{ExtraMeta, Pagination};
use crate::http::error::ApiError;
use crate::http::validate::page_params;

use crate::http::reply::Reply;

/// The incoming request, read straight from the runtime's object. (`worker::Request` reads
/// `request.cf` as it is made: measured with bench/profile, that getter alone was a quarter of
/// /health's CPU, and nothing here uses it.)
pub struct Request {
    raw: web_sys::Request,
    path: String,
    body_used: bool,
}

impl Request {
    pub fn new(raw: web_sys::Request) -> Request {
        let path = crate::http::query::path_of(&raw.url());
        Request {
            raw,
            path,
            body_used: false,
        }
    }

    pub fn method(&self) -> String {
        self.raw.method()
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn url(&self) -> String {
        self.raw.url()
    }

    /// Fires when the client disconnects (on the platform; local workerd never fires it).
    pub fn signal(&self) -> web_sys::AbortSignal {
        self.raw.signal()
    }

    /// The same request as the runtime gave it, to pass on to another Worker (the docs site).
    pub fn forward(&self) -> worker::Request {
        worker::Request::from(Clone::clone(&self.raw))
    }

    /// The same request for a second reader that never reads the body (a read started
    /// alongside the caller's verification): its body reads as absent.
    pub fn alias(&self) -> Request {
        Request {
            raw: Clone::clone(&self.raw),
            path: self.path.clone(),
            body_used: true,
        }
    }

    /// A copy whose body can be read while this one's is read too (the idempotency fingerprint).
    pub fn try_clone(&self) -> Option<Request> {
        self.raw.clone().ok().map(Request::new)
    }

    /// The body, once; `None` when there is none or it was read.
    fn stream(&mut self) -> Option<ByteStream> {
        if std::mem::replace(&mut self.body_used, true) {
            return None;
        }
        self.raw.body().map(ByteStream::from)
    }
}

/// A list request's query string: `page`, `limit` and a cursor (`startingAfter` or
/// `endingBefore`, which wins over `page`) checked, the rest kept as filters.
pub struct ListQuery {
    params: std::collections::HashMap<String, String>,
    page: u64,
    limit: u64,
    cursor: Option<Cursor>,
}

impl ListQuery {
    pub fn parse(req: &Request) -> Result<Self, ApiError> {
        // The last value wins when a parameter repeats.
        let params = query_params(req);
        let (page, limit) = page_params(
            params.get("page").map(String::as_str),
            params.get("limit").map(String::as_str),
        )?;
        let param = |name: &str| params.get(name).map(String::as_str);
        let cursor = cursor::parse(param("startingAfter"), param("endingBefore"))?;
        Ok(ListQuery {
            params,
            page,
            limit,
            cursor,
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
        Pagination::offset(self.page, self.limit)
    }

    pub fn cursor(&self) -> Option<&Cursor> {
        self.cursor.as_ref()
    }

    /// The page as an object's list op takes it.
    pub fn page_request(&self) -> PageRequest {
        PageRequest {
            limit: self.limit,
            offset: self.offset(),
            cursor: self.cursor.clone(),
        }
    }

    /// The page of `data` out of `total`, with its pagination metadata; `more`: whether a
    /// cursor page has more items beyond it (a numbered page works it out from `total`).
    pub fn reply(
        &self,
        data: impl serde::Serialize,
        total: u64,
        more: Option<bool>,
    ) -> Result<Reply, ApiError> {
        let data = serde_json::to_value(data).map_err(ApiError::internal)?;
        let items = data.as_array().map(Vec::as_slice).unwrap_or_default();
        let id = |item: Option<&serde_json::Value>| {
            item.and_then(|i| i["id"].as_str()).map(str::to_owned)
        };
        let pagination = match &self.cursor {
            None => Pagination::numbered(self.page, self.limit, total, id(items.last())),
            Some(c) => {
                let far = if c.before() {
                    items.first()
                } else {
                    items.last()
                };
                Pagination::cursor(self.limit, total, more.unwrap_or(false), id(far))
            }
        };
        Ok(Reply::Json {
            status: 200,
            data,
            meta: ExtraMeta::Pagination(pagination),
        })
    }
}

/// The request's query parameters (the last value wins when one repeats).
pub fn query_params(req: &Request) -> std::collections::HashMap<String, String> {
    crate::http::query::params(&req.url())
}

pub fn header(req: &Request, name: &str) -> Option<String> {
    req.raw.headers().get(name).ok().flatten()
}

/// The request body, refused with 413 as soon as it passes the size limit — also when it
/// comes chunked, without `Content-Length`: it is read as a stream, never buffered whole first.
pub async fn body_bytes(req: &mut Request) -> Result<Vec<u8>, ApiError> {
    if let Some(len) = header(req, "Content-Length").and_then(|l| l.parse::<usize>().ok()) {
        body::check_length(len)?;
    }
    let Some(mut stream) = req.stream() else {
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
