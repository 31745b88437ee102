//! Which credential a request carries, decided from its headers alone.

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    ReadOnly,
    FullAccess,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::ReadOnly => "read_only",
            Scope::FullAccess => "full_access",
        }
    }

    pub fn parse(s: &str) -> Option<Scope> {
        match s {
            "read_only" => Some(Scope::ReadOnly),
            "full_access" => Some(Scope::FullAccess),
            _ => None,
        }
    }

    /// `full_access` includes everything `read_only` may do.
    pub fn allows(self, required: Scope) -> bool {
        self >= required
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// A dashboard session token (exactly two dots).
    Jwt(String),
    /// A client token (`tect_…`, SPEC §16), minted for a browser or an app.
    ClientToken(String),
    /// Anything else is taken for an API key and checked against the key format.
    ApiKey(String),
}

/// `Authorization: Bearer X` wins over `X-API-Key: X`. `None` when neither is usable.
pub fn from_headers(authorization: Option<&str>, x_api_key: Option<&str>) -> Option<Credential> {
    let bearer = authorization.and_then(|h| {
        let (scheme, value) = h.trim().split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| value.trim())
    });
    let value = bearer
        .filter(|v| !v.is_empty())
        .or_else(|| x_api_key.map(str::trim).filter(|v| !v.is_empty()))?;
    Some(if value.starts_with(crate::auth::client_token::PREFIX) {
        Credential::ClientToken(value.to_owned())
    } else if value.matches('.').count() == 2 {
        Credential::Jwt(value.to_owned())
    } else {
        Credential::ApiKey(value.to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_and_x_api_key() {
        assert_eq!(
            from_headers(Some("Bearer 123456"), None),
            Some(Credential::ApiKey("123456".into()))
        );
        assert_eq!(
            from_headers(None, Some("te_abc")),
            Some(Credential::ApiKey("te_abc".into()))
        );
        assert_eq!(
            from_headers(Some("bearer a.b.c"), None),
            Some(Credential::Jwt("a.b.c".into()))
        );
        assert_eq!(from_headers(Some("Basic dXNlcg=="), None), None);
        assert_eq!(from_headers(Some("Bearer "), None), None);
        assert_eq!(from_headers(None, None), None);
        // A header that is not Bearer does not hide a valid X-API-Key.
        assert_eq!(
            from_headers(Some("Basic x"), Some("k")),
            Some(Credential::ApiKey("k".into()))
        );
    }

    #[test]
    fn scope_order() {
        assert!(Scope::FullAccess.allows(Scope::ReadOnly));
        assert!(!Scope::ReadOnly.allows(Scope::FullAccess));
        assert_eq!(Scope::parse("full_access"), Some(Scope::FullAccess));
        assert_eq!(Scope::parse("admin"), None);
    }
}
