//! Field validation that collects every fault, so one 400 names every bad field.

use serde_json::{Map, Value};

use crate::http::error::{ApiError, FieldErrors};

/// A field's length in characters, from `min` to `max`: each field's one constant, read by
/// its validation and by its OpenAPI schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chars {
    pub min: usize,
    pub max: usize,
}

pub const fn chars(min: usize, max: usize) -> Chars {
    Chars { min, max }
}

pub struct Fields<'a> {
    obj: &'a Map<String, Value>,
    errors: FieldErrors,
}

impl<'a> Fields<'a> {
    pub fn new(obj: &'a Map<String, Value>) -> Self {
        Fields {
            obj,
            errors: FieldErrors::new(),
        }
    }

    pub fn fail(&mut self, name: &str, reason: impl Into<String>) {
        self.errors
            .entry(name.to_owned())
            .or_insert_with(|| reason.into());
    }

    fn present(&self, name: &str) -> Option<&'a Value> {
        self.obj.get(name).filter(|v| !v.is_null())
    }

    /// A string of `min..=max` characters (counted as Unicode scalar values, so Vietnamese
    /// text is measured as people read it). Leading/trailing whitespace is trimmed.
    pub fn string(&mut self, name: &str, len: Chars) -> Option<String> {
        let v = self.opt_string(name, len);
        if v.is_none() && self.present(name).is_none() {
            self.fail(name, "is required");
        }
        v
    }

    pub fn opt_string(&mut self, name: &str, len: Chars) -> Option<String> {
        let value = self.present(name)?;
        let Some(s) = value.as_str() else {
            self.fail(name, "must be a string");
            return None;
        };
        let s = s.trim();
        if s.contains('\0') {
            // SQLite's text functions (and its CHECKs on length) stop at a NUL.
            self.fail(name, "must not contain NUL characters");
            return None;
        }
        self.within(name, s, len)
    }

    /// `s` if it has `min..=max` characters; else the reason is recorded.
    fn within(&mut self, name: &str, s: &str, Chars { min, max }: Chars) -> Option<String> {
        let len = s.chars().count();
        let reason = if len < min && min == 1 {
            "must not be empty".to_owned()
        } else if len < min {
            format!("must be at least {min} characters")
        } else if len > max {
            format!("must be at most {max} characters")
        } else {
            return Some(s.to_owned());
        };
        self.fail(name, reason);
        None
    }

    /// Like `string` but kept byte-exact (passwords, message content).
    pub fn raw_string(&mut self, name: &str, len: Chars) -> Option<String> {
        let Some(value) = self.present(name) else {
            self.fail(name, "is required");
            return None;
        };
        let Some(s) = value.as_str() else {
            self.fail(name, "must be a string");
            return None;
        };
        self.within(name, s, len)
    }

    pub fn one_of(&mut self, name: &str, allowed: &[&str]) -> Option<String> {
        let value = self.present(name)?;
        match value.as_str() {
            Some(s) if allowed.contains(&s) => Some(s.to_owned()),
            _ => {
                self.fail(name, format!("must be one of: {}", allowed.join(", ")));
                None
            }
        }
    }

    pub fn opt_int(&mut self, name: &str, min: i64, max: i64) -> Option<i64> {
        let value = self.present(name)?;
        match value.as_i64() {
            Some(n) if (min..=max).contains(&n) => Some(n),
            _ => {
                self.fail(name, format!("must be an integer from {min} to {max}"));
                None
            }
        }
    }

    pub fn email(&mut self, name: &str) -> Option<String> {
        let raw = self.string(name, chars(3, 254))?;
        if is_email(&raw) {
            Some(raw.to_lowercase())
        } else {
            self.fail(name, "must be a valid email address");
            None
        }
    }

    /// A field `finish` has vouched for: a required one that validated is there. `None` here
    /// would be a bug in the input type, answered as a 500, never a panic.
    pub fn checked<T>(value: Option<T>) -> Result<T, ApiError> {
        value.ok_or_else(|| ApiError::internal("a validated field is missing"))
    }

    pub fn finish(self) -> Result<(), ApiError> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Validation(self.errors))
        }
    }
}

/// Deliberately simple: one `@`, a non-empty local part, a dotted domain, no spaces.
fn is_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !s.chars().any(char::is_whitespace)
}

/// Parses one query parameter as an integer in range; `None` value means absent.
pub fn query_int(
    errors: &mut FieldErrors,
    name: &str,
    raw: Option<&str>,
    default: i64,
    min: i64,
    max: i64,
) -> i64 {
    match raw {
        None => default,
        Some(s) => match s.parse::<i64>() {
            Ok(n) if (min..=max).contains(&n) => n,
            _ => {
                errors.insert(
                    name.to_owned(),
                    format!("must be an integer from {min} to {max}"),
                );
                default
            }
        },
    }
}

/// The most rows a page may skip: deeper pages cost an OFFSET scan of every row before them,
/// so a deep page over rows that exist is refused (filters narrow a list instead). A page past
/// the end is answered from the count alone, however large `page` is.
pub const MAX_OFFSET: u64 = 10_000;

/// `page` (>= 1) and `limit` (1..=100, default 20) of a list request.
pub fn page_params(page: Option<&str>, limit: Option<&str>) -> Result<(u64, u64), ApiError> {
    let mut errors = FieldErrors::new();
    let page = query_int(&mut errors, "page", page, 1, 1, i64::MAX);
    let limit = query_int(&mut errors, "limit", limit, 20, 1, 100);
    if errors.is_empty() {
        Ok((page as u64, limit as u64))
    } else {
        Err(ApiError::Validation(errors))
    }
}

pub fn page_too_deep() -> ApiError {
    ApiError::field(
        "page",
        &format!("is too deep: at most {MAX_OFFSET} items can be skipped; narrow the list with its filters"),
    )
}

/// Whether a page that skips `offset` of `total` rows may be read: `Ok(false)` when it is past
/// the end (an empty page, no scan), an error naming `page` when it would skip too many rows.
pub fn page_depth(offset: u64, total: u64) -> Result<bool, ApiError> {
    if offset >= total {
        Ok(false)
    } else if offset > MAX_OFFSET {
        Err(page_too_deep())
    } else {
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deep_pages_over_rows_are_refused_and_pages_past_the_end_are_empty() {
        assert_eq!(page_params(Some("101"), Some("100")).unwrap(), (101, 100));
        let huge = i64::MAX.to_string();
        assert_eq!(page_params(Some(&huge), None).unwrap().0, i64::MAX as u64);
        assert!(page_params(Some("0"), None).is_err());
        assert!(page_depth(10_000, 20_000).unwrap());
        let err = page_depth(10_100, 20_000).unwrap_err();
        assert!(err.details()["fields"]["page"]
            .as_str()
            .unwrap()
            .contains("too deep"));
        assert!(!page_depth(20_000, 20_000).unwrap());
        assert!(!page_depth(u64::MAX, 5).unwrap());
    }

    #[test]
    fn nul_characters_are_refused_in_text_fields() {
        let obj = serde_json::json!({"title": "a\u{0}b"});
        let mut f = Fields::new(obj.as_object().unwrap());
        assert_eq!(f.opt_string("title", chars(1, 200)), None);
        let err = f.finish().unwrap_err();
        assert_eq!(
            err.details()["fields"]["title"],
            "must not contain NUL characters"
        );
    }
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn collects_every_fault() {
        let o = obj(json!({"name": 5, "password": "short", "scope": "root"}));
        let mut f = Fields::new(&o);
        f.string("name", chars(1, 100));
        f.raw_string("password", chars(10, 256));
        f.email("email");
        f.one_of("scope", &["read_only", "full_access"]);
        let ApiError::Validation(errs) = f.finish().unwrap_err() else {
            panic!()
        };
        assert_eq!(errs["name"], "must be a string");
        assert_eq!(errs["password"], "must be at least 10 characters");
        assert_eq!(errs["email"], "is required");
        assert!(errs["scope"].starts_with("must be one of"));
    }

    #[test]
    fn counts_characters_not_bytes() {
        let o = obj(json!({"title": "Xin chào thế giới"}));
        let mut f = Fields::new(&o);
        assert_eq!(
            f.opt_string("title", chars(1, 17)).as_deref(),
            Some("Xin chào thế giới")
        );
        assert!(f.finish().is_ok());
    }

    #[test]
    fn emails_are_lowercased_and_checked() {
        let o = obj(json!({"a": "Lan@Example.COM", "b": "nope", "c": "x@y"}));
        let mut f = Fields::new(&o);
        assert_eq!(f.email("a").as_deref(), Some("lan@example.com"));
        assert_eq!(f.email("b"), None);
        assert_eq!(f.email("c"), None);
    }

    #[test]
    fn page_params_defaults_and_ranges() {
        assert_eq!(page_params(None, None).unwrap(), (1, 20));
        assert_eq!(page_params(Some("3"), Some("1")).unwrap(), (3, 1));
        let ApiError::Validation(f) = page_params(Some("0"), Some("101")).unwrap_err() else {
            panic!()
        };
        assert!(f.contains_key("page") && f.contains_key("limit"));
    }

    #[test]
    fn query_ints() {
        let mut e = FieldErrors::new();
        assert_eq!(query_int(&mut e, "limit", None, 20, 1, 100), 20);
        assert_eq!(query_int(&mut e, "limit", Some("100"), 20, 1, 100), 100);
        assert!(e.is_empty());
        query_int(&mut e, "limit", Some("101"), 20, 1, 100);
        query_int(&mut e, "page", Some("x"), 1, 1, i64::MAX);
        assert_eq!(e.len(), 2);
    }
}
