//! Reading a request: headers, the query string, list parameters, and the body under the size
//! and media-type rules.

use futures::StreamExt;
use serde_json::{Map, Value};
use std::cell::RefCell;
use std::rc::Rc;
use worker::js_sys::Uint8Array;
use worker::wasm_bindgen_futures::JsFuture;
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
    /// The body once read, shared with this request's `share`d copies: a second reader (the
    /// idempotency fingerprint, a handler run again for another verdict) gets the same bytes
    /// without the runtime teeing the stream.
    body: Rc<RefCell<Body>>,
}

enum Body {
    Unread,
    Read(Rc<[u8]>),
    /// Read and refused: every reader gets the same error.
    Failed(ApiError),
    /// An `alias`, which never reads it: absent.
    Gone,
}

impl Request {
    pub fn new(raw: web_sys::Request) -> Request {
        let path = crate::http::query::path_of(&raw.url());
        Request {
            raw,
            path,
            body: Rc::new(RefCell::new(Body::Unread)),
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
            body: Rc::new(RefCell::new(Body::Gone)),
        }
    }

    /// A copy with a body of its own (the runtime tees the stream), for a reader that must
    /// leave this one's body unread: a body another Worker is given as it came (an upload).
    pub fn try_clone(&self) -> Option<Request> {
        self.raw.clone().ok().map(Request::new)
    }

    /// The same request for a second reader of the same body (see `body`).
    pub fn share(&self) -> Request {
        Request {
            raw: Clone::clone(&self.raw),
            path: self.path.clone(),
            body: Rc::clone(&self.body),
        }
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

/// The request body, refused with 413 as soon as it passes the size limit: a declared
/// `Content-Length` is checked before anything is read, and a chunked body (without one) is
/// read as a stream, never buffered whole first.
pub async fn body_bytes(req: &mut Request) -> Result<Rc<[u8]>, ApiError> {
    let length = header(req, "Content-Length").and_then(|l| l.parse::<usize>().ok());
    if let Some(len) = length {
        body::check_length(len)?;
    }
    match &*req.body.borrow() {
        Body::Read(bytes) => return Ok(Rc::clone(bytes)),
        Body::Failed(e) => return Err(e.clone()),
        Body::Gone => return Ok(Rc::from(Vec::new())),
        Body::Unread => {}
    }
    let read = read_body(req, length).await;
    *req.body.borrow_mut() = match &read {
        Ok(bytes) => Body::Read(Rc::clone(bytes)),
        Err(e) => Body::Failed(e.clone()),
    };
    read
}

async fn read_body(req: &Request, length: Option<usize>) -> Result<Rc<[u8]>, ApiError> {
    let Some(raw) = req.raw.body() else {
        return Ok(Rc::from(Vec::new())); // no body at all
    };
    Ok(match length {
        // Its length known and allowed (the runtime holds the body to it): one read.
        Some(_) => {
            let buffer = match req.raw.array_buffer() {
                Ok(read) => JsFuture::from(read).await,
                Err(e) => Err(e),
            }
            .map_err(|e| ApiError::InvalidJson(format!("unreadable body: {e:?}")))?;
            Rc::from(Uint8Array::new(&buffer).to_vec())
        }
        // Chunked: read piece by piece, so an endless body is refused at the limit.
        None => {
            let mut stream = ByteStream::from(raw);
            let mut bytes = Vec::new();
            while let Some(chunk) = stream.next().await {
                let chunk =
                    chunk.map_err(|e| ApiError::InvalidJson(format!("unreadable body: {e}")))?;
                body::check_length(bytes.len() + chunk.len())?;
                bytes.extend_from_slice(&chunk);
            }
            Rc::from(bytes)
        }
    })
}

/// Reads the body as a JSON object, applying the size and media-type rules (README, Conventions).
pub async fn json_body(req: &mut Request) -> Result<Map<String, Value>, ApiError> {
    let content_type = header(req, "Content-Type");
    let bytes = body_bytes(req).await?;
    body::parse_object(content_type.as_deref(), &bytes)
}
