//! The protocol of the limits object (docs: README, "the hot path"): what the Worker asks of
//! an instance — count a request, verify a key and count it, forget a revoked key — and what it
//! answers.

use serde::{Deserialize, Serialize};

use crate::auth::api_key::KeyRecord;
use crate::limits::rate_limit::{Decision, Policy};

#[derive(Serialize, Deserialize)]
// Externally tagged (serde's default): internally tagged enums cost the wasm several KB each.
#[serde(rename_all = "camelCase")]
pub enum Op {
    /// Count one request against `policy`.
    Limit { policy: Policy },
    /// What `Limit` would decide, counting nothing (and writing nothing).
    Peek { policy: Policy },
    /// Give back one request counted by `Limit` (a successful login).
    Refund { policy: Policy },
    /// Verify the key with this hash and count one request against its scope's policy.
    #[serde(rename_all = "camelCase")]
    Key {
        key_hash: String,
        read_only: Policy,
        full_access: Policy,
    },
    /// Forget the cached record: the key was revoked.
    Revoke,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyAdmission {
    /// `None`: no such key.
    pub record: Option<KeyRecord>,
    /// `None` when the key is refused (revoked, expired): 401 comes before 429.
    pub decision: Option<Decision>,
}

/// The protocol of `limits::object::RateLimiter`, for `platform::object::DoClient`.
#[cfg(target_arch = "wasm32")]
pub struct Limits;

#[cfg(target_arch = "wasm32")]
impl crate::platform::object::Protocol for Limits {
    const CLASS: crate::platform::instance::Class = crate::platform::instance::Class::Limits;
    type Op = Op;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ops_cross_the_boundary_as_compact_externally_tagged_json() {
        let text = serde_json::to_string(&Op::Revoke).unwrap();
        assert_eq!(text, r#""revoke""#);
        assert!(matches!(serde_json::from_str(&text).unwrap(), Op::Revoke));
    }
}
