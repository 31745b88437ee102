//! The one error type of the API. Every failure a handler can meet ends up here, and
//! `envelope::error_body` is the one place it becomes the JSON error envelope.

use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

use crate::auth::credentials::Scope;

/// All error codes, as the `error` field of the error envelope names them.
pub const ERROR_CODES: &[&str] = &[
    "VALIDATION_ERROR",
    "INVALID_JSON",
    "UNAUTHORIZED",
    "INVALID_API_KEY_FORMAT",
    "INVALID_API_KEY",
    "API_KEY_EXPIRED",
    "INVALID_TOKEN",
    "INVALID_CREDENTIALS",
    "INSUFFICIENT_SCOPE",
    "FORBIDDEN",
    "NOT_FOUND",
    "METHOD_NOT_ALLOWED",
    "CONFLICT",
    "PAYLOAD_TOO_LARGE",
    "UNSUPPORTED_MEDIA_TYPE",
    "RATE_LIMIT_EXCEEDED",
    "INTERNAL_ERROR",
    "UPSTREAM_ERROR",
    "UPSTREAM_TIMEOUT",
    "CONVERSATION_BUSY",
    "GENERATION_INTERRUPTED",
    "IDEMPOTENCY_KEY_IN_USE",
    "IDEMPOTENCY_KEY_REUSED",
    "API_KEY_LIMIT_REACHED",
    "CONCURRENCY_LIMIT_EXCEEDED",
    "TOKEN_QUOTA_EXCEEDED",
];

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

#[derive(Debug, Clone, PartialEq)]
pub enum ApiError {
    Validation(FieldErrors),
    InvalidJson(String),
    Unauthorized,
    InvalidApiKeyFormat,
    InvalidApiKey,
    ApiKeyExpired,
    InvalidToken,
    InvalidCredentials,
    InsufficientScope {
        required: Scope,
        granted: Scope,
    },
    Forbidden(&'static str),
    NotFound(&'static str),
    MethodNotAllowed {
        allow: Vec<&'static str>,
    },
    Conflict(String),
    /// A reply is being generated in this conversation; `message_id` is the running one.
    ConversationBusy {
        message_id: String,
    },
    PayloadTooLarge {
        limit: usize,
    },
    UnsupportedMediaType,
    RateLimited {
        reason: LimitReason,
        retry_after: u64,
        limit: u64,
    },
    /// The string is for the log line only; clients see a generic message.
    Internal(String),
    Upstream(String),
    UpstreamTimeout,
    /// The conversation's object restarted mid-generation (a stream `error` event only).
    GenerationInterrupted,
    /// The first request with this `Idempotency-Key` is still running.
    IdempotencyKeyInUse,
    /// This `Idempotency-Key` was used for a different request.
    IdempotencyKeyReused,
    /// The account has its most active API keys.
    ApiKeyLimitReached {
        limit: u64,
    },
    /// The account's generations running at once are at their limit.
    ConcurrencyLimitExceeded {
        limit: u64,
        retry_after: u64,
    },
    /// The account used its tokens for this UTC day.
    TokenQuotaExceeded {
        limit: u64,
        retry_after: u64,
    },
    /// An error remembered under an `Idempotency-Key`, answered again as it was.
    Remembered {
        status: u16,
        code: String,
        message: String,
        details: Value,
    },
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

    pub fn status(&self) -> u16 {
        use ApiError::*;
        match self {
            Validation(_) | InvalidJson(_) => 400,
            Unauthorized | InvalidApiKeyFormat | InvalidApiKey | ApiKeyExpired | InvalidToken
            | InvalidCredentials => 401,
            InsufficientScope { .. } | Forbidden(_) => 403,
            NotFound(_) => 404,
            MethodNotAllowed { .. } => 405,
            Conflict(_)
            | ConversationBusy { .. }
            | IdempotencyKeyInUse
            | ApiKeyLimitReached { .. } => 409,
            ConcurrencyLimitExceeded { .. } | TokenQuotaExceeded { .. } => 429,
            IdempotencyKeyReused => 422,
            Remembered { status, .. } => *status,
            PayloadTooLarge { .. } => 413,
            UnsupportedMediaType => 415,
            RateLimited { .. } => 429,
            Internal(_) => 500,
            Upstream(_) => 502,
            UpstreamTimeout => 504,
            GenerationInterrupted => 503,
        }
    }

    pub fn code(&self) -> &'static str {
        use ApiError::*;
        match self {
            Validation(_) => "VALIDATION_ERROR",
            InvalidJson(_) => "INVALID_JSON",
            Unauthorized => "UNAUTHORIZED",
            InvalidApiKeyFormat => "INVALID_API_KEY_FORMAT",
            InvalidApiKey => "INVALID_API_KEY",
            ApiKeyExpired => "API_KEY_EXPIRED",
            InvalidToken => "INVALID_TOKEN",
            InvalidCredentials => "INVALID_CREDENTIALS",
            InsufficientScope { .. } => "INSUFFICIENT_SCOPE",
            Forbidden(_) => "FORBIDDEN",
            NotFound(_) => "NOT_FOUND",
            MethodNotAllowed { .. } => "METHOD_NOT_ALLOWED",
            Conflict(_) => "CONFLICT",
            ConversationBusy { .. } => "CONVERSATION_BUSY",
            PayloadTooLarge { .. } => "PAYLOAD_TOO_LARGE",
            UnsupportedMediaType => "UNSUPPORTED_MEDIA_TYPE",
            RateLimited { .. } => "RATE_LIMIT_EXCEEDED",
            Internal(_) => "INTERNAL_ERROR",
            Upstream(_) => "UPSTREAM_ERROR",
            UpstreamTimeout => "UPSTREAM_TIMEOUT",
            GenerationInterrupted => "GENERATION_INTERRUPTED",
            IdempotencyKeyInUse => "IDEMPOTENCY_KEY_IN_USE",
            IdempotencyKeyReused => "IDEMPOTENCY_KEY_REUSED",
            ApiKeyLimitReached { .. } => "API_KEY_LIMIT_REACHED",
            ConcurrencyLimitExceeded { .. } => "CONCURRENCY_LIMIT_EXCEEDED",
            TokenQuotaExceeded { .. } => "TOKEN_QUOTA_EXCEEDED",
            // Codes are a closed set; a remembered one is always one of them.
            Remembered { code, .. } => ERROR_CODES
                .iter()
                .find(|c| **c == code.as_str())
                .copied()
                .unwrap_or("INTERNAL_ERROR"),
        }
    }

    pub fn message(&self) -> String {
        use ApiError::*;
        match self {
            Validation(fields) if fields.len() == 1 => {
                let (name, reason) = fields.iter().next().expect("one field");
                format!("Validation failed: {name} {reason}")
            }
            Validation(fields) => format!("Validation failed for {} fields", fields.len()),
            InvalidJson(why) => format!("Request body is not valid JSON: {why}"),
            Unauthorized => {
                "Authentication required: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'"
                    .into()
            }
            InvalidApiKeyFormat => "Invalid API key format".into(),
            InvalidApiKey => "Invalid API key".into(),
            ApiKeyExpired => "API key has expired".into(),
            InvalidToken => "Invalid or expired token".into(),
            InvalidCredentials => "Invalid email or password".into(),
            InsufficientScope { required, .. } => {
                format!("This endpoint requires the '{}' scope", required.as_str())
            }
            Forbidden(why) => (*why).into(),
            NotFound(what) => format!("{what} not found"),
            MethodNotAllowed { allow } => {
                format!("Method not allowed; this path accepts {}", allow.join(", "))
            }
            Conflict(why) => why.clone(),
            ConversationBusy { .. } => {
                "A reply is still being generated in this conversation; wait for it to finish or cancel it"
                    .into()
            }
            PayloadTooLarge { .. }
            | RateLimited { .. }
            | ApiKeyLimitReached { .. }
            | ConcurrencyLimitExceeded { .. }
            | TokenQuotaExceeded { .. } => self.limit_message(),
            UnsupportedMediaType => "Request body must be application/json".into(),
            Internal(_) => {
                "An internal error occurred; quote the request id when reporting it".into()
            }
            Upstream(_) => "The model provider returned an error".into(),
            UpstreamTimeout => "The model provider did not answer in time".into(),
            GenerationInterrupted => {
                "The reply was interrupted by a restart; the text so far is stored".into()
            }
            IdempotencyKeyInUse => {
                "A request with this Idempotency-Key is still being processed; retry shortly".into()
            }
            IdempotencyKeyReused => {
                "This Idempotency-Key was already used for a different request".into()
            }
            Remembered { message, .. } => message.clone(),
        }
    }

    /// The message of a refusal for a limit.
    fn limit_message(&self) -> String {
        use ApiError::*;
        match self {
            PayloadTooLarge { limit } => format!("Request body exceeds {limit} bytes"),
            RateLimited {
                reason,
                retry_after,
                ..
            } => format!(
                "Rate limit exceeded ({} limit); retry after {retry_after} s",
                reason.as_str()
            ),
            ApiKeyLimitReached { limit } => format!(
                "This account has {limit} active API keys, the most allowed; revoke one first"
            ),
            ConcurrencyLimitExceeded { limit, .. } => format!(
                "This account already has {limit} replies being generated; retry when one ends"
            ),
            TokenQuotaExceeded { limit, .. } => format!(
                "This account used its {limit} tokens for today (UTC); the quota resets at midnight UTC"
            ),
            _ => String::new(),
        }
    }

    pub fn details(&self) -> Value {
        use ApiError::*;
        match self {
            Validation(fields) => json!({ "fields": fields }),
            InsufficientScope { required, granted } => {
                json!({ "required": required.as_str(), "granted": granted.as_str() })
            }
            MethodNotAllowed { allow } => json!({ "allow": allow }),
            PayloadTooLarge { limit } => json!({ "limit": limit }),
            ConversationBusy { message_id } => json!({ "messageId": message_id }),
            Remembered { details, .. } => details.clone(),
            ApiKeyLimitReached { limit } => json!({ "limit": limit }),
            ConcurrencyLimitExceeded { limit, retry_after }
            | TokenQuotaExceeded { limit, retry_after } => {
                json!({ "limit": limit, "retryAfter": retry_after })
            }
            RateLimited {
                reason,
                retry_after,
                limit,
            } => {
                json!({ "reason": reason.as_str(), "retryAfter": retry_after, "limit": limit })
            }
            _ => Value::Object(Map::new()),
        }
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
    fn seed_example_message_is_exact() {
        assert_eq!(
            ApiError::InvalidApiKeyFormat.message(),
            "Invalid API key format"
        );
    }
}
