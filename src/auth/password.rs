//! Stored password format and the checks around it. The PBKDF2 work itself runs in WebCrypto
//! (platform::crypto); this module only encodes, decodes and compares.

pub const ITERATIONS: u32 = 100_000;
pub const SALT_LEN: usize = 16;
pub const HASH_LEN: usize = 32;
pub const MIN_LEN: usize = 10;
pub const MAX_LEN: usize = 256;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPassword {
    pub iterations: u32,
    pub salt: Vec<u8>,
    pub hash: Vec<u8>,
}

impl StoredPassword {
    /// `pbkdf2-sha256$<iterations>$<salt hex>$<hash hex>`
    pub fn encode(&self) -> String {
        format!(
            "pbkdf2-sha256${}${}${}",
            self.iterations,
            crate::auth::api_key::hex(&self.salt),
            crate::auth::api_key::hex(&self.hash)
        )
    }

    pub fn decode(s: &str) -> Option<Self> {
        let mut parts = s.split('$');
        if parts.next()? != "pbkdf2-sha256" {
            return None;
        }
        let iterations = parts.next()?.parse().ok()?;
        let salt = unhex(parts.next()?)?;
        let hash = unhex(parts.next()?)?;
        parts.next().is_none().then_some(StoredPassword {
            iterations,
            salt,
            hash,
        })
    }
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Compares without an early exit, so timing does not reveal how many bytes matched.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_decode_round_trip() {
        let p = StoredPassword {
            iterations: ITERATIONS,
            salt: vec![1; 16],
            hash: vec![0xab; 32],
        };
        let text = p.encode();
        assert!(text.starts_with("pbkdf2-sha256$100000$0101"));
        assert_eq!(StoredPassword::decode(&text), Some(p));
        assert_eq!(StoredPassword::decode("plain"), None);
        assert_eq!(StoredPassword::decode("pbkdf2-sha256$1$zz$00"), None);
    }

    #[test]
    fn constant_time_eq_compares_whole_slices() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
