//! Settings: the `[vars]` parsed once per isolate into `config::Config` (a value that does
//! not parse makes every request answer 500, the log naming it), and the secrets.

use std::cell::OnceCell;
use std::rc::Rc;
use worker::Env;

use crate::config::Config;
use crate::http::error::ApiError;

pub fn var(env: &Env, name: &str) -> Option<String> {
    env.var(name)
        .ok()
        .map(|v| v.to_string())
        .filter(|v| !v.is_empty())
}

thread_local! {
    /// Vars are fixed for a deployment, so an isolate parses them once.
    static PARSED: OnceCell<Result<Rc<Config>, String>> = const { OnceCell::new() };
}

/// The deployment's settings; an error when a var does not parse (so nothing runs on a
/// configuration its operator did not mean).
pub fn get(env: &Env) -> Result<Rc<Config>, ApiError> {
    PARSED.with(|cell| {
        cell.get_or_init(|| Config::parse(|name| var(env, name)).map(Rc::new))
            .clone()
            .map_err(|e| ApiError::internal(format!("configuration: {e}")))
    })
}

pub fn secret(env: &Env, name: &'static str) -> Result<String, ApiError> {
    env.secret(name)
        .map(|s| s.to_string())
        .ok()
        .or_else(|| var(env, name))
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::internal(format!("{name} is not configured")))
}

/// `UPSTREAM_API_KEY`, if set (a local model server may need none).
pub fn upstream_key(env: &Env) -> Option<String> {
    secret(env, "UPSTREAM_API_KEY").ok()
}

/// `JWT_SECRET`, refused when missing or shorter than 32 bytes (every JWT route then answers
/// 500 and logs why).
pub fn jwt_secret(env: &Env) -> Result<String, ApiError> {
    let secret = self::secret(env, "JWT_SECRET")?;
    crate::auth::token::check_secret(&secret)?;
    Ok(secret)
}
