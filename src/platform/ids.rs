//! Base62 and prefixed random ids (`usr_…`, `key_…`): opaque, URL-safe, Stripe-style.

pub const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Maps random bytes to base62 characters without modulo bias: bytes >= 248 are skipped, so
/// callers pass a few more bytes than characters wanted (rejection is 8/256 per byte).
pub fn base62_from_random(random: &[u8], len: usize) -> Option<String> {
    let out: String = random
        .iter()
        .filter(|&&b| b < 248)
        .take(len)
        .map(|&b| BASE62[(b % 62) as usize] as char)
        .collect();
    (out.len() == len).then_some(out)
}

/// Fixed-width base62, most significant digit first, left-padded with '0'.
pub fn base62_fixed(mut n: u64, width: usize) -> String {
    let mut digits = vec![b'0'; width];
    for slot in digits.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    String::from_utf8(digits).expect("ascii")
}

pub fn is_base62(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// `prefix_` + base62 of the random bytes (one char per usable byte, up to 24).
pub fn prefixed(prefix: &str, random: &[u8]) -> String {
    let body: String = random
        .iter()
        .take(24)
        .map(|&b| BASE62[(b % 62) as usize] as char)
        .collect();
    format!("{prefix}_{body}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_width_base62() {
        assert_eq!(base62_fixed(0, 6), "000000");
        assert_eq!(base62_fixed(61, 6), "00000z");
        assert_eq!(base62_fixed(62, 6), "000010");
        assert_eq!(base62_fixed(u32::MAX as u64, 6), "4gfFC3");
    }

    #[test]
    fn rejection_sampling_skips_biased_bytes() {
        assert_eq!(
            base62_from_random(&[250, 0, 1, 61], 3).as_deref(),
            Some("01z")
        );
        assert_eq!(base62_from_random(&[255, 255], 1), None);
    }
}
