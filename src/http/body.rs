//! Request body rules: size, media type, JSON syntax, object shape.

use serde_json::{Map, Value};

use crate::http::error::ApiError;

pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// `Content-Length` is checked before the body is read, the real length after.
pub fn check_length(len: usize) -> Result<(), ApiError> {
    if len > MAX_BODY_BYTES {
        return Err(ApiError::PayloadTooLarge {
            limit: MAX_BODY_BYTES,
        });
    }
    Ok(())
}

pub fn is_json_media_type(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Parses a body into a JSON object. An empty body counts as `{}` (a POST whose fields are
/// all optional may omit it; required fields then fail validation by name).
pub fn parse_object(
    content_type: Option<&str>,
    bytes: &[u8],
) -> Result<Map<String, Value>, ApiError> {
    check_length(bytes.len())?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    if !content_type.is_some_and(is_json_media_type) {
        return Err(ApiError::UnsupportedMediaType);
    }
    let value: Value =
        serde_json::from_slice(bytes).map_err(|e| ApiError::InvalidJson(describe(&e)))?;
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(ApiError::field("body", "must be a JSON object")),
    }
}

fn describe(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let what = match e.classify() {
        Category::Eof => "unexpected end of input",
        Category::Syntax => "syntax error",
        Category::Data => "invalid data",
        Category::Io => "unreadable body",
    };
    format!("{what} at line {} column {}", e.line(), e.column())
}

#[cfg(test)]
mod tests {
    use super::*;

    const JSON: Option<&str> = Some("application/json; charset=utf-8");

    #[test]
    fn accepts_objects() {
        let map = parse_object(JSON, br#"{"name":"Lan","x":1}"#).unwrap();
        assert_eq!(map["name"], "Lan");
    }

    #[test]
    fn empty_body_is_an_empty_object_even_without_content_type() {
        assert!(parse_object(None, b"").unwrap().is_empty());
        assert!(parse_object(None, b"  \n").unwrap().is_empty());
    }

    #[test]
    fn malformed_json_is_invalid_json() {
        let err = parse_object(JSON, b"{\"name\": ").unwrap_err();
        assert_eq!(err.code(), "INVALID_JSON");
        assert!(err.message().contains("line 1"));
    }

    #[test]
    fn wrong_media_type_is_415() {
        assert_eq!(
            parse_object(Some("text/plain"), b"{}")
                .unwrap_err()
                .status(),
            415
        );
        assert_eq!(parse_object(None, b"{}").unwrap_err().status(), 415);
        assert!(parse_object(Some("application/merge-patch+json"), b"{}").is_ok());
    }

    #[test]
    fn non_objects_are_validation_errors() {
        assert_eq!(
            parse_object(JSON, b"[1,2]").unwrap_err().code(),
            "VALIDATION_ERROR"
        );
    }

    #[test]
    fn oversized_is_413() {
        let big = vec![b' '; MAX_BODY_BYTES + 1];
        assert_eq!(parse_object(JSON, &big).unwrap_err().status(), 413);
        assert!(check_length(MAX_BODY_BYTES).is_ok());
    }
}
