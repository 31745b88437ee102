//! The one error type of the API. Every failure a handler can meet ends up here, and
//! `envelope::error_body` is the one place it becomes the JSON error envelope.

use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

use crate::auth::credentials::Scope;

/// Field name -> reason, reported together so a client can fix every field at once.
pub type FieldErrors = BTreeMap<String, String>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitReason {
    Hourly,
    Burst,
    /// Too many failed API-key attempts from one client IP.
    AuthFailures,
    /// Too many failed logins for one email.
    LoginFailures,
    /// Too many registrations from one client IP (an IPv6 /64) today.
    Signups,
    /// A generation already streams to its most readers.
    Readers,
}

impl LimitReason {
    pub fn as_str(self) -> &'static str {
        match self {
            LimitReason::Hourly => "hourly",
            LimitReason::Burst => "burst",
            LimitReason::AuthFailures => "auth_failures",
            LimitReason::LoginFailures => "login_failures",
            LimitReason::Signups => "signups",
            LimitReason::Readers => "readers",
        }
    }
}

/// The error table: each variant of `ApiError` once, with its status, its code (the `error`
/// field of the envelope), its message and its `details`. The macro writes the enum, the four
/// accessors and `ERROR_CODES` from it, so a new error is one row.
macro_rules! api_errors {
    ($(
        $(#[$meta:meta])*
        $variant:ident
            $( ( $tname:ident : $tty:ty ) )?
            $( { $($fname:ident : $fty:ty),* $(,)? } )?
        => $status:literal, $code:literal, $message:expr $(, $details:expr)?;
    )*) => {
        #[derive(Debug, Clone, PartialEq)]
        pub enum ApiError {
            $(
                $(#[$meta])*
                $variant $( ($tty) )? $( { $($fname: $fty),* } )?,
            )*
            /// An error remembered under an `Idempotency-Key`, answered again as it was.
            Remembered {
                status: u16,
                code: String,
                message: String,
                details: Value,
            },
        }

        /// All error codes, as the `error` field of the error envelope names them.
        pub const ERROR_CODES: &[&str] = &[$($code),*];

        impl ApiError {
            pub fn status(&self) -> u16 {
                match self {
                    $( ApiError::$variant { .. } => $status, )*
                    ApiError::Remembered { status, .. } => *status,
                }
            }

            pub fn code(&self) -> &'static str {
                match self {
                    $( ApiError::$variant { .. } => $code, )*
                    // Codes are a closed set; a remembered one is always one of them.
                    ApiError::Remembered { code, .. } => ERROR_CODES
                        .iter()
                        .find(|c| **c == code.as_str())
                        .copied()
                        .unwrap_or("INTERNAL_ERROR"),
                }
            }

            #[allow(unused_variables)]
            pub fn message(&self) -> String {
                match self {
                    $( ApiError::$variant $( ($tname) )? $( { $($fname),* } )? => {
                        String::from($message)
                    } )*
                    ApiError::Remembered { message, .. } => message.clone(),
                }
            }

            #[allow(unused_variables)]
            pub fn details(&self) -> Value {
                match self {
                    $( ApiError::$variant $( ($tname) )? $( { $($fname),* } )? => {
                        or_empty!($($details)?)
                    } )*
                    ApiError::Remembered { details, .. } => details.clone(),
                }
            }
        }
    };
}

/// A row's `details`, or `{}` when the row gives none.
macro_rules! or_empty {
    () => {
        Value::Object(Map::new())
    };
    ($details:expr) => {
        $details
    };
}

api_errors! {
    Validation(fields: FieldErrors) => 400, "VALIDATION_ERROR", validation_message(fields),
        json!({ "fields": fields });
    InvalidJson(why: String) => 400, "INVALID_JSON",
        format!("Request body is not valid JSON: {why}");
    Unauthorized => 401, "UNAUTHORIZED",
        "Authentication required: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'";
    InvalidApiKeyFormat => 401, "INVALID_API_KEY_FORMAT", "Invalid API key format";
    InvalidApiKey => 401, "INVALID_API_KEY", "Invalid API key";
    ApiKeyExpired => 401, "API_KEY_EXPIRED", "API key has expired";
    InvalidToken => 401, "INVALID_TOKEN", "Invalid or expired token";
    ClientTokenExpired => 401, "CLIENT_TOKEN_EXPIRED",
        "This client token has expired; ask your app's server for a new one";
    InvalidCredentials => 401, "INVALID_CREDENTIALS", "Invalid email or password";
    InsufficientScope { required: Scope, granted: Scope } => 403, "INSUFFICIENT_SCOPE",
        format!("This endpoint requires the '{}' scope", required.as_str()),
        json!({ "required": required.as_str(), "granted": granted.as_str() });
    Forbidden(why: &'static str) => 403, "FORBIDDEN", *why;
    NotFound(what: &'static str) => 404, "NOT_FOUND", format!("{what} not found");
    MethodNotAllowed { allow: Vec<&'static str> } => 405, "METHOD_NOT_ALLOWED",
        format!("Method not allowed; this path accepts {}", allow.join(", ")),
        json!({ "allow": allow });
    Conflict(why: String) => 409, "CONFLICT", why.as_str();
    PayloadTooLarge { limit: usize } => 413, "PAYLOAD_TOO_LARGE",
        format!("Request body exceeds {limit} bytes"), json!({ "limit": limit });
    UnsupportedMediaType => 415, "UNSUPPORTED_MEDIA_TYPE", "Request body must be application/json";
    RateLimited { reason: LimitReason, retry_after: u64, limit: u64 } => 429, "RATE_LIMIT_EXCEEDED",
        format!("Rate limit exceeded ({} limit); retry after {retry_after} s", reason.as_str()),
        json!({ "reason": reason.as_str(), "retryAfter": retry_after, "limit": limit });
    /// The string is for the log line only; clients see a generic message.
    Internal(detail: String) => 500, "INTERNAL_ERROR",
        "An internal error occurred; quote the request id when reporting it";
    Upstream(detail: String) => 502, "UPSTREAM_ERROR", "The model provider returned an error";
    UpstreamTimeout => 504, "UPSTREAM_TIMEOUT", "The model provider did not answer in time";
    /// A reply is being generated in this conversation; `message_id` is the running one.
    ConversationBusy { message_id: String } => 409, "CONVERSATION_BUSY",
        "A reply is still being generated in this conversation; wait for it to finish or cancel it",
        json!({ "messageId": message_id });
    /// The conversation's object restarted mid-generation (a stream `error` event only).
    GenerationInterrupted => 503, "GENERATION_INTERRUPTED",
        "The reply was interrupted by a restart; the text so far is stored";
    /// The first request with this `Idempotency-Key` is still running.
    IdempotencyKeyInUse => 409, "IDEMPOTENCY_KEY_IN_USE",
        "A request with this Idempotency-Key is still being processed; retry shortly";
    /// This `Idempotency-Key` was used for a different request.
    IdempotencyKeyReused => 422, "IDEMPOTENCY_KEY_REUSED",
        "This Idempotency-Key was already used for a different request";
    /// The account has its most active API keys.
    ApiKeyLimitReached { limit: u64 } => 409, "API_KEY_LIMIT_REACHED",
        format!("This account has {limit} active API keys, the most allowed; revoke one first"),
        json!({ "limit": limit });
    /// The account's generations running at once are at their limit.
    ConcurrencyLimitExceeded { limit: u64, retry_after: u64 } => 429, "CONCURRENCY_LIMIT_EXCEEDED",
        format!("This account already has {limit} replies being generated; retry when one ends"),
        json!({ "limit": limit, "retryAfter": retry_after });
    /// The account used its tokens for this UTC day.
    EndUserLimitExceeded { which: &'static str, limit: u64, window_secs: u64, retry_after: u64 } => 429, "END_USER_LIMIT_EXCEEDED",
        format!("This end user has reached this key's limit ({which}: {limit}); retry after {retry_after} s"),
        json!({ "limit": which, "value": limit, "retryAfter": retry_after });
    TokenQuotaExceeded { limit: u64, retry_after: u64 } => 429, "TOKEN_QUOTA_EXCEEDED",
        format!("This account used its {limit} tokens for today (UTC); the quota resets at midnight UTC"),
        json!({ "limit": limit, "retryAfter": retry_after });
}

fn validation_message(fields: &FieldErrors) -> String {
    match fields.iter().next() {
        Some((name, reason)) if fields.len() == 1 => format!("Validation failed: {name} {reason}"),
        _ => format!("Validation failed for {} fields", fields.len()),
    }
}

/// Why a database statement failed, read once from what the database said: a write refused
/// by a UNIQUE constraint (the only failure callers turn into something else, a 409) or any
/// other failure (a 500 through `From`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// `columns` as SQLite names them: `twins.owner_id, twins.slug`.
    Unique {
        columns: String,
    },
    Failed(String),
    /// A list page would skip more than `validate::MAX_OFFSET` existing rows.
    PageTooDeep,
    /// A cursor (`startingAfter`/`endingBefore`, named here) is no item of the list.
    UnknownCursor(&'static str),
}

impl StoreError {
    /// Reads SQLite's message as D1 passes it on (`… UNIQUE constraint failed: t.a, t.b: …`).
    pub fn from_message(message: &str) -> StoreError {
        const UNIQUE: &str = "UNIQUE constraint failed: ";
        match message.find(UNIQUE) {
            Some(i) => {
                let rest = &message[i + UNIQUE.len()..];
                let end = rest.find(": ").unwrap_or(rest.len());
                StoreError::Unique {
                    columns: rest[..end].trim().to_owned(),
                }
            }
            None => StoreError::Failed(message.to_owned()),
        }
    }

    /// Whether a UNIQUE constraint on `column` (`table.column`) refused the write.
    pub fn is_unique_on(&self, column: &str) -> bool {
        matches!(self, StoreError::Unique { columns } if columns.split(", ").any(|c| c == column))
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::PageTooDeep => crate::http::validate::page_too_deep(),
            StoreError::UnknownCursor(field) => {
                ApiError::field(field, crate::http::cursor::CURSOR_RULE)
            }
            e => ApiError::internal(format!("d1: {e:?}")),
        }
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> StoreError {
        StoreError::Failed(format!("row shape: {e}"))
    }
}

impl ApiError {
    pub fn field(name: &str, reason: &str) -> Self {
        let mut fields = FieldErrors::new();
        fields.insert(name.to_owned(), reason.to_owned());
        ApiError::Validation(fields)
    }

    pub fn internal(detail: impl std::fmt::Display) -> Self {
        ApiError::Internal(detail.to_string())
    }

    /// What the log line may say beyond the code: never secrets, never message text.
    pub fn log_detail(&self) -> Option<&str> {
        match self {
            ApiError::Internal(d) | ApiError::Upstream(d) => Some(d),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_violations_are_read_from_the_database_message() {
        let e = StoreError::from_message(
            "D1_ERROR: UNIQUE constraint failed: twins.owner_id, twins.slug: SQLITE_CONSTRAINT",
        );
        assert!(e.is_unique_on("twins.slug") && e.is_unique_on("twins.owner_id"));
        assert!(!e.is_unique_on("users.email"));
        assert_eq!(
            StoreError::from_message("no such table: x"),
            StoreError::Failed("no such table: x".into())
        );
        assert_eq!(ApiError::from(e).status(), 500);
    }

    #[test]
    fn internal_errors_never_expose_their_detail() {
        let err = ApiError::internal("D1_ERROR: no such table: users");
        assert_eq!(err.status(), 500);
        assert!(!err.message().contains("users"));
        assert_eq!(err.log_detail(), Some("D1_ERROR: no such table: users"));
    }

    #[test]
    fn validation_details_name_every_field() {
        let mut fields = FieldErrors::new();
        fields.insert("email".into(), "is required".into());
        fields.insert("password".into(), "must be at least 10 characters".into());
        let err = ApiError::Validation(fields);
        assert_eq!(err.details()["fields"]["email"], "is required");
        assert_eq!(
            err.details()["fields"]["password"],
            "must be at least 10 characters"
        );
        assert_eq!(err.code(), "VALIDATION_ERROR");
    }

    #[test]
    fn rate_limit_details_match_the_spec() {
        let err = ApiError::RateLimited {
            reason: LimitReason::Burst,
            retry_after: 2,
            limit: 50,
        };
        assert_eq!(
            err.details(),
            json!({"reason": "burst", "retryAfter": 2, "limit": 50})
        );
        assert_eq!(err.status(), 429);
    }

    #[test]
    fn every_code_is_named_once() {
        let mut codes = ERROR_CODES.to_vec();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), ERROR_CODES.len());
        assert_eq!(ApiError::NotFound("Twin").message(), "Twin not found");
        assert_eq!(ApiError::Unauthorized.details(), json!({}));
        let remembered = ApiError::Remembered {
            status: 409,
            code: "CONFLICT".into(),
            message: "m".into(),
            details: json!({}),
        };
        assert_eq!((remembered.status(), remembered.code()), (409, "CONFLICT"));
    }

    #[test]
    fn seed_example_message_is_exact() {
        assert_eq!(
            ApiError::InvalidApiKeyFormat.message(),
            "Invalid API key format"
        );
    }
}
