//! The spend checks every generation passes, a conversation turn or a stateless completion
//! (docs/usage.md): the account's concurrency slot is taken while the turn's D1 read runs (in
//! parallel), then the daily quota is checked; a refused generation gives its slot back, and
//! an ended one gives it back and adds its usage.

use std::future::Future;

use worker::Env;

use crate::http::error::ApiError;
use crate::platform::ids;
use crate::spend::model as spend;
use crate::spend::model::TurnUsage;

use crate::config::Spend;
use crate::http::context::Ctx;
use crate::limits::client as limits;
use crate::platform::crypto::random_bytes;
use crate::platform::d1::Store;

pub struct Admitted<T> {
    /// What the read found (a persona, a conversation's context).
    pub context: T,
    /// The model the generation calls, checked against `ALLOWED_MODELS` (`spend::turn_model`).
    pub model: String,
    /// The slot this generation holds until it ends.
    pub lease: String,
}

/// `read` gives the generation's context and the account's tokens today, or `None` (404
/// naming `missing`); `model_of` the twin's own model in that context.
pub async fn admit<T, E: Into<ApiError>>(
    ctx: &Ctx,
    user_id: &str,
    spend: &Spend,
    missing: &'static str,
    read: impl Future<Output = Result<Option<(T, u64)>, E>>,
    model_of: impl FnOnce(&T) -> Option<String>,
) -> Result<Admitted<T>, ApiError> {
    let lease = ids::prefixed("gen", &random_bytes::<16>());
    let acquire = limits::acquire_generation(
        &ctx.env,
        user_id,
        &lease,
        spend.max_concurrent_generations,
        spend.lease_ms(),
    );
    let (read, slot) = futures::join!(read, acquire);
    let checked = (|| {
        // The order of faults: the object (404), then concurrency, then the quota, then the
        // twin's model (409).
        let (context, used_today) = read
            .map_err(Into::into)?
            .ok_or(ApiError::NotFound(missing))?;
        if let Some(retry_after) = slot? {
            return Err(ApiError::ConcurrencyLimitExceeded {
                limit: spend.max_concurrent_generations,
                retry_after,
            });
        }
        if spend.daily_token_quota > 0 && used_today >= spend.daily_token_quota {
            return Err(ApiError::TokenQuotaExceeded {
                limit: spend.daily_token_quota,
                retry_after: spend::secs_to_utc_midnight(ctx.now_ms),
            });
        }
        let model = spend::turn_model(model_of(&context), spend)?;
        Ok((context, model))
    })();
    match checked {
        Ok((context, model)) => Ok(Admitted {
            context,
            model,
            lease,
        }),
        Err(e) => {
            release(ctx, user_id, &lease).await;
            Err(e)
        }
    }
}

/// Gives a slot back at once (a refused or finished generation).
pub async fn release(ctx: &Ctx, user_id: &str, lease: &str) {
    let _ = limits::release_generation(&ctx.env, user_id, lease).await;
}

/// A generation ended, however: its slot goes back and its usage joins the account's totals
/// for `day`. Returned as a future so the caller decides where it runs (off the reply's path).
/// `reserved`: what admission already recorded for it (then only the difference is added).
pub fn ended(
    env: &Env,
    lease: Option<String>,
    day: String,
    turn: TurnUsage,
    reserved: Option<TurnUsage>,
) -> impl Future<Output = ()> + 'static {
    let env = env.clone();
    async move {
        if let Some(lease) = lease {
            let _ = limits::release_generation(&env, &turn.user_id, &lease).await;
        }
        let delta = match &reserved {
            Some(r) => turn.after(r),
            None => turn.delta(),
        };
        if let Ok(store) = Store::new(&env) {
            let _ = store.add_usage(&day, &turn, delta).await;
        }
    }
}

/// Records `reserved` (the prompt estimate and the most output allowed) as the turn's usage
/// before the upstream is called: a generation whose request the platform cancels, and whose
/// end therefore never runs, is still charged. `ended` corrects it to the real figures.
pub async fn reserve(env: &Env, day: &str, reserved: &TurnUsage) -> Result<(), ApiError> {
    Store::new(env)?
        .add_usage(day, reserved, reserved.delta())
        .await
        .map_err(ApiError::from)
}
