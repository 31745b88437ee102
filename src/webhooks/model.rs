//! Webhooks (SPEC §15, docs/webhooks.md): the events, an endpoint's rules (its URL, its events),
//! the Standard Webhooks signature, the retry schedule. Pure: unit-tested natively.

use base64ct::{Base64, Encoding};
use hmac::{Hmac, Mac};
use serde_json::{json, Map, Value};
use sha2::Sha256;

use crate::http::error::{ApiError, FieldErrors};

pub const EVENTS: [&str; 7] = [
    "message.completed",
    "message.incomplete",
    "message.failed",
    "message.cancelled",
    "knowledge.document.ready",
    "knowledge.document.failed",
    "quota.reached",
];

/// Waits before the 2nd, 3rd, … attempt (about 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h): eight
/// attempts over about 31 hours.
pub const RETRY_SECS: [u64; 7] = [5, 300, 1800, 7200, 18000, 36000, 50400];
/// A receiver has this long to answer with a 2xx.
pub const TIMEOUT_MS: u64 = 15_000;
/// An endpoint that has failed every delivery for this long is disabled.
pub const DISABLE_AFTER_MS: i64 = 5 * 24 * 3600 * 1000;
/// The most endpoints an account may have.
pub const MAX_ENDPOINTS: usize = 16;
pub const MAX_URL: usize = 2048;
pub const MAX_DESCRIPTION: usize = 500;

/// What the API passes to the account's object with each op that may deliver: its vars
/// (`WEBHOOK_RETRY_SCHEDULE_SECS`, `WEBHOOK_ALLOW_HTTP_HOSTS`), read there as plain strings.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub retry_secs: Vec<u64>,
    /// `host` or `host:port` values that may be reached over plain `http`, loopback included.
    pub allow_http_hosts: Vec<String>,
    /// An endpoint failing every delivery this long is disabled (`WEBHOOK_DISABLE_AFTER_SECS`).
    pub disable_after_ms: i64,
}

impl Settings {
    pub fn from_json(v: &Value) -> Settings {
        let retry_secs = v["retrySecs"]
            .as_str()
            .filter(|s| !s.trim().is_empty())
            .map(|s| s.split(',').filter_map(|n| n.trim().parse().ok()).collect())
            .unwrap_or_else(|| RETRY_SECS.to_vec());
        let allow_http_hosts = v["allowHttpHosts"]
            .as_str()
            .unwrap_or("")
            .split(',')
            .map(|h| h.trim().to_ascii_lowercase())
            .filter(|h| !h.is_empty())
            .collect();
        let disable_after_ms = v["disableAfterSecs"]
            .as_str()
            .and_then(|s| s.trim().parse::<i64>().ok())
            .map_or(DISABLE_AFTER_MS, |secs| secs.saturating_mul(1000));
        Settings {
            retry_secs,
            allow_http_hosts,
            disable_after_ms,
        }
    }

    /// The wait before the next attempt after `attempts` attempts, or `None`: that was the last.
    pub fn retry_after_secs(&self, attempts: u64) -> Option<u64> {
        let i = usize::try_from(attempts).ok()?.checked_sub(1)?;
        self.retry_secs.get(i).copied()
    }
}

/// A new endpoint's fields, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct EndpointInput {
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
    pub description: Option<String>,
    pub enabled: Option<bool>,
}

/// Reads `POST /webhooks` (`create`: url and events required) or `PATCH /webhooks/{id}`.
pub fn endpoint_input(
    body: &Value,
    create: bool,
    settings: &Settings,
) -> Result<EndpointInput, ApiError> {
    let mut errors = FieldErrors::new();
    let mut fail = |field: &str, reason: &str| {
        errors.insert(field.to_owned(), reason.to_owned());
    };
    let known = ["url", "events", "description", "enabled"];
    if let Some(other) = body
        .as_object()
        .and_then(|o| o.keys().find(|k| !known.contains(&k.as_str())))
    {
        fail(other, "is not a field of a webhook endpoint");
    }
    let url = match &body["url"] {
        Value::Null if create => {
            fail("url", "is required");
            None
        }
        Value::Null => None,
        Value::String(u) => match check_url(u, settings) {
            Ok(()) => Some(u.clone()),
            Err(reason) => {
                fail("url", reason);
                None
            }
        },
        _ => {
            fail("url", "must be a string");
            None
        }
    };
    let events = match &body["events"] {
        Value::Null if create => {
            fail("events", "is required: a list of event types");
            None
        }
        Value::Null => None,
        Value::Array(list) if !list.is_empty() => {
            let names: Vec<String> = list
                .iter()
                .filter_map(|e| e.as_str().map(str::to_owned))
                .collect();
            if names.len() != list.len() || names.iter().any(|n| !EVENTS.contains(&n.as_str())) {
                fail(
                    "events",
                    &format!("each must be one of {}", EVENTS.join(", ")),
                );
                None
            } else {
                let mut names = names;
                names.sort();
                names.dedup();
                Some(names)
            }
        }
        _ => {
            fail("events", "must be a non-empty list of event types");
            None
        }
    };
    let description = match &body["description"] {
        Value::Null => None,
        Value::String(d) if d.chars().count() <= MAX_DESCRIPTION => Some(d.clone()),
        _ => {
            fail("description", "must be a string of at most 500 characters");
            None
        }
    };
    let enabled = match &body["enabled"] {
        Value::Null => None,
        Value::Bool(b) if !create => Some(*b),
        _ => {
            fail("enabled", "must be true or false, on an existing endpoint");
            None
        }
    };
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    Ok(EndpointInput {
        url,
        events,
        description,
        enabled,
    })
}

/// `https://` to a public host; `http://` only to a host in `WEBHOOK_ALLOW_HTTP_HOSTS`. A
/// private, loopback or link-local address, or a name that can only mean one, is refused
/// unless allowed that way (Workers cannot resolve a name first; on Cloudflare an outgoing
/// fetch reaches only the public internet anyway).
pub fn check_url(url: &str, settings: &Settings) -> Result<(), &'static str> {
    if url.len() > MAX_URL || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("must be a URL of at most 2048 characters, without spaces");
    }
    let (scheme, rest) = url.split_once("://").ok_or("must be an absolute URL")?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.is_empty() || authority.contains('@') {
        return Err("must name a host (and no user or password)");
    }
    let authority = authority.to_ascii_lowercase();
    let host = host_of(&authority);
    let allowed = settings
        .allow_http_hosts
        .iter()
        .any(|a| *a == authority || *a == host);
    match scheme.to_ascii_lowercase().as_str() {
        "https" => {}
        "http" if allowed => {}
        "http" => return Err("must use https"),
        _ => return Err("must be an https URL"),
    }
    if !allowed && is_private_host(host) {
        return Err("must not point to a private, loopback or link-local address");
    }
    Ok(())
}

/// The host of `host[:port]` (an IPv6 literal without its brackets).
fn host_of(authority: &str) -> &str {
    if let Some(v6) = authority.strip_prefix('[') {
        return v6.split(']').next().unwrap_or("");
    }
    authority.split(':').next().unwrap_or("")
}

fn is_private_host(host: &str) -> bool {
    let host = host.trim_end_matches('.');
    if host == "localhost"
        || [".localhost", ".local", ".internal", ".home.arpa"]
            .iter()
            .any(|s| host.ends_with(s))
        || !host.contains('.') && !host.contains(':')
    {
        return true;
    }
    if let Ok(v4) = host.parse::<std::net::Ipv4Addr>() {
        let [a, b, ..] = v4.octets();
        return v4.is_private()
            || v4.is_loopback()
            || v4.is_link_local()
            || v4.is_unspecified()
            || v4.is_broadcast()
            || a == 0
            || (a == 100 && (64..128).contains(&b)); // carrier-grade NAT
    }
    if let Ok(v6) = host.parse::<std::net::Ipv6Addr>() {
        let first = v6.segments()[0];
        return v6.is_loopback()
            || v6.is_unspecified()
            || (first & 0xfe00) == 0xfc00 // unique local
            || (first & 0xffc0) == 0xfe80 // link-local
            || v6
                .to_ipv4_mapped()
                .is_some_and(|v4| is_private_host(&v4.to_string()));
    }
    false
}

/// A new signing secret: `whsec_` and 24 random bytes in base64.
pub fn new_secret(random: &[u8; 24]) -> String {
    format!("whsec_{}", Base64::encode_string(random))
}

/// The `webhook-signature` header of Standard Webhooks: `v1,` and the base64 HMAC-SHA256 of
/// `id.timestamp.body`, keyed with the secret's bytes (the base64 after `whsec_`).
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &str) -> Option<String> {
    let key = Base64::decode_vec(secret.strip_prefix("whsec_").unwrap_or(secret)).ok()?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).ok()?;
    mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
    Some(format!(
        "v1,{}",
        Base64::encode_string(&mac.finalize().into_bytes())
    ))
}

/// The event a message's end emits, from its final status (`None`: not an end).
pub fn message_event(status: &str) -> Option<&'static str> {
    match status {
        "completed" => Some("message.completed"),
        "incomplete" => Some("message.incomplete"),
        "failed" => Some("message.failed"),
        "cancelled" => Some("message.cancelled"),
        _ => None,
    }
}

/// The body a receiver gets: `{type, timestamp, data}`.
pub fn payload(event_type: &str, timestamp: &str, data: &Value) -> String {
    json!({ "type": event_type, "timestamp": timestamp, "data": data }).to_string()
}

/// An endpoint as the API shows it (`secret` only when it was just made).
pub fn endpoint_view(row: &Value, secret: Option<&str>) -> Value {
    let mut v = Map::new();
    v.insert("id".into(), row["id"].clone());
    v.insert("url".into(), row["url"].clone());
    let events: Value = row["events"]
        .as_str()
        .and_then(|e| serde_json::from_str(e).ok())
        .unwrap_or(json!([]));
    v.insert("events".into(), events);
    v.insert("description".into(), row["description"].clone());
    v.insert("enabled".into(), json!(row["enabled"].as_i64() == Some(1)));
    v.insert("createdAt".into(), row["created_at"].clone());
    if let Some(s) = secret {
        v.insert("secret".into(), json!(s));
    }
    Value::Object(v)
}

/// A delivery as the API shows it.
pub fn delivery_view(row: &Value, rfc3339: impl Fn(i64) -> String) -> Value {
    let time = |c: &str| row[c].as_i64().map(&rfc3339);
    json!({
        "id": row["id"],
        "webhookId": row["endpoint_id"],
        "eventId": row["event_id"],
        "eventType": row["event_type"],
        "status": row["status"],
        "attempts": row["attempts"],
        "responseCode": row["response_code"],
        "lastError": row["last_error"],
        "nextAttemptAt": if row["status"] == "pending" { time("next_at") } else { None },
        "createdAt": time("created_at"),
        "updatedAt": time("updated_at"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(allow: &str) -> Settings {
        Settings::from_json(&json!({ "allowHttpHosts": allow }))
    }

    #[test]
    fn signs_as_the_standard_webhooks_reference_does() {
        // The test vector of the Standard Webhooks libraries.
        let sig = sign(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            r#"{"test": 2432232314}"#,
        );
        assert_eq!(
            sig.as_deref(),
            Some("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
        );
        let secret = new_secret(&[7; 24]);
        assert!(secret.starts_with("whsec_") && sign(&secret, "a", 1, "b").is_some());
    }

    #[test]
    fn only_public_https_urls_unless_a_host_is_allowed() {
        let none = settings("");
        assert_eq!(check_url("https://hooks.example.com/x?y=1", &none), Ok(()));
        for bad in [
            "http://hooks.example.com/x",
            "ftp://hooks.example.com",
            "https://127.0.0.1/x",
            "https://10.1.2.3/x",
            "https://192.168.0.1/x",
            "https://172.16.5.5/x",
            "https://169.254.169.254/latest",
            "https://100.64.0.1/",
            "https://0.0.0.0/",
            "https://[::1]/x",
            "https://[fd00::1]/x",
            "https://[fe80::1]/x",
            "https://[::ffff:127.0.0.1]/x",
            "https://localhost/x",
            "https://api.localhost/x",
            "https://printer.local/x",
            "https://intranet/x",
            "https://user:pw@hooks.example.com/x",
            "hooks.example.com/x",
            "https:// hooks.example.com",
        ] {
            assert!(check_url(bad, &none).is_err(), "{bad}");
        }
        let local = settings("127.0.0.1:9000, localhost");
        assert_eq!(check_url("http://127.0.0.1:9000/hook", &local), Ok(()));
        assert_eq!(check_url("http://localhost:1234/hook", &local), Ok(()));
        assert!(check_url("http://127.0.0.1:9001/hook", &local).is_err());
    }

    #[test]
    fn the_schedule_has_eight_attempts_unless_shortened() {
        let default = Settings::from_json(&json!({}));
        assert_eq!(default.retry_after_secs(1), Some(5));
        assert_eq!(default.retry_after_secs(7), Some(50400));
        assert_eq!(default.retry_after_secs(8), None);
        assert_eq!(default.disable_after_ms, DISABLE_AFTER_MS);
        let short = Settings::from_json(&json!({ "retrySecs": "1, 2", "disableAfterSecs": "3" }));
        assert_eq!(short.disable_after_ms, 3000);
        assert_eq!(short.retry_after_secs(1), Some(1));
        assert_eq!(short.retry_after_secs(2), Some(2));
        assert_eq!(short.retry_after_secs(3), None);
    }

    #[test]
    fn endpoint_fields_are_checked() {
        let s = settings("");
        let ok = endpoint_input(
            &json!({"url": "https://x.example.com/h", "events": ["message.failed", "message.completed", "message.failed"]}),
            true,
            &s,
        )
        .unwrap();
        assert_eq!(ok.events.unwrap(), ["message.completed", "message.failed"]);
        let bad = endpoint_input(
            &json!({"url": "http://x.example.com", "events": ["message.eaten"], "colour": 1}),
            true,
            &s,
        )
        .unwrap_err();
        let ApiError::Validation(fields) = bad else {
            panic!("{bad:?}")
        };
        assert_eq!(
            fields.keys().collect::<Vec<_>>(),
            ["colour", "events", "url"]
        );
        assert!(endpoint_input(&json!({}), true, &s).is_err());
        assert!(endpoint_input(&json!({"enabled": false}), false, &s).is_ok());
        assert!(endpoint_input(&json!({"enabled": false}), true, &s).is_err());
    }
}
