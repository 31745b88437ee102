//! `Idempotency-Key` (docs/idempotency.md): the header's rules, the request fingerprint, what a
//! remembered response holds, and which responses are remembered at all.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::http::error::ApiError;

/// How long a key is remembered.
pub const RETENTION_MS: i64 = 24 * 3600 * 1000;
/// A request still `running` after this long is taken to have died: its key may be claimed
/// again (longer than the longest generation, `GENERATION_MAX_SECS` by default).
pub const LEASE_MS: i64 = 10 * 60 * 1000;

pub const HEADER: &str = "Idempotency-Key";

/// The header's value: 1..255 characters from 0x20–0x7E.
pub fn parse_key(value: &str) -> Result<String, ApiError> {
    if value.is_empty() || value.len() > 255 || !value.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
        return Err(ApiError::field(
            HEADER,
            "must be 1 to 255 printable ASCII characters",
        ));
    }
    Ok(value.to_owned())
}

/// JSON with object keys sorted at every level and no whitespace: equal for equal values,
/// whatever order and spacing the client used.
pub fn canonical_json(v: &Value) -> String {
    fn sorted(v: &Value) -> Value {
        match v {
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                let mut out = Map::new();
                for k in keys {
                    out.insert(k.clone(), sorted(&m[k]));
                }
                Value::Object(out)
            }
            Value::Array(a) => Value::Array(a.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    sorted(v).to_string()
}

/// What makes two requests "the same": method, path and the parsed body (no body: `null`).
pub fn fingerprint(method: &str, path: &str, body: Option<&Value>) -> String {
    let text = format!(
        "{method}\n{path}\n{}",
        body.map_or_else(|| "null".to_owned(), canonical_json)
    );
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A remembered response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Remembered {
    /// A JSON success: status and `data` (a new key's plaintext already removed).
    Json { status: u16, data: Value },
    /// JSON outside the envelope (a non-streamed chat completion), as it was sent.
    Plain { status: u16, body: Value },
    /// A JSON error after the work started (5xx).
    Error {
        status: u16,
        code: String,
        message: String,
        details: Value,
    },
    /// A streamed reply: replayed from the conversation's event log.
    #[serde(rename_all = "camelCase")]
    Stream {
        conversation_id: String,
        message_id: String,
    },
}

/// What the claim found.
#[derive(Debug, Clone, PartialEq)]
pub enum Claim {
    /// This request owns the key: run it.
    Fresh,
    Replay(Remembered),
    InUse,
    Reused,
}

/// The state of a key someone else claimed first, as stored.
pub fn decide(fingerprint: &str, stored_fingerprint: &str, response: Option<&str>) -> Claim {
    if fingerprint != stored_fingerprint {
        return Claim::Reused;
    }
    match response.and_then(|r| serde_json::from_str(r).ok()) {
        Some(remembered) => Claim::Replay(remembered),
        None => Claim::InUse,
    }
}

/// Responses refused before any work (every 4xx) leave the key free; 2xx and 5xx are kept.
pub fn remembers(status: u16) -> bool {
    !(400..500).contains(&status)
}

impl Remembered {
    pub fn error(err: &ApiError) -> Remembered {
        Remembered::Error {
            status: err.status(),
            code: err.code().to_owned(),
            message: err.message(),
            details: err.details(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_are_printable_ascii_up_to_255() {
        assert_eq!(parse_key("order-42 retry#1").unwrap(), "order-42 retry#1");
        assert!(parse_key(&"k".repeat(255)).is_ok());
        for bad in ["", "tab\there", "é", "\u{7f}"] {
            let err = parse_key(bad).unwrap_err();
            assert!(err.details()["fields"][HEADER].is_string(), "{bad:?}");
        }
        assert!(parse_key(&"k".repeat(256)).is_err());
    }

    #[test]
    fn fingerprints_ignore_key_order_and_spacing_but_not_values() {
        let a: Value =
            serde_json::from_str(r#"{"b": 1, "a": {"y": [1, {"q": 2, "p": 3}], "x": "Hà"}}"#)
                .unwrap();
        let b: Value =
            serde_json::from_str(r#"{"a":{"x":"Hà","y":[1,{"p":3,"q":2}]},"b":1}"#).unwrap();
        assert_eq!(canonical_json(&a), canonical_json(&b));
        let f = |v: &Value| fingerprint("POST", "/api/v1/twins", Some(v));
        assert_eq!(f(&a), f(&b));
        assert_ne!(f(&a), f(&json!({"b": 2})));
        // Array order is meaning, not formatting.
        assert_ne!(f(&json!({"a": [1, 2]})), f(&json!({"a": [2, 1]})));
        assert_ne!(
            f(&a),
            fingerprint("POST", "/api/v1/conversations", Some(&a))
        );
        assert_ne!(
            fingerprint("POST", "/p", None),
            fingerprint("POST", "/p", Some(&json!({})))
        );
    }

    #[test]
    fn a_claimed_key_replays_waits_or_refuses() {
        let done = serde_json::to_string(&Remembered::Json {
            status: 201,
            data: json!({"id": "x"}),
        })
        .unwrap();
        assert!(matches!(
            decide("f", "f", Some(&done)),
            Claim::Replay(Remembered::Json { status: 201, .. })
        ));
        assert_eq!(decide("f", "f", None), Claim::InUse);
        assert_eq!(decide("f", "g", Some(&done)), Claim::Reused);
        assert_eq!(decide("f", "g", None), Claim::Reused);
    }

    #[test]
    fn only_refusals_leave_the_key_free() {
        for s in [200, 201, 500, 502, 504] {
            assert!(remembers(s), "{s}");
        }
        for s in [400, 401, 403, 404, 409, 413, 415, 422, 429] {
            assert!(!remembers(s), "{s}");
        }
    }

    #[test]
    fn remembered_errors_keep_code_and_details() {
        let r = Remembered::error(&ApiError::Upstream("upstream answered 500".into()));
        let text = serde_json::to_string(&r).unwrap();
        assert!(
            !text.contains("answered 500"),
            "no internal detail is stored: {text}"
        );
        let Remembered::Error { status, code, .. } = serde_json::from_str(&text).unwrap() else {
            panic!()
        };
        assert_eq!((status, code.as_str()), (502, "UPSTREAM_ERROR"));
    }
}
