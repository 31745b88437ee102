//! The success and error envelopes of every response, built here and nowhere else.

use serde::Serialize;
use serde_json::{json, Value};

use crate::http::error::ApiError;

/// The answer to a `DELETE`: `{id, deleted: true}`.
#[derive(Debug, Serialize)]
pub struct Deleted<'a> {
    pub id: &'a str,
    pub deleted: bool,
}

impl<'a> Deleted<'a> {
    pub fn new(id: &'a str) -> Self {
        Deleted { id, deleted: true }
    }
}

/// What every envelope says about the request it answers.
pub struct RequestMeta<'a> {
    pub request_id: &'a str,
    pub timestamp: &'a str,
    pub path: &'a str,
    pub method: &'a str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Pagination {
    pub page: u64,
    pub limit: u64,
    pub total: u64,
    pub total_pages: u64,
    pub has_more: bool,
}

impl Pagination {
    pub fn new(page: u64, limit: u64, total: u64) -> Self {
        let total_pages = total.div_ceil(limit.max(1));
        Pagination {
            page,
            limit,
            total,
            total_pages,
            has_more: page < total_pages,
        }
    }

    pub fn offset(&self) -> u64 {
        // Saturating: `page` may be as large as a client likes (past the end is an empty page).
        self.page.saturating_sub(1).saturating_mul(self.limit)
    }
}

/// More for `meta` than every envelope has: a list's pagination, a report's totals.
#[derive(Debug, Clone, PartialEq)]
pub enum ExtraMeta {
    None,
    Pagination(Pagination),
    Totals(Value),
}

pub fn success(data: Value, extra: ExtraMeta, meta: &RequestMeta) -> Value {
    let mut m = json!({ "timestamp": meta.timestamp, "requestId": meta.request_id });
    match extra {
        ExtraMeta::None => {}
        ExtraMeta::Pagination(p) => m["pagination"] = json!(p),
        ExtraMeta::Totals(t) => m["totals"] = t,
    }
    json!({ "success": true, "data": data, "meta": m })
}

pub fn error_body(err: &ApiError, meta: &RequestMeta) -> Value {
    json!({
        "success": false,
        "message": err.message(),
        "error": err.code(),
        "statusCode": err.status(),
        "timestamp": meta.timestamp,
        "path": meta.path,
        "method": meta.method,
        "meta": { "timestamp": meta.timestamp, "requestId": meta.request_id },
        "details": err.details(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const META: RequestMeta = RequestMeta {
        request_id: "req_1",
        timestamp: "2025-07-23T17:06:03.675Z",
        path: "/api/v1/twins",
        method: "GET",
    };

    #[test]
    fn error_envelope_has_every_field_of_the_spec() {
        let body = error_body(&ApiError::InvalidApiKeyFormat, &META);
        assert_eq!(body["success"], false);
        assert_eq!(body["message"], "Invalid API key format");
        assert_eq!(body["error"], "INVALID_API_KEY_FORMAT");
        assert_eq!(body["statusCode"], 401);
        assert_eq!(body["timestamp"], META.timestamp);
        assert_eq!(body["path"], "/api/v1/twins");
        assert_eq!(body["method"], "GET");
        assert_eq!(body["meta"]["requestId"], "req_1");
        assert!(body["details"].is_object());
    }

    #[test]
    fn success_envelope_with_pagination() {
        let body = success(
            json!([]),
            ExtraMeta::Pagination(Pagination::new(1, 20, 0)),
            &META,
        );
        assert_eq!(body["success"], true);
        assert_eq!(body["meta"]["pagination"]["totalPages"], 0);
        assert_eq!(body["meta"]["pagination"]["hasMore"], false);
    }

    #[test]
    fn pagination_arithmetic() {
        let p = Pagination::new(2, 10, 25);
        assert_eq!((p.total_pages, p.has_more, p.offset()), (3, true, 10));
        assert!(!Pagination::new(3, 10, 25).has_more);
        assert!(!Pagination::new(9, 10, 25).has_more);
        assert_eq!(Pagination::new(1, 1, 1).total_pages, 1);
    }
}
