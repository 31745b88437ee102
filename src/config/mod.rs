//! The deployment's settings (`[vars]`), parsed once per isolate and checked: a value that does
//! not parse is an error naming it, never a silent fallback to the default. Defaults are the
//! README's configuration table, in one place.

#[cfg(target_arch = "wasm32")]
pub mod env;

use crate::auth::credentials::Scope;
use crate::limits::rate_limit::Policy;
use crate::spend::model as spend;

/// The spend controls (docs/usage.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spend {
    pub default_model: String,
    pub allowed_models: Vec<String>,
    pub max_output_tokens: u64,
    pub max_api_keys: u64,
    pub max_concurrent_generations: u64,
    /// 0: unlimited.
    pub daily_token_quota: u64,
    pub generation_max_secs: u64,
}

impl Spend {
    /// A generation's slot outlives its longest possible run by a minute, then frees itself.
    pub fn lease_ms(&self) -> i64 {
        (self.generation_max_secs as i64 + 60) * 1000
    }
}

impl Config {
    /// How long after a reply starts its event log may be compacted: its replay window counted
    /// from the latest it can end (a generation runs at most `GENERATION_MAX_SECS`).
    pub fn compaction_after_ms(&self) -> i64 {
        (self.replay_window_secs + self.spend.generation_max_secs) as i64 * 1000
    }
}

/// How the upstream model is called (its key is a secret, read apart). Sent with each turn to
/// the conversation's object, whose worker reads no vars of its own.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpstreamSettings {
    pub base_url: String,
    pub first_byte_ms: u64,
    pub idle_ms: u64,
    /// The whole generation's deadline (`GENERATION_MAX_SECS`).
    pub total_ms: u64,
    pub ping_ms: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub spend: Spend,
    pub upstream: UpstreamSettings,
    pub history_token_budget: usize,
    pub max_knowledge_docs: u64,
    /// Twins an account may have (not deleted).
    pub max_twins: u64,
    /// Characters of knowledge an account's twins may hold in all.
    pub max_knowledge_chars: u64,
    /// How long a finished generation's event log stays whole for a resumed stream (§6.2).
    pub replay_window_secs: u64,
    pub jwt_ttl_secs: i64,
    pub key_record_ttl_ms: i64,
    /// Comma-separated CORS origins, or `*`.
    pub allowed_origins: String,
    pub read_only: Policy,
    pub full_access: Policy,
    /// Login and register attempts per client IP.
    pub auth_attempts: Policy,
    /// Failed API-key attempts per client IP.
    pub auth_failures: Policy,
    /// Registrations per client IP (an IPv6 /64) per UTC day.
    pub signups_per_ip_per_day: u64,
}

/// A limit of `n` per `secs`, counted as both window and bucket.
fn per(n: u64, secs: u64) -> Policy {
    Policy {
        limit: n,
        window_secs: secs,
        burst: n,
        burst_period_secs: secs,
    }
}

/// Failed logins per account email: 10 in 15 minutes, whatever the IP.
pub fn login_failure_policy() -> Policy {
    per(10, 15 * 60)
}

/// Registrations per client IP in the UTC day that `now_ms` falls in, `limit` of them. The
/// counter's name carries the day (see the caller), so the window is the calendar day.
pub fn signup_policy(limit: u64) -> Policy {
    per(limit, 24 * 3600)
}

/// Reads variables, collecting every one that does not parse.
struct Vars<F> {
    get: F,
    errors: Vec<String>,
}

impl<F: Fn(&str) -> Option<String>> Vars<F> {
    fn text(&self, name: &str) -> Option<String> {
        (self.get)(name).filter(|v| !v.trim().is_empty())
    }

    fn u64(&mut self, name: &str, default: u64) -> u64 {
        match self.text(name) {
            None => default,
            Some(v) => v.trim().parse().unwrap_or_else(|_| {
                self.errors
                    .push(format!("{name} must be a whole number, not {v:?}"));
                default
            }),
        }
    }
}

impl<F: Fn(&str) -> Option<String>> Vars<F> {
    /// The `read_only` and `full_access` key limits.
    fn key_policies(&mut self) -> (Policy, Policy) {
        let window_secs = self.u64("RATE_LIMIT_WINDOW_SECS", 3600);
        let burst_period_secs = self.u64("RATE_LIMIT_BURST_PERIOD_SECS", 60);
        let mut policy = |scope: &str, hourly, burst| Policy {
            limit: self.u64(&format!("RATE_LIMIT_{scope}_HOURLY"), hourly),
            window_secs,
            burst: self.u64(&format!("RATE_LIMIT_{scope}_BURST"), burst),
            burst_period_secs,
        };
        (
            policy("READ_ONLY", 200, 50),
            policy("FULL_ACCESS", 500, 100),
        )
    }

    fn upstream(&mut self, generation_max_secs: u64) -> UpstreamSettings {
        UpstreamSettings {
            base_url: self
                .text("UPSTREAM_BASE_URL")
                .unwrap_or_else(|| "https://api.openai.com/v1".into()),
            first_byte_ms: self.u64("UPSTREAM_FIRST_BYTE_TIMEOUT_MS", 30_000),
            idle_ms: self.u64("UPSTREAM_IDLE_TIMEOUT_MS", 60_000),
            total_ms: generation_max_secs * 1000,
            ping_ms: self.u64("SSE_PING_SECS", 15) * 1000,
        }
    }
}

impl Config {
    /// Parses the variables `get` returns; `Err` names every one that is wrong.
    pub fn parse(get: impl Fn(&str) -> Option<String>) -> Result<Config, String> {
        let mut v = Vars {
            get,
            errors: Vec::new(),
        };
        let default_model = v
            .text("DEFAULT_MODEL")
            .unwrap_or_else(|| "gpt-4o-mini".into());
        let (read_only, full_access) = v.key_policies();
        let generation_max_secs = v.u64("GENERATION_MAX_SECS", 300);
        let config = Config {
            spend: Spend {
                allowed_models: spend::allowed_models(
                    v.text("ALLOWED_MODELS").as_deref(),
                    &default_model,
                ),
                default_model,
                max_output_tokens: v.u64("MAX_OUTPUT_TOKENS", 1024),
                max_api_keys: v.u64("MAX_API_KEYS_PER_ACCOUNT", 25),
                max_concurrent_generations: v.u64("MAX_CONCURRENT_GENERATIONS", 5),
                daily_token_quota: v.u64("DAILY_TOKEN_QUOTA", 1_000_000),
                generation_max_secs,
            },
            upstream: v.upstream(generation_max_secs),
            history_token_budget: v.u64("HISTORY_TOKEN_BUDGET", 3000) as usize,
            max_knowledge_docs: v.u64("MAX_KNOWLEDGE_DOCS_PER_TWIN", 200),
            max_twins: v.u64("MAX_TWINS_PER_ACCOUNT", 100),
            max_knowledge_chars: v.u64("MAX_KNOWLEDGE_CHARS_PER_ACCOUNT", 50_000_000),
            replay_window_secs: v.u64("EVENT_LOG_RETENTION_SECS", 86_400),
            jwt_ttl_secs: v.u64("JWT_TTL_SECS", crate::auth::token::DEFAULT_TTL_SECS as u64) as i64,
            key_record_ttl_ms: v.u64("KEY_RECORD_TTL_SECS", 300) as i64 * 1000,
            allowed_origins: v.text("ALLOWED_ORIGINS").unwrap_or_else(|| "*".into()),
            read_only,
            full_access,
            auth_attempts: per(v.u64("AUTH_ATTEMPTS_PER_MINUTE", 10), 60),
            auth_failures: per(v.u64("AUTH_FAILURES_PER_MINUTE", 100), 60),
            signups_per_ip_per_day: v.u64("SIGNUPS_PER_IP_PER_DAY", 5),
        };
        if v.errors.is_empty() {
            Ok(config)
        } else {
            Err(v.errors.join("; "))
        }
    }

    /// Every default: what a deployment with no vars runs with.
    pub fn defaults() -> Config {
        Config::parse(|_| None).unwrap_or_else(|_| unreachable!("no variable, no error"))
    }

    /// A key's limits by its scope (a session counts as `full_access`).
    pub fn key_policy(&self, scope: Scope) -> Policy {
        match scope {
            Scope::ReadOnly => self.read_only,
            Scope::FullAccess => self.full_access,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(vars: &[(&str, &str)]) -> Result<Config, String> {
        Config::parse(|name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let c = parse(&[]).unwrap();
        assert_eq!(c.spend.default_model, "gpt-4o-mini");
        assert_eq!(c.spend.allowed_models, vec!["gpt-4o-mini"]);
        assert_eq!(c.spend.max_output_tokens, 1024);
        assert_eq!(c.spend.lease_ms(), 360_000);
        assert_eq!(c.key_policy(Scope::ReadOnly).limit, 200);
        assert_eq!(c.key_policy(Scope::FullAccess).burst, 100);
        assert_eq!(c.upstream.total_ms, 300_000);
        assert_eq!(c.max_knowledge_docs, 200);
        assert_eq!(c.max_twins, 100);
        assert_eq!(c.max_knowledge_chars, 50_000_000);
        assert_eq!(c.compaction_after_ms(), (86_400 + 300) * 1000);
        assert_eq!(c.allowed_origins, "*");
        assert_eq!(c.signups_per_ip_per_day, 5);
    }

    #[test]
    fn values_are_read_and_empty_ones_mean_the_default() {
        let c = parse(&[
            ("MAX_OUTPUT_TOKENS", " 64 "),
            ("RATE_LIMIT_WINDOW_SECS", "60"),
            ("DEFAULT_MODEL", "twin-local-1"),
            ("ALLOWED_MODELS", ""),
        ])
        .unwrap();
        assert_eq!(c.spend.max_output_tokens, 64);
        assert_eq!(c.read_only.window_secs, 60);
        assert_eq!(c.spend.allowed_models, vec!["twin-local-1"]);
    }

    #[test]
    fn a_value_that_does_not_parse_is_an_error_naming_it() {
        let err = parse(&[("MAX_OUTPUT_TOKENS", "lots"), ("DAILY_TOKEN_QUOTA", "-1")]).unwrap_err();
        assert!(
            err.contains("MAX_OUTPUT_TOKENS") && err.contains("\"lots\""),
            "{err}"
        );
        assert!(err.contains("DAILY_TOKEN_QUOTA"), "{err}");
    }
}
