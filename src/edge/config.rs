//! Settings from `[vars]` and secrets, each with the default the README's configuration table gives.

use worker::Env;

use crate::core::credentials::Scope;
use crate::core::error::ApiError;
use crate::core::rate_limit::Policy;
use crate::core::spend;

pub fn var(env: &Env, name: &str) -> Option<String> {
    env.var(name)
        .ok()
        .map(|v| v.to_string())
        .filter(|v| !v.is_empty())
}

pub fn var_u64(env: &Env, name: &str, default: u64) -> u64 {
    var(env, name)
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

pub fn secret(env: &Env, name: &'static str) -> Result<String, ApiError> {
    env.secret(name)
        .map(|s| s.to_string())
        .ok()
        .or_else(|| var(env, name))
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::internal(format!("{name} is not configured")))
}

/// `JWT_SECRET`, refused when missing or shorter than 32 bytes (every JWT route then answers
/// 500 and logs why).
pub fn jwt_secret(env: &Env) -> Result<String, ApiError> {
    let secret = self::secret(env, "JWT_SECRET")?;
    crate::core::token::check_secret(&secret)?;
    Ok(secret)
}

pub fn key_policy(env: &Env, scope: Scope) -> Policy {
    let (limit, burst) = match scope {
        Scope::ReadOnly => (
            var_u64(env, "RATE_LIMIT_READ_ONLY_HOURLY", 200),
            var_u64(env, "RATE_LIMIT_READ_ONLY_BURST", 50),
        ),
        Scope::FullAccess => (
            var_u64(env, "RATE_LIMIT_FULL_ACCESS_HOURLY", 500),
            var_u64(env, "RATE_LIMIT_FULL_ACCESS_BURST", 100),
        ),
    };
    Policy {
        limit,
        window_secs: var_u64(env, "RATE_LIMIT_WINDOW_SECS", 3600),
        burst,
        burst_period_secs: var_u64(env, "RATE_LIMIT_BURST_PERIOD_SECS", 60),
    }
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

/// Failed API-key attempts per client IP: `AUTH_FAILURES_PER_MINUTE`.
pub fn auth_failure_policy(env: &Env) -> Policy {
    per(var_u64(env, "AUTH_FAILURES_PER_MINUTE", 100), 60)
}

/// Failed logins per account email: 10 in 15 minutes, whatever the IP.
pub fn login_failure_policy() -> Policy {
    per(10, 15 * 60)
}

/// Login and register attempts per client IP: a one-minute window.
pub fn auth_attempt_policy(env: &Env) -> Policy {
    let n = var_u64(env, "AUTH_ATTEMPTS_PER_MINUTE", 10);
    Policy {
        limit: n,
        window_secs: 60,
        burst: n,
        burst_period_secs: 60,
    }
}

/// The spend controls (docs/usage.md), read once per request that needs them.
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
    pub fn from_env(env: &Env) -> Spend {
        let default_model = var(env, "DEFAULT_MODEL").unwrap_or_else(|| "gpt-4o-mini".into());
        Spend {
            allowed_models: spend::allowed_models(
                var(env, "ALLOWED_MODELS").as_deref(),
                &default_model,
            ),
            default_model,
            max_output_tokens: var_u64(env, "MAX_OUTPUT_TOKENS", 1024),
            max_api_keys: var_u64(env, "MAX_API_KEYS_PER_ACCOUNT", 25),
            max_concurrent_generations: var_u64(env, "MAX_CONCURRENT_GENERATIONS", 5),
            daily_token_quota: var_u64(env, "DAILY_TOKEN_QUOTA", 1_000_000),
            generation_max_secs: var_u64(env, "GENERATION_MAX_SECS", 300),
        }
    }

    /// A generation's slot outlives its longest possible run by a minute, then frees itself.
    pub fn lease_ms(&self) -> i64 {
        (self.generation_max_secs as i64 + 60) * 1000
    }
}
