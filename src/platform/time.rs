//! Timestamps: RFC 3339 UTC with milliseconds, which also sort correctly as text in D1.

use chrono::{DateTime, SecondsFormat, Utc};

pub fn rfc3339_ms(unix_ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(unix_ms)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub fn parse_rfc3339_ms(text: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_with_millis_and_z() {
        assert_eq!(rfc3339_ms(1_753_290_363_675), "2025-07-23T17:06:03.675Z");
        assert_eq!(rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn round_trips() {
        let t = 1_753_290_363_675;
        assert_eq!(parse_rfc3339_ms(&rfc3339_ms(t)), Some(t));
        assert_eq!(parse_rfc3339_ms("yesterday"), None);
    }
}
