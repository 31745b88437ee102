//! The API key format: `te_` + 30 random base62 chars + 6-char base62 CRC-32 of those 30.
//! The checksum lets a mistyped or truncated key be refused before any storage lookup.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::auth::credentials::Scope;
use crate::http::error::ApiError;

use crate::platform::ids::{base62_fixed, base62_from_random, is_base62};

pub const PREFIX: &str = "te_";
pub const RANDOM_LEN: usize = 30;
pub const CHECKSUM_LEN: usize = 6;
pub const KEY_LEN: usize = PREFIX.len() + RANDOM_LEN + CHECKSUM_LEN;
/// How many random bytes `generate` wants: rejection sampling skips a few.
pub const RANDOM_BYTES: usize = 64;

pub fn checksum(random_part: &str) -> String {
    base62_fixed(crc32fast::hash(random_part.as_bytes()) as u64, CHECKSUM_LEN)
}

/// A new key from at least `RANDOM_BYTES` random bytes; `None` only if they were too biased.
pub fn generate(random: &[u8]) -> Option<String> {
    let body = base62_from_random(random, RANDOM_LEN)?;
    Some(format!("{PREFIX}{body}{}", checksum(&body)))
}

/// Shape and checksum only; says nothing about whether the key exists.
pub fn is_well_formed(key: &str) -> bool {
    let Some(rest) = key.strip_prefix(PREFIX) else {
        return false;
    };
    if rest.len() != RANDOM_LEN + CHECKSUM_LEN || !is_base62(rest) {
        return false;
    }
    let (body, sum) = rest.split_at(RANDOM_LEN);
    checksum(body) == sum
}

/// What is stored: SHA-256 hex of the full key. The plaintext never reaches D1.
pub fn hash(key: &str) -> String {
    hex(&Sha256::digest(key.as_bytes()))
}

/// The first 8 chars after `te_`, kept for display in key lists.
pub fn display_prefix(key: &str) -> String {
    key.chars().skip(PREFIX.len()).take(8).collect()
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What verifying a key needs, loaded once from D1 and kept by the key's Durable Object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyRecord {
    pub id: String,
    pub user_id: String,
    pub name: String,
    pub scope: Scope,
    pub expires_at_ms: Option<i64>,
    pub revoked: bool,
    /// Its per-end-user limits (records cached before they existed read as none).
    #[serde(default)]
    pub end_user_limits: Option<crate::spend::model::EndUserLimits>,
}

impl KeyRecord {
    /// Revoked keys are unknown keys to the caller; expired ones say so.
    pub fn check(&self, now_ms: i64) -> Result<(), ApiError> {
        if self.revoked {
            return Err(ApiError::InvalidApiKey);
        }
        match self.expires_at_ms {
            Some(t) if t <= now_ms => Err(ApiError::ApiKeyExpired),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn random(seed: u64) -> Vec<u8> {
        // xorshift: deterministic bytes for tests.
        let mut x = seed | 1;
        (0..RANDOM_BYTES)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    #[test]
    fn generated_keys_always_validate() {
        for seed in 0..2000 {
            let key = generate(&random(seed)).expect("enough bytes");
            assert_eq!(key.len(), KEY_LEN, "{key}");
            assert!(is_well_formed(&key), "{key}");
        }
    }

    #[test]
    fn any_single_changed_character_fails() {
        let key = generate(&random(42)).unwrap();
        for i in PREFIX.len()..key.len() {
            for c in ['0', 'Z', 'z', 'q'] {
                let mut chars: Vec<char> = key.chars().collect();
                if chars[i] == c {
                    continue;
                }
                chars[i] = c;
                let changed: String = chars.into_iter().collect();
                assert!(!is_well_formed(&changed), "{changed} passed");
            }
        }
    }

    #[test]
    fn checksum_matches_an_independent_crc32() {
        // Reference: bitwise CRC-32 (IEEE, reflected, poly 0xEDB88320), written out here
        // instead of trusting the crate the code uses.
        fn crc32_reference(data: &[u8]) -> u32 {
            let mut crc = 0xFFFF_FFFFu32;
            for &b in data {
                crc ^= b as u32;
                for _ in 0..8 {
                    crc = if crc & 1 != 0 {
                        (crc >> 1) ^ 0xEDB8_8320
                    } else {
                        crc >> 1
                    };
                }
            }
            !crc
        }
        let body = "abcdefghijABCDEFGHIJ0123456789";
        assert_eq!(crc32_reference(b"123456789"), 0xCBF4_3926); // the standard check value
        let crc = crc32_reference(body.as_bytes()) as u64;
        let mut n = crc;
        let mut expect = String::new();
        for _ in 0..6 {
            expect.insert(0, crate::platform::ids::BASE62[(n % 62) as usize] as char);
            n /= 62;
        }
        assert_eq!(checksum(body), expect);
        assert!(is_well_formed(&format!("te_{body}{expect}")));
    }

    #[test]
    fn rejects_wrong_shapes() {
        for bad in [
            "123456",
            "",
            "te_",
            "sk_abcdefghijABCDEFGHIJ0123456789000000",
            "te_short",
        ] {
            assert!(!is_well_formed(bad), "{bad}");
        }
        let key = generate(&random(7)).unwrap();
        assert!(!is_well_formed(&format!("{key}x")));
        assert!(!is_well_formed(&key[..key.len() - 1]));
        assert!(!is_well_formed(&key.replacen("te_", "TE_", 1)));
    }

    #[test]
    fn records_refuse_revoked_and_expired_keys() {
        let mut r = KeyRecord {
            id: "key_1".into(),
            user_id: "usr_1".into(),
            name: "app".into(),
            scope: Scope::ReadOnly,
            expires_at_ms: Some(1_000),
            revoked: false,
            end_user_limits: None,
        };
        assert_eq!(r.check(999), Ok(()));
        assert_eq!(r.check(1_000), Err(ApiError::ApiKeyExpired));
        r.revoked = true;
        assert_eq!(r.check(0), Err(ApiError::InvalidApiKey));
        r.revoked = false;
        r.expires_at_ms = None;
        assert_eq!(r.check(i64::MAX), Ok(()));
    }

    #[test]
    fn hash_is_sha256_hex_and_prefix_is_eight_chars() {
        assert_eq!(
            hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let key = generate(&random(9)).unwrap();
        assert_eq!(display_prefix(&key), key[3..11]);
    }
}
