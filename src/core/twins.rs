//! Twin input: validation of every field and slugs derived from names (Vietnamese included).

use serde_json::{Map, Value};

use super::error::ApiError;
use super::validate::Fields;

pub const VISIBILITIES: &[&str] = &["public", "private"];

/// Fields of a create or update. On update, `None` leaves a field as it is.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct TwinInput {
    pub name: Option<String>,
    pub slug: Option<String>,
    pub headline: Option<String>,
    pub description: Option<String>,
    pub avatar_url: Option<String>,
    pub expertise: Option<Vec<String>>,
    pub language: Option<String>,
    pub greeting: Option<String>,
    pub system_prompt: Option<String>,
    pub visibility: Option<String>,
    pub model: Option<String>,
}

impl TwinInput {
    /// `creating`: `name` and `systemPrompt` are required and a missing slug is derived.
    pub fn parse(obj: &Map<String, Value>, creating: bool) -> Result<TwinInput, ApiError> {
        let mut f = Fields::new(obj);
        let name = if creating {
            f.string("name", 1, 100)
        } else {
            f.opt_string("name", 1, 100)
        };
        let system_prompt = if creating {
            f.string("systemPrompt", 1, 20_000)
        } else {
            f.opt_string("systemPrompt", 1, 20_000)
        };
        let slug = f.opt_string("slug", 1, 100);
        if let Some(s) = &slug {
            if !is_slug(s) {
                f.fail(
                    "slug",
                    "must be lowercase letters, digits and single hyphens",
                );
            }
        }
        let avatar_url = f.opt_string("avatarUrl", 1, 2048);
        if let Some(u) = &avatar_url {
            if !is_http_url(u) {
                f.fail("avatarUrl", "must be an http(s) URL");
            }
        }
        let language = f.opt_string("language", 2, 10);
        if let Some(l) = &language {
            if !l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                f.fail("language", "must be a language tag such as 'en' or 'vi'");
            }
        }
        let expertise = expertise(&mut f, obj);
        let input = TwinInput {
            slug: slug.or_else(|| name.as_deref().filter(|_| creating).map(slugify)),
            name,
            headline: f.opt_text("headline", 200),
            description: f.opt_text("description", 5000),
            avatar_url,
            expertise,
            language,
            greeting: f.opt_text("greeting", 1000),
            system_prompt,
            visibility: f.one_of("visibility", VISIBILITIES),
            model: f.opt_string("model", 1, 100),
        };
        f.finish()?;
        Ok(input)
    }
}

fn expertise(f: &mut Fields, obj: &Map<String, Value>) -> Option<Vec<String>> {
    let value = obj.get("expertise").filter(|v| !v.is_null())?;
    let items = value.as_array().filter(|a| a.len() <= 20).and_then(|a| {
        a.iter()
            .map(|v| {
                v.as_str()
                    .map(str::trim)
                    .filter(|s| (1..=50).contains(&s.chars().count()))
                    .map(str::to_owned)
            })
            .collect::<Option<Vec<_>>>()
    });
    if items.is_none() {
        f.fail(
            "expertise",
            "must be an array of at most 20 strings of 1 to 50 characters",
        );
    }
    items
}

pub fn is_http_url(s: &str) -> bool {
    let rest = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"));
    rest.is_some_and(|r| {
        let host = r.split(['/', '?', '#']).next().unwrap_or("");
        !host.is_empty() && !s.chars().any(|c| c.is_whitespace() || c.is_control())
    })
}

pub fn is_slug(s: &str) -> bool {
    !s.is_empty()
        && s.split('-').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
}

/// "Chuyên gia Dinh dưỡng Hà" -> "chuyen-gia-dinh-duong-ha".
pub fn slugify(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars().flat_map(char::to_lowercase) {
        let mapped = if c.is_ascii_alphanumeric() {
            Some(c)
        } else {
            fold_vietnamese(c)
        };
        match mapped {
            Some(m) => out.push(m),
            None if !out.ends_with('-') && !out.is_empty() => out.push('-'),
            None => {}
        }
    }
    let slug: String = out.trim_end_matches('-').chars().take(100).collect();
    let slug = slug.trim_end_matches('-').to_owned();
    if slug.is_empty() {
        "twin".to_owned()
    } else {
        slug
    }
}

fn fold_vietnamese(c: char) -> Option<char> {
    const GROUPS: &[(&str, char)] = &[
        ("àáạảãâầấậẩẫăằắặẳẵ", 'a'),
        ("èéẹẻẽêềếệểễ", 'e'),
        ("ìíịỉĩ", 'i'),
        ("òóọỏõôồốộổỗơờớợởỡ", 'o'),
        ("ùúụủũưừứựửữ", 'u'),
        ("ỳýỵỷỹ", 'y'),
        ("đ", 'd'),
    ];
    GROUPS
        .iter()
        .find(|(set, _)| set.contains(c))
        .map(|&(_, ascii)| ascii)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn slugs_fold_vietnamese_and_punctuation() {
        assert_eq!(
            slugify("Chuyên gia Dinh dưỡng Hà"),
            "chuyen-gia-dinh-duong-ha"
        );
        assert_eq!(slugify("Dr. Sarah Chen, MD"), "dr-sarah-chen-md");
        assert_eq!(slugify("Đặng Thị Ngọc Thịnh"), "dang-thi-ngoc-thinh");
        assert_eq!(slugify("!!!"), "twin");
        assert!(is_slug(&slugify("  Many   spaces -- here ")));
    }

    #[test]
    fn create_requires_name_and_prompt_and_derives_slug() {
        let input = TwinInput::parse(
            &obj(json!({"name": "Bà Nội Lan", "systemPrompt": "You are Lan."})),
            true,
        )
        .unwrap();
        assert_eq!(input.slug.as_deref(), Some("ba-noi-lan"));
        let err = TwinInput::parse(&obj(json!({})), true).unwrap_err();
        let ApiError::Validation(f) = err else {
            panic!()
        };
        assert!(f.contains_key("name") && f.contains_key("systemPrompt"));
    }

    #[test]
    fn every_bad_field_is_named() {
        let bad = json!({
            "name": "", "systemPrompt": 3, "slug": "Bad Slug", "avatarUrl": "javascript:alert(1)",
            "expertise": ["ok", 5], "visibility": "secret", "language": "e n", "headline": "x".repeat(201)
        });
        let ApiError::Validation(f) = TwinInput::parse(&obj(bad), true).unwrap_err() else {
            panic!()
        };
        for field in [
            "name",
            "systemPrompt",
            "slug",
            "avatarUrl",
            "expertise",
            "visibility",
            "language",
            "headline",
        ] {
            assert!(f.contains_key(field), "{field} not reported: {f:?}");
        }
    }

    #[test]
    fn update_leaves_absent_fields_alone() {
        let input = TwinInput::parse(&obj(json!({"headline": "New"})), false).unwrap();
        assert_eq!(input.headline.as_deref(), Some("New"));
        assert_eq!(input.name, None);
        assert_eq!(input.slug, None);
    }
}
