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

/// A list page's `meta.pagination`. A page read by number has `page` and `totalPages`; a page
/// read from a cursor (`startingAfter`, `endingBefore`) has neither.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Pagination {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page: Option<u64>,
    pub limit: u64,
    pub total: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_pages: Option<u64>,
    pub has_more: bool,
    /// The id to pass for the next page — as `startingAfter`, or as `endingBefore` when this
    /// page was read with it; `null` when there is none.
    pub next_cursor: Option<String>,
}

impl Pagination {
    /// Page `page` of `limit` out of `total`; `last_id`: the page's last item.
    pub fn numbered(page: u64, limit: u64, total: u64, last_id: Option<String>) -> Self {
        let total_pages = total.div_ceil(limit.max(1));
        let has_more = page < total_pages;
        Pagination {
            page: Some(page),
            limit,
            total,
            total_pages: Some(total_pages),
            has_more,
            next_cursor: last_id.filter(|_| has_more),
        }
    }

    /// A cursor page; `next`: its item at the far end in the cursor's direction.
    pub fn cursor(limit: u64, total: u64, has_more: bool, next: Option<String>) -> Self {
        Pagination {
            page: None,
            limit,
            total,
            total_pages: None,
            has_more,
            next_cursor: next.filter(|_| has_more),
        }
    }

    /// How many items page `page` of `limit` skips.
    pub fn offset(page: u64, limit: u64) -> u64 {
        // Saturating: `page` may be as large as a client likes (past the end is an empty page).
        page.saturating_sub(1).saturating_mul(limit)
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
            ExtraMeta::Pagination(Pagination::numbered(1, 20, 0, None)),
            &META,
        );
        assert_eq!(body["success"], true);
        assert_eq!(body["meta"]["pagination"]["totalPages"], 0);
        assert_eq!(body["meta"]["pagination"]["hasMore"], false);
        assert!(body["meta"]["pagination"]["nextCursor"].is_null());
        let cursor = json!(Pagination::cursor(2, 5, true, Some("twn_2".into())));
        assert_eq!(cursor["nextCursor"], "twn_2");
        assert!(cursor.get("page").is_none() && cursor.get("totalPages").is_none());
    }

    #[test]
    fn pagination_arithmetic() {
        let p = Pagination::numbered(2, 10, 25, Some("c_20".into()));
        assert_eq!((p.total_pages, p.has_more), (Some(3), true));
        assert_eq!(Pagination::offset(2, 10), 10);
        assert_eq!(p.next_cursor.as_deref(), Some("c_20"));
        let last = Pagination::numbered(3, 10, 25, Some("c_25".into()));
        assert!(!last.has_more && last.next_cursor.is_none());
        assert!(!Pagination::numbered(9, 10, 25, None).has_more);
        assert_eq!(Pagination::numbered(1, 1, 1, None).total_pages, Some(1));
    }
}
