//! Client tokens (SPEC §16): what a browser or a mobile app holds instead of an API key. Minted
//! server side with a `full_access` key (`POST /client-tokens`), short-lived, for one twin and
//! one end user (and, if asked, one conversation). A token is `tect_` + an HS256 JWT whose key is
//! derived from `JWT_SECRET` for this use alone, so a session JWT never passes for one, nor one
//! for a session. It names its API key's hash: each request is verified by that key's object
//! (no D1 read), which refuses it once the key is revoked.

use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, Mac};
use jwt_compact::alg::{Hs256, Hs256Key};
use jwt_compact::{AlgorithmExt, Claims, Header, TimeOptions, UntrustedToken};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::Sha256;

use crate::http::error::ApiError;
use crate::http::validate::{chars, Fields};
use crate::spend::model as spend;

pub const PREFIX: &str = "tect_";
pub const MIN_TTL_SECS: i64 = 60;
pub const MAX_TTL_SECS: i64 = 3600;
pub const DEFAULT_TTL_SECS: i64 = 600;
const ISSUER: &str = "twinexpert/client";

/// What a token grants: whose account, through which key, for which twin and end user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// The account.
    pub sub: String,
    /// The API key it was minted with (usage is counted for it).
    pub kid: String,
    /// That key's hash: the name of the key's object, which verifies each request.
    pub kh: String,
    pub twn: String,
    pub eu: String,
    /// The one conversation it may use, if it was minted for one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnv: Option<String>,
    iss: String,
}

impl Grant {
    pub fn new(
        user_id: &str,
        key: (&str, &str),
        twin_id: &str,
        end_user_id: &str,
        conversation_id: Option<&str>,
    ) -> Grant {
        Grant {
            sub: user_id.to_owned(),
            kid: key.0.to_owned(),
            kh: key.1.to_owned(),
            twn: twin_id.to_owned(),
            eu: end_user_id.to_owned(),
            cnv: conversation_id.map(str::to_owned),
            iss: ISSUER.to_owned(),
        }
    }

    /// Whether a conversation (its twin and end user) is one this token may use.
    pub fn covers(&self, conversation_id: &str, twin_id: &str, end_user_id: Option<&str>) -> bool {
        twin_id == self.twn
            && end_user_id == Some(self.eu.as_str())
            && self.cnv.as_deref().is_none_or(|c| c == conversation_id)
    }
}

/// The signing key: HMAC-SHA256 of `JWT_SECRET` over this use's label.
fn key(jwt_secret: &[u8]) -> Hs256Key {
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(jwt_secret).expect("HMAC takes any key length");
    mac.update(b"twinexpert client tokens v1");
    Hs256Key::new(mac.finalize().into_bytes())
}

pub fn issue(
    jwt_secret: &[u8],
    grant: &Grant,
    now: DateTime<Utc>,
    ttl_secs: i64,
) -> Result<String, ApiError> {
    let mut claims = Claims::new(grant.clone());
    claims.issued_at = Some(now);
    claims.expiration = Some(now + Duration::seconds(ttl_secs));
    let jwt = Hs256
        .token(&Header::empty(), &claims, &key(jwt_secret))
        .map_err(ApiError::internal)?;
    Ok(format!("{PREFIX}{jwt}"))
}

/// The grant of a genuine token: `INVALID_TOKEN` for anything forged or malformed,
/// `CLIENT_TOKEN_EXPIRED` for a genuine one past its time (so an app knows to mint another).
pub fn verify(jwt_secret: &[u8], token: &str, now: DateTime<Utc>) -> Result<Grant, ApiError> {
    let jwt = token.strip_prefix(PREFIX).ok_or(ApiError::InvalidToken)?;
    let untrusted = UntrustedToken::new(jwt).map_err(|_| ApiError::InvalidToken)?;
    let token = Hs256
        .validator::<Grant>(&key(jwt_secret))
        .validate(&untrusted)
        .map_err(|_| ApiError::InvalidToken)?;
    let claims = token.claims();
    if claims.custom.iss != ISSUER {
        return Err(ApiError::InvalidToken);
    }
    claims
        .validate_expiration(&TimeOptions::new(Duration::zero(), move || now))
        .map_err(|_| ApiError::ClientTokenExpired)?;
    Ok(claims.custom.clone())
}

/// `POST /client-tokens`' body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewClientToken {
    pub twin_id: String,
    pub end_user_id: String,
    pub ttl_secs: i64,
    pub conversation_id: Option<String>,
}

impl NewClientToken {
    pub fn parse(body: &Map<String, Value>) -> Result<NewClientToken, ApiError> {
        let mut f = Fields::new(body);
        let twin_id = f.string("twinId", chars(1, 100));
        let end_user_id = spend::end_user_field(&mut f);
        if end_user_id.is_none() && body.get("endUserId").is_none_or(Value::is_null) {
            f.fail("endUserId", "is required: the end user the token acts for");
        }
        let ttl = f.opt_int("expiresInSeconds", MIN_TTL_SECS, MAX_TTL_SECS);
        let conversation_id = f.opt_string("conversationId", chars(1, 100));
        f.finish()?;
        Ok(NewClientToken {
            twin_id: Fields::checked(twin_id)?,
            end_user_id: Fields::checked(end_user_id)?,
            ttl_secs: ttl.unwrap_or(DEFAULT_TTL_SECS),
            conversation_id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn at(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_800_000_000 + secs, 0).unwrap()
    }

    fn grant() -> Grant {
        Grant::new("usr_1", ("key_1", "hash1"), "twn_1", "eu-1", None)
    }

    #[test]
    fn a_token_carries_its_grant_until_it_expires() {
        let token = issue(SECRET, &grant(), at(0), 600).unwrap();
        assert!(token.starts_with("tect_"));
        assert_eq!(verify(SECRET, &token, at(599)).unwrap(), grant());
        assert_eq!(
            verify(SECRET, &token, at(601)).unwrap_err(),
            ApiError::ClientTokenExpired
        );
        assert_eq!(
            verify(b"another secret, 32 bytes at least!", &token, at(1)).unwrap_err(),
            ApiError::InvalidToken
        );
        let tampered = format!("{}x", &token[..token.len() - 1]);
        assert_eq!(
            verify(SECRET, &tampered, at(1)).unwrap_err(),
            ApiError::InvalidToken
        );
    }

    #[test]
    fn session_tokens_and_client_tokens_never_pass_for_each_other() {
        let session = crate::auth::token::issue(SECRET, "usr_1", at(0), 600).unwrap();
        assert_eq!(
            verify(SECRET, &format!("tect_{session}"), at(1)).unwrap_err(),
            ApiError::InvalidToken
        );
        let client = issue(SECRET, &grant(), at(0), 600).unwrap();
        assert!(crate::auth::token::verify(SECRET, &client[5..], at(1)).is_err());
    }

    #[test]
    fn a_grant_covers_its_twin_end_user_and_conversation_only() {
        let g = grant();
        assert!(g.covers("conv_1", "twn_1", Some("eu-1")));
        assert!(!g.covers("conv_1", "twn_2", Some("eu-1")));
        assert!(!g.covers("conv_1", "twn_1", Some("eu-2")));
        assert!(!g.covers("conv_1", "twn_1", None));
        let one = Grant::new("usr_1", ("key_1", "h"), "twn_1", "eu-1", Some("conv_1"));
        assert!(one.covers("conv_1", "twn_1", Some("eu-1")));
        assert!(!one.covers("conv_2", "twn_1", Some("eu-1")));
    }

    #[test]
    fn the_request_names_a_twin_an_end_user_and_a_bounded_lifetime() {
        let p = |v: Value| NewClientToken::parse(v.as_object().unwrap());
        let ok = p(json!({"twinId": "twn_1", "endUserId": "eu-1"})).unwrap();
        assert_eq!(ok.ttl_secs, DEFAULT_TTL_SECS);
        for (body, field) in [
            (json!({"endUserId": "eu-1"}), "twinId"),
            (json!({"twinId": "t"}), "endUserId"),
            (
                json!({"twinId": "t", "endUserId": "no spaces"}),
                "endUserId",
            ),
            (
                json!({"twinId": "t", "endUserId": "e", "expiresInSeconds": 59}),
                "expiresInSeconds",
            ),
            (
                json!({"twinId": "t", "endUserId": "e", "expiresInSeconds": 3601}),
                "expiresInSeconds",
            ),
        ] {
            assert!(
                matches!(p(body.clone()), Err(ApiError::Validation(f)) if f.contains_key(field)),
                "{body}"
            );
        }
    }
}
