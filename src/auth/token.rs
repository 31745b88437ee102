//! Session tokens: HS256 JWTs with `sub`, `iat`, `exp` and `iss = "twinexpert"`.

use chrono::{DateTime, Duration, Utc};
use jwt_compact::alg::{Hs256, Hs256Key};
use jwt_compact::{AlgorithmExt, Claims, Header, TimeOptions, UntrustedToken};
use serde::{Deserialize, Serialize};

use crate::http::error::ApiError;

pub const ISSUER: &str = "twinexpert";
pub const DEFAULT_TTL_SECS: i64 = 3600;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
struct SessionClaims {
    sub: String,
    iss: String,
}

fn now_options(now: DateTime<Utc>) -> TimeOptions<impl Fn() -> DateTime<Utc>> {
    TimeOptions::new(Duration::zero(), move || now)
}

pub fn issue(
    secret: &[u8],
    user_id: &str,
    now: DateTime<Utc>,
    ttl_secs: i64,
) -> Result<String, ApiError> {
    let mut claims = Claims::new(SessionClaims {
        sub: user_id.to_owned(),
        iss: ISSUER.to_owned(),
    });
    claims.issued_at = Some(now);
    claims.expiration = Some(now + Duration::seconds(ttl_secs));
    Hs256
        .token(
            &Header::empty().with_token_type("JWT"),
            &claims,
            &Hs256Key::new(secret),
        )
        .map_err(ApiError::internal)
}

/// The user id of a valid token. Every failure (shape, `alg`, signature, expiry, issuer)
/// is the same `INVALID_TOKEN`, so the answer does not help a forger.
pub fn verify(secret: &[u8], token: &str, now: DateTime<Utc>) -> Result<String, ApiError> {
    let untrusted = UntrustedToken::new(token).map_err(|_| ApiError::InvalidToken)?;
    let token = Hs256
        .validator::<SessionClaims>(&Hs256Key::new(secret))
        .validate(&untrusted)
        .map_err(|_| ApiError::InvalidToken)?;
    let claims = token.claims();
    claims
        .validate_expiration(&now_options(now))
        .map_err(|_| ApiError::InvalidToken)?;
    if claims.custom.iss != ISSUER || claims.custom.sub.is_empty() {
        return Err(ApiError::InvalidToken);
    }
    Ok(claims.custom.sub.clone())
}

/// HS256 keys shorter than this are guessable offline from one token (RFC 7518 §3.2 asks for
/// at least the hash size, 256 bits).
pub const MIN_SECRET_BYTES: usize = 32;

/// A session secret fit to sign with; a configuration error (500, the log says why) otherwise.
pub fn check_secret(secret: &str) -> Result<(), ApiError> {
    if secret.len() < MIN_SECRET_BYTES {
        return Err(ApiError::internal(format!(
            "JWT_SECRET is shorter than {MIN_SECRET_BYTES} bytes: refusing to sign or verify sessions"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_secrets_are_a_configuration_error() {
        let err = check_secret("too-short").unwrap_err();
        assert_eq!(err.status(), 500);
        assert!(err.log_detail().unwrap().contains("JWT_SECRET"));
        assert!(check_secret(&"k".repeat(32)).is_ok());
    }
    use chrono::TimeZone;

    const SECRET: &[u8] = b"test-secret-test-secret-test-secret";

    fn t0() -> DateTime<Utc> {
        Utc.timestamp_opt(1_800_000_000, 0).unwrap()
    }

    fn b64(s: &str) -> String {
        // URL-safe base64 without padding, small enough to write out for the tests.
        const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let bytes = s.as_bytes();
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let n = chunk
                .iter()
                .enumerate()
                .fold(0u32, |acc, (i, &b)| acc | (b as u32) << (16 - 8 * i));
            for i in 0..=chunk.len() {
                out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
            }
        }
        out
    }

    #[test]
    fn round_trip() {
        let token = issue(SECRET, "usr_1", t0(), 3600).unwrap();
        assert_eq!(token.matches('.').count(), 2);
        assert_eq!(
            verify(SECRET, &token, t0() + Duration::seconds(3599)).unwrap(),
            "usr_1"
        );
    }

    #[test]
    fn expired_is_rejected() {
        let token = issue(SECRET, "usr_1", t0(), 3600).unwrap();
        assert_eq!(
            verify(SECRET, &token, t0() + Duration::seconds(3601)),
            Err(ApiError::InvalidToken)
        );
    }

    #[test]
    fn wrong_secret_and_tampering_are_rejected() {
        let token = issue(SECRET, "usr_1", t0(), 3600).unwrap();
        assert_eq!(
            verify(b"another-secret", &token, t0()),
            Err(ApiError::InvalidToken)
        );
        let (head, rest) = token.split_once('.').unwrap();
        let (_, sig) = rest.split_once('.').unwrap();
        let forged_claims = b64(r#"{"sub":"usr_admin","iss":"twinexpert","exp":1900000000}"#);
        let forged = format!("{head}.{forged_claims}.{sig}");
        assert_eq!(verify(SECRET, &forged, t0()), Err(ApiError::InvalidToken));
        assert_eq!(verify(SECRET, "a.b.c", t0()), Err(ApiError::InvalidToken));
    }

    #[test]
    fn alg_none_and_swapped_alg_are_rejected() {
        let claims = b64(r#"{"sub":"usr_1","iss":"twinexpert","exp":1900000000}"#);
        let none = format!("{}.{claims}.", b64(r#"{"alg":"none","typ":"JWT"}"#));
        assert_eq!(verify(SECRET, &none, t0()), Err(ApiError::InvalidToken));
        let token = issue(SECRET, "usr_1", t0(), 3600).unwrap();
        let sig = token.rsplit('.').next().unwrap();
        let hs512 = format!("{}.{claims}.{sig}", b64(r#"{"alg":"HS512","typ":"JWT"}"#));
        assert_eq!(verify(SECRET, &hs512, t0()), Err(ApiError::InvalidToken));
    }

    #[test]
    fn wrong_issuer_and_missing_exp_are_rejected() {
        let key = Hs256Key::new(SECRET);
        let mut claims = Claims::new(SessionClaims {
            sub: "usr_1".into(),
            iss: "someone-else".into(),
        });
        claims.expiration = Some(t0() + Duration::hours(1));
        let other = Hs256.token(&Header::empty(), &claims, &key).unwrap();
        assert_eq!(verify(SECRET, &other, t0()), Err(ApiError::InvalidToken));

        let no_exp = Claims::new(SessionClaims {
            sub: "usr_1".into(),
            iss: ISSUER.into(),
        });
        let forever = Hs256.token(&Header::empty(), &no_exp, &key).unwrap();
        assert_eq!(verify(SECRET, &forever, t0()), Err(ApiError::InvalidToken));
    }
}
