//! Twin input: validation of every field and slugs derived from names (Vietnamese included).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::http::error::ApiError;
use crate::http::validate::{chars, Chars, Fields};

/// Who may use a twin: anyone (`public`) or its owner only (`private`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    Public,
    Private,
}

impl Visibility {
    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::Public => "public",
            Visibility::Private => "private",
        }
    }

    pub fn parse(s: &str) -> Option<Visibility> {
        match s {
            "public" => Some(Visibility::Public),
            "private" => Some(Visibility::Private),
            _ => None,
        }
    }
}

// Each field's limits, read by validation here and by the OpenAPI schema (http/openapi.rs).
pub const NAME: Chars = chars(1, 100);
pub const SLUG: Chars = chars(1, 100);
pub const HEADLINE: Chars = chars(0, 200);
pub const DESCRIPTION: Chars = chars(0, 5000);
pub const AVATAR_URL: Chars = chars(1, 2048);
pub const WEBSITE_URL: Chars = chars(1, 2048);
pub const EXPERTISE_ITEMS: usize = 20;
pub const EXPERTISE_ITEM: Chars = chars(1, 50);
pub const LANGUAGE: Chars = chars(2, 10);
pub const GREETING: Chars = chars(0, 1000);
pub const SYSTEM_PROMPT: Chars = chars(1, 20_000);
pub const MODEL: Chars = chars(1, 100);

pub const VISIBILITIES: &[&str] = &["public", "private"];

/// A twin, as its row in D1 holds it (the column names are the field names).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Twin {
    pub id: String,
    pub owner_id: String,
    pub name: String,
    pub slug: String,
    pub headline: String,
    pub description: String,
    pub avatar_url: Option<String>,
    pub website_url: Option<String>,
    /// Stored as a JSON array in a text column.
    #[serde(deserialize_with = "json_text")]
    pub expertise: Vec<String>,
    pub language: String,
    pub greeting: String,
    pub system_prompt: String,
    pub visibility: Visibility,
    pub model: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// A value stored as JSON text in a column.
fn json_text<'de, D, T>(de: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    let text = String::deserialize(de)?;
    serde_json::from_str(&text).map_err(serde::de::Error::custom)
}

/// A twin as the API shows it to `viewer`: the persona (`systemPrompt`) only to its owner.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TwinView<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub slug: &'a str,
    pub headline: &'a str,
    pub description: &'a str,
    pub avatar_url: Option<&'a str>,
    pub website_url: Option<&'a str>,
    pub expertise: &'a [String],
    pub language: &'a str,
    pub greeting: &'a str,
    pub visibility: Visibility,
    pub model: Option<&'a str>,
    pub created_at: &'a str,
    pub updated_at: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system_prompt: Option<&'a str>,
}

impl Twin {
    pub fn view(&self, viewer: &str) -> TwinView<'_> {
        TwinView {
            id: &self.id,
            name: &self.name,
            slug: &self.slug,
            headline: &self.headline,
            description: &self.description,
            avatar_url: self.avatar_url.as_deref(),
            website_url: self.website_url.as_deref(),
            expertise: &self.expertise,
            language: &self.language,
            greeting: &self.greeting,
            visibility: self.visibility,
            model: self.model.as_deref(),
            created_at: &self.created_at,
            updated_at: &self.updated_at,
            system_prompt: (self.owner_id == viewer).then_some(self.system_prompt.as_str()),
        }
    }
}

/// Fields of an update (`PATCH`): `None` leaves a field as it is.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct TwinPatch {
    pub name: Option<String>,
    pub slug: Option<String>,
    pub headline: Option<String>,
    pub description: Option<String>,
    pub avatar_url: Option<String>,
    pub website_url: Option<String>,
    pub expertise: Option<Vec<String>>,
    pub language: Option<String>,
    pub greeting: Option<String>,
    pub system_prompt: Option<String>,
    pub visibility: Option<Visibility>,
    pub model: Option<String>,
}

/// A new twin: required fields present, every default applied.
#[derive(Debug, Clone, PartialEq)]
pub struct NewTwin {
    pub name: String,
    pub slug: String,
    pub headline: String,
    pub description: String,
    pub avatar_url: Option<String>,
    pub website_url: Option<String>,
    pub expertise: Vec<String>,
    pub language: String,
    pub greeting: String,
    pub system_prompt: String,
    pub visibility: Visibility,
    pub model: Option<String>,
}

impl NewTwin {
    /// The twin this input creates, owned by `owner_id`, created `now`.
    pub fn into_twin(self, id: String, owner_id: String, now: String) -> Twin {
        Twin {
            id,
            owner_id,
            name: self.name,
            slug: self.slug,
            headline: self.headline,
            description: self.description,
            avatar_url: self.avatar_url,
            website_url: self.website_url,
            expertise: self.expertise,
            language: self.language,
            greeting: self.greeting,
            system_prompt: self.system_prompt,
            visibility: self.visibility,
            model: self.model,
            created_at: now.clone(),
            updated_at: now,
        }
    }
}

impl TryFrom<&Map<String, Value>> for NewTwin {
    type Error = ApiError;

    /// `name` and `systemPrompt` are required; a missing slug is derived from the name.
    fn try_from(obj: &Map<String, Value>) -> Result<NewTwin, ApiError> {
        let p = read(obj, true)?;
        let name = Fields::checked(p.name)?;
        Ok(NewTwin {
            slug: p.slug.unwrap_or_else(|| slugify(&name)),
            name,
            headline: p.headline.unwrap_or_default(),
            description: p.description.unwrap_or_default(),
            avatar_url: p.avatar_url,
            website_url: p.website_url,
            expertise: p.expertise.unwrap_or_default(),
            language: p.language.unwrap_or_else(|| "en".into()),
            greeting: p.greeting.unwrap_or_default(),
            system_prompt: Fields::checked(p.system_prompt)?,
            visibility: p.visibility.unwrap_or(Visibility::Private),
            model: p.model,
        })
    }
}

impl TryFrom<&Map<String, Value>> for TwinPatch {
    type Error = ApiError;

    fn try_from(obj: &Map<String, Value>) -> Result<TwinPatch, ApiError> {
        read(obj, false)
    }
}

/// Every field checked; `creating`: `name` and `systemPrompt` are required.
fn read(obj: &Map<String, Value>, creating: bool) -> Result<TwinPatch, ApiError> {
    let mut f = Fields::new(obj);
    let (name, system_prompt) = if creating {
        (
            f.string("name", NAME),
            f.string("systemPrompt", SYSTEM_PROMPT),
        )
    } else {
        (
            f.opt_string("name", NAME),
            f.opt_string("systemPrompt", SYSTEM_PROMPT),
        )
    };
    let slug = f.opt_string("slug", SLUG);
    if slug.as_deref().is_some_and(|s| !is_slug(s)) {
        f.fail(
            "slug",
            "must be lowercase letters, digits and single hyphens",
        );
    }
    let avatar_url = f.opt_string("avatarUrl", AVATAR_URL);
    if avatar_url.as_deref().is_some_and(|u| !is_http_url(u)) {
        f.fail("avatarUrl", "must be an http(s) URL");
    }
    let website_url = f.opt_string("websiteUrl", WEBSITE_URL);
    if website_url.as_deref().is_some_and(|u| !is_http_url(u)) {
        f.fail("websiteUrl", "must be an http(s) URL");
    }
    let language = f.opt_string("language", LANGUAGE);
    if language
        .as_deref()
        .is_some_and(|l| !l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
    {
        f.fail("language", "must be a language tag such as 'en' or 'vi'");
    }
    let expertise = expertise(&mut f, obj);
    let patch = TwinPatch {
        name,
        slug,
        headline: f.opt_string("headline", HEADLINE),
        description: f.opt_string("description", DESCRIPTION),
        avatar_url,
        website_url,
        expertise,
        language,
        greeting: f.opt_string("greeting", GREETING),
        system_prompt,
        visibility: f
            .one_of("visibility", VISIBILITIES)
            .as_deref()
            .and_then(Visibility::parse),
        model: f.opt_string("model", MODEL),
    };
    f.finish()?;
    Ok(patch)
}

fn expertise(f: &mut Fields, obj: &Map<String, Value>) -> Option<Vec<String>> {
    let value = obj.get("expertise").filter(|v| !v.is_null())?;
    let items = value
        .as_array()
        .filter(|a| a.len() <= EXPERTISE_ITEMS)
        .and_then(|a| {
            a.iter()
                .map(|v| {
                    v.as_str()
                        .map(str::trim)
                        .filter(|s| {
                            (EXPERTISE_ITEM.min..=EXPERTISE_ITEM.max).contains(&s.chars().count())
                        })
                        .map(str::to_owned)
                })
                .collect::<Option<Vec<_>>>()
        });
    if items.is_none() {
        let (n, item) = (EXPERTISE_ITEMS, EXPERTISE_ITEM);
        let rule = format!(
            "must be an array of at most {n} strings of {} to {} characters",
            item.min, item.max
        );
        f.fail("expertise", &rule);
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
    let slug: String = out.trim_end_matches('-').chars().take(SLUG.max).collect();
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

    #[test]
    fn a_twin_reads_from_its_row() {
        let row = serde_json::json!({
            "id": "twn_1", "owner_id": "usr_1", "name": "N", "slug": "n", "headline": "",
            "description": "", "avatar_url": null, "expertise": "[\"a\",\"b\"]",
            "language": "vi", "greeting": "", "system_prompt": "p", "visibility": "public",
            "model": null, "created_at": "t", "updated_at": "t"
        });
        let twin: Twin = serde_json::from_value(row.clone()).unwrap();
        assert_eq!(twin.expertise, ["a", "b"]);
        assert_eq!(twin.visibility, Visibility::Public);
        let mut bad = row;
        bad["visibility"] = "secret".into();
        assert!(serde_json::from_value::<Twin>(bad).is_err());
    }
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
        let twin = NewTwin::try_from(&obj(
            json!({"name": "Bà Nội Lan", "systemPrompt": "You are Lan."}),
        ))
        .unwrap();
        assert_eq!(twin.slug, "ba-noi-lan");
        assert_eq!(
            (twin.language.as_str(), twin.visibility),
            ("en", Visibility::Private)
        );
        let err = NewTwin::try_from(&obj(json!({}))).unwrap_err();
        let ApiError::Validation(f) = err else {
            panic!()
        };
        assert!(f.contains_key("name") && f.contains_key("systemPrompt"));
    }

    #[test]
    fn every_bad_field_is_named() {
        let bad = json!({
            "name": "", "systemPrompt": 3, "slug": "Bad Slug", "avatarUrl": "javascript:alert(1)",
            "websiteUrl": "ftp://files.example", "expertise": ["ok", 5], "visibility": "secret", "language": "e n", "headline": "x".repeat(201)
        });
        let ApiError::Validation(f) = NewTwin::try_from(&obj(bad)).unwrap_err() else {
            panic!()
        };
        for field in [
            "name",
            "systemPrompt",
            "slug",
            "avatarUrl",
            "websiteUrl",
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
        let input = TwinPatch::try_from(&obj(json!({"headline": "New"}))).unwrap();
        assert_eq!(input.headline.as_deref(), Some("New"));
        assert_eq!(input.name, None);
        assert_eq!(input.slug, None);
    }

    #[test]
    fn the_persona_is_shown_to_the_owner_only() {
        let new = NewTwin::try_from(&obj(
            json!({"name": "Hà", "systemPrompt": "Bạn là Hà.", "visibility": "public"}),
        ))
        .unwrap();
        let twin = new.into_twin("twn_1".into(), "usr_1".into(), "t".into());
        let owner = serde_json::to_value(twin.view("usr_1")).unwrap();
        assert_eq!(owner["systemPrompt"], "Bạn là Hà.");
        assert_eq!(owner["visibility"], "public");
        assert!(serde_json::to_value(twin.view("usr_2"))
            .unwrap()
            .get("systemPrompt")
            .is_none());
    }
}
