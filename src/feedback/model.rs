//! A rating's rules, pure.

use serde_json::{Map, Value};

use crate::http::error::ApiError;
use crate::http::validate::{chars, Chars, Fields};

pub const COMMENT: Chars = chars(1, 2000);
/// The latest comments a report lists.
pub const REPORT_COMMENTS: u64 = 20;

/// `{rating: 1 | -1, comment?}`.
pub fn parse(body: &Map<String, Value>) -> Result<(i8, Option<String>), ApiError> {
    let mut f = Fields::new(body);
    let rating = match body.get("rating") {
        Some(v) if v == 1 || v == -1 => v.as_i64().map(|r| r as i8),
        _ => {
            f.fail("rating", "must be 1 (helpful) or -1 (not helpful)");
            None
        }
    };
    let comment = f.opt_string("comment", COMMENT);
    f.finish()?;
    Ok((Fields::checked(rating)?, comment))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p(v: Value) -> Result<(i8, Option<String>), ApiError> {
        parse(v.as_object().unwrap())
    }

    #[test]
    fn a_rating_is_one_or_minus_one_with_an_optional_comment() {
        assert_eq!(p(json!({"rating": 1})).unwrap(), (1, None));
        assert_eq!(
            p(json!({"rating": -1, "comment": " Sai số liệu "})).unwrap(),
            (-1, Some("Sai số liệu".into()))
        );
        for bad in [
            json!({}),
            json!({"rating": 0}),
            json!({"rating": "1"}),
            json!({"rating": 1.5}),
        ] {
            assert!(matches!(p(bad), Err(ApiError::Validation(f)) if f.contains_key("rating")));
        }
        let long = json!({"rating": 1, "comment": "x".repeat(2001)});
        assert!(matches!(p(long), Err(ApiError::Validation(f)) if f.contains_key("comment")));
    }
}
