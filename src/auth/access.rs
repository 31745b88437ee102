//! Who may do what, decided without I/O: the caller a request authenticated as, whether a
//! route's access rule admits them, a rate-limit decision as a refusal, and which browser
//! origins may read the answers.

use crate::auth::client_token::Grant;
use crate::auth::credentials::Scope;
use crate::http::error::ApiError;
use crate::http::routes::{Access, RouteId, CLIENT_ROUTES};
use crate::limits::rate_limit::Decision;
use crate::spend::model::EndUserLimits;

/// The authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// A dashboard session (JWT); acts as `full_access` for its user.
    Session { user_id: String },
    Key {
        user_id: String,
        key_id: String,
        key_name: String,
        scope: Scope,
        end_user_limits: Option<EndUserLimits>,
    },
    /// A client token (SPEC §16): its key's account, on the routes `CLIENT_ROUTES` names, for
    /// its own twin, end user and conversations only; its key's per-end-user limits apply.
    Client {
        grant: Box<Grant>,
        end_user_limits: Option<EndUserLimits>,
    },
}

impl Principal {
    pub fn user_id(&self) -> &str {
        match self {
            Principal::Session { user_id } | Principal::Key { user_id, .. } => user_id,
            Principal::Client { grant, .. } => &grant.sub,
        }
    }

    pub fn scope(&self) -> Scope {
        match self {
            Principal::Session { .. } | Principal::Client { .. } => Scope::FullAccess,
            Principal::Key { scope, .. } => *scope,
        }
    }

    /// The API key the request counts for (a client token's, its key's).
    pub fn key_id(&self) -> Option<&str> {
        match self {
            Principal::Key { key_id, .. } => Some(key_id),
            Principal::Client { grant, .. } => Some(&grant.kid),
            Principal::Session { .. } => None,
        }
    }

    /// A client token's grant.
    pub fn grant(&self) -> Option<&Grant> {
        match self {
            Principal::Client { grant, .. } => Some(grant),
            _ => None,
        }
    }

    /// The per-end-user limits of the caller's API key, if it sets any.
    pub fn end_user_limits(&self) -> Option<EndUserLimits> {
        match self {
            Principal::Key {
                end_user_limits, ..
            }
            | Principal::Client {
                end_user_limits, ..
            } => *end_user_limits,
            Principal::Session { .. } => None,
        }
    }

    /// Whether the caller may use this conversation of its account: a client token only its
    /// own (its twin, its end user, its conversation if it names one).
    pub fn may_use(&self, conversation_id: &str, twin_id: &str, end_user_id: Option<&str>) -> bool {
        self.grant()
            .is_none_or(|g| g.covers(conversation_id, twin_id, end_user_id))
    }
}

/// Whether `route` admits `principal`: a key on a session-only route is 403 `FORBIDDEN`, a
/// key without the scope 403 `INSUFFICIENT_SCOPE`, a client token off `CLIENT_ROUTES` 403
/// `FORBIDDEN`.
pub fn authorize(route: RouteId, access: Access, principal: &Principal) -> Result<(), ApiError> {
    if principal.grant().is_some() && !CLIENT_ROUTES.contains(&route) {
        return Err(ApiError::Forbidden(
            "A client token may only use its twin's conversations; call this from your server with an API key",
        ));
    }
    match (access, principal) {
        (Access::SessionOnly, Principal::Key { .. } | Principal::Client { .. }) => {
            Err(ApiError::Forbidden(
                "This endpoint needs a dashboard session token (JWT); API keys cannot use it",
            ))
        }
        (Access::Scoped(required), p) if !p.scope().allows(required) => {
            Err(ApiError::InsufficientScope {
                required,
                granted: p.scope(),
            })
        }
        _ => Ok(()),
    }
}

/// A rate-limit decision as the 429 it means, if it refused.
pub fn limit_refusal(decision: &Decision) -> Result<(), ApiError> {
    match decision.rejected_by {
        Some(r) => Err(ApiError::RateLimited {
            reason: r.reason.into(),
            retry_after: r.retry_after,
            limit: r.limit,
        }),
        None => Ok(()),
    }
}

/// The `Access-Control-Allow-Origin` value for `origin` under `allowed` (comma-separated
/// origins, `*` for any), if it is allowed.
pub fn allowed_origin(allowed: &str, origin: Option<&str>) -> Option<String> {
    let origin = origin?;
    let mut any = false;
    for o in allowed.split(',').map(str::trim) {
        if o == origin {
            return Some(origin.to_owned());
        }
        any |= o == "*";
    }
    any.then(|| "*".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(scope: Scope) -> Principal {
        Principal::Key {
            user_id: "usr_1".into(),
            key_id: "key_1".into(),
            key_name: "k".into(),
            scope,
            end_user_limits: None,
        }
    }

    #[test]
    fn routes_admit_by_kind_of_credential_and_scope() {
        let session = Principal::Session {
            user_id: "usr_1".into(),
        };
        assert!(authorize(RouteId::Me, Access::SessionOnly, &session).is_ok());
        assert_eq!(
            authorize(RouteId::Me, Access::SessionOnly, &key(Scope::FullAccess))
                .unwrap_err()
                .code(),
            "FORBIDDEN"
        );
        let err = authorize(
            RouteId::Me,
            Access::Scoped(Scope::FullAccess),
            &key(Scope::ReadOnly),
        )
        .unwrap_err();
        assert_eq!(err.code(), "INSUFFICIENT_SCOPE");
        assert_eq!(err.details()["granted"], "read_only");
        assert!(authorize(
            RouteId::Me,
            Access::Scoped(Scope::ReadOnly),
            &key(Scope::ReadOnly)
        )
        .is_ok());
        assert!(authorize(RouteId::Me, Access::Scoped(Scope::FullAccess), &session).is_ok());
        assert_eq!(session.scope(), Scope::FullAccess);
        assert_eq!(key(Scope::ReadOnly).key_id(), Some("key_1"));
    }

    #[test]
    fn cors_allows_listed_origins_or_any() {
        assert_eq!(
            allowed_origin(
                "https://a.example, https://b.example",
                Some("https://b.example")
            ),
            Some("https://b.example".into())
        );
        assert_eq!(
            allowed_origin("https://a.example", Some("https://evil.example")),
            None
        );
        assert_eq!(
            allowed_origin("*", Some("https://x.example")),
            Some("*".into())
        );
        assert_eq!(allowed_origin("*", None), None);
    }
}

/// The bucket a client address counts in: an IPv4 address as itself, an IPv6 address by its
/// /64 (one customer's network; a host picks freely within it). An IPv4-mapped IPv6 address
/// is its IPv4 address; what does not parse is counted as given.
pub fn ip_bucket(ip: &str) -> String {
    use std::net::IpAddr;
    match ip.trim().parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => v4.to_string(),
        Ok(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
        Err(_) => ip.trim().to_owned(),
    }
}

#[cfg(test)]
mod ip_bucket_tests {
    use super::ip_bucket;

    #[test]
    fn ipv6_addresses_of_one_64_share_a_bucket() {
        let a = ip_bucket("2001:db8:1:2::1");
        assert_eq!(a, "2001:db8:1:2::/64");
        assert_eq!(ip_bucket("2001:0db8:0001:0002:ffff:1:2:3"), a);
        assert_ne!(ip_bucket("2001:db8:1:3::1"), a);
    }

    #[test]
    fn ipv4_and_mapped_ipv4_are_the_address_itself() {
        assert_eq!(ip_bucket("203.0.113.7"), "203.0.113.7");
        assert_eq!(ip_bucket("::ffff:203.0.113.7"), "203.0.113.7");
        assert_ne!(ip_bucket("203.0.113.8"), ip_bucket("203.0.113.7"));
        assert_eq!(ip_bucket("unknown"), "unknown");
    }
}
