//! Accounts and API keys: what the API shows of them and what it accepts to create them.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::auth::credentials::Scope;
use crate::auth::password;
use crate::http::error::ApiError;
use crate::http::validate::{chars, Chars, Fields};

// Each field's limits, read by validation here and by the OpenAPI schema (auth/schema.rs).
pub const USER_NAME: Chars = chars(1, 100);
pub const EMAIL: Chars = chars(1, 254);
pub const PASSWORD: Chars = chars(password::MIN_LEN, password::MAX_LEN);
pub const KEY_NAME: Chars = chars(1, 100);
pub const MAX_EXPIRES_IN_DAYS: i64 = 3650;

/// A user as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: String,
    pub email: String,
    pub name: String,
    pub created_at: String,
}

/// A user and their stored password (`password::StoredPassword` encoded).
#[derive(Debug, Clone)]
pub struct Account {
    pub user: User,
    pub password_hash: String,
}

/// `POST /auth/register`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAccount {
    /// Lower-cased.
    pub email: String,
    pub password: String,
    pub name: String,
}

impl TryFrom<&Map<String, Value>> for NewAccount {
    type Error = ApiError;

    fn try_from(body: &Map<String, Value>) -> Result<Self, ApiError> {
        let mut f = Fields::new(body);
        let email = f.email("email");
        let password = f.raw_string("password", PASSWORD);
        let name = f.string("name", USER_NAME);
        f.finish()?;
        Ok(NewAccount {
            email: Fields::checked(email)?,
            password: Fields::checked(password)?,
            name: Fields::checked(name)?,
        })
    }
}

/// `POST /auth/login`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login {
    /// Lower-cased.
    pub email: String,
    pub password: String,
}

impl TryFrom<&Map<String, Value>> for Login {
    type Error = ApiError;

    fn try_from(body: &Map<String, Value>) -> Result<Self, ApiError> {
        let mut f = Fields::new(body);
        let email = f.string("email", EMAIL);
        let password = f.raw_string("password", chars(1, PASSWORD.max));
        f.finish()?;
        Ok(Login {
            email: Fields::checked(email)?.to_lowercase(),
            password: Fields::checked(password)?,
        })
    }
}

/// An answer carrying a session token.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Session<'a> {
    pub user: &'a User,
    pub token: String,
    pub expires_in: i64,
}

/// The key a request was made with, as `GET /auth/me` shows it.
#[derive(Debug, Serialize)]
pub struct KeyRef<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub scope: Scope,
}

/// `GET /auth/me`: the user, and the key used if any.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Me<'a> {
    #[serde(flatten)]
    pub user: &'a User,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_key: Option<KeyRef<'a>>,
    /// The models a twin may be set to (`ALLOWED_MODELS`): what a console offers.
    pub allowed_models: &'a [String],
}

/// An API key as the API shows it (never its secret, which only the create answer carries).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiKey {
    pub id: String,
    #[serde(skip)]
    pub user_id: String,
    pub name: String,
    pub scope: Scope,
    pub prefix: String,
    pub created_at: String,
    pub expires_at: Option<String>,
    pub last_used_at: Option<String>,
    pub revoked_at: Option<String>,
    /// What it allows each end user it serves (SPEC §16); `null` when unlimited.
    pub end_user_limits: Option<crate::spend::model::EndUserLimits>,
}

/// The create answer: the key's fields and, once, its plaintext.
#[derive(Debug, Serialize)]
pub struct CreatedApiKey<'a> {
    #[serde(flatten)]
    pub api_key: &'a ApiKey,
    /// The plaintext key: in this answer and nowhere else, ever.
    pub key: &'a str,
}

/// `POST /auth/api-keys`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewApiKey {
    pub name: String,
    pub scope: Scope,
    pub expires_in_days: Option<i64>,
}

impl TryFrom<&Map<String, Value>> for NewApiKey {
    type Error = ApiError;

    fn try_from(body: &Map<String, Value>) -> Result<Self, ApiError> {
        let mut f = Fields::new(body);
        let name = f.string("name", KEY_NAME);
        let scope = f.one_of(
            "scope",
            &[Scope::ReadOnly.as_str(), Scope::FullAccess.as_str()],
        );
        let expires_in_days = f.opt_int("expiresInDays", 1, MAX_EXPIRES_IN_DAYS);
        f.finish()?;
        Ok(NewApiKey {
            name: Fields::checked(name)?,
            // Least privilege when the caller does not say.
            scope: scope
                .as_deref()
                .and_then(Scope::parse)
                .unwrap_or(Scope::ReadOnly),
            expires_in_days,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn inputs_are_checked_with_required_fields_present_and_defaults_in_place() {
        let a = NewAccount::try_from(&obj(
            json!({"email": "Lan@Example.com", "password": "long enough pw", "name": "Lan"}),
        ))
        .unwrap();
        assert_eq!(a.email, "lan@example.com");
        let err = NewAccount::try_from(&obj(json!({}))).unwrap_err();
        assert_eq!(err.code(), "VALIDATION_ERROR");
        let k = NewApiKey::try_from(&obj(json!({"name": "ci"}))).unwrap();
        assert_eq!((k.scope, k.expires_in_days), (Scope::ReadOnly, None));
        assert!(NewApiKey::try_from(&obj(json!({"name": "x", "scope": "admin"}))).is_err());
        let l = Login::try_from(&obj(json!({"email": "A@B.C", "password": "p"}))).unwrap();
        assert_eq!(l.email, "a@b.c");
    }

    #[test]
    fn views_are_camel_case_and_never_carry_secrets() {
        let user = User {
            id: "usr_1".into(),
            email: "a@b.c".into(),
            name: "A".into(),
            created_at: "t".into(),
        };
        let me = Me {
            user: &user,
            api_key: Some(KeyRef {
                id: "key_1",
                name: "k",
                scope: Scope::FullAccess,
            }),
            allowed_models: &["gpt-4o-mini".to_owned()],
        };
        let v = serde_json::to_value(&me).unwrap();
        assert_eq!(v["createdAt"], "t");
        assert_eq!(v["allowedModels"], serde_json::json!(["gpt-4o-mini"]));
        assert_eq!(v["apiKey"]["scope"], "full_access");
        let key = ApiKey {
            id: "key_1".into(),
            user_id: "usr_1".into(),
            name: "k".into(),
            scope: Scope::ReadOnly,
            prefix: "te_ab".into(),
            created_at: "t".into(),
            expires_at: None,
            last_used_at: None,
            revoked_at: None,
            end_user_limits: None,
        };
        let v = serde_json::to_value(&key).unwrap();
        assert!(v.get("userId").is_none() && v["revokedAt"].is_null());
    }
}
