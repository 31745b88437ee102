//! `X-Request-Id`: echo a well-formed client id, otherwise mint `req_` + 24 random chars.

use crate::platform::ids;

pub fn accept(client_value: Option<&str>) -> Option<String> {
    let v = client_value?;
    let ok = (1..=128).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    ok.then(|| v.to_owned())
}

pub fn generate(random: &[u8]) -> String {
    ids::prefixed("req", random)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echoes_only_safe_ids() {
        assert_eq!(accept(Some("abc-123_x.y")), Some("abc-123_x.y".into()));
        assert_eq!(accept(Some("")), None);
        assert_eq!(accept(Some("has space")), None);
        assert_eq!(accept(Some("<script>")), None);
        assert_eq!(accept(Some(&"a".repeat(128))), Some("a".repeat(128)));
        assert_eq!(accept(Some(&"a".repeat(129))), None);
        assert_eq!(accept(None), None);
    }

    #[test]
    fn generated_ids_have_the_prefix_and_length() {
        let id = generate(&[7u8; 24]);
        assert!(id.starts_with("req_"));
        assert_eq!(id.len(), 4 + 24);
        assert!(accept(Some(&id)).is_some());
    }
}
