//! The spend checks every generation passes, a conversation turn or a stateless completion
//! (docs/usage.md): the account's object takes a concurrency slot and checks the daily quota
//! while the twin's passages are found (in parallel); a refused generation gives its slot back, and
//! an ended one gives it back and adds its usage, in one call to the account's object.

use std::future::Future;

use worker::Env;

use crate::http::error::ApiError;
use crate::platform::ids;
use crate::spend::model as spend;
use crate::spend::model::TurnUsage;

use crate::accounts::client as accounts;
use crate::accounts::model::{Admission, Op};
use crate::http::context::{Call, Ctx, Principal};
use crate::limits::client as limits;
use crate::limits::rate_limit::Policy;
use crate::platform::crypto::random_bytes;
use crate::platform::instance::Instance;

pub struct Admitted<T> {
    /// What the read found (a conversation's row or a twin's persona, with the passages).
    pub context: T,
    /// The model the generation calls, checked against `ALLOWED_MODELS` (`spend::turn_model`).
    pub model: String,
    /// The slot this generation holds until it ends.
    pub lease: String,
    /// Set when the slot is only held (taken before the verdict): the generation's owner
    /// confirms it for this long as the generation starts.
    pub held: Option<i64>,
}

/// How long a slot taken before the caller's verdict is held (in the account object's memory
/// only) for its generation to start and confirm it, which takes one round trip; a request cut
/// off in between frees it then.
pub const HOLD_MS: i64 = 10_000;

/// Admits a generation: `read` gives its context (a conversation's row, a twin's persona), or
/// `None` (404 naming `missing`); `model_of` the twin's own model in it. The account's object
/// takes the slot and checks the day's tokens in one round trip, beside the read.
///
/// A handler started ahead of its caller's verdict (`Call::verified`) with `hold` takes the
/// slot beside the verdict too, but only held in the object's memory: the admission and the
/// read are one round trip together with the verification, and the caller of `admit` confirms
/// the slot (`Admitted::held`) once the generation starts; a refused verdict gives it back at
/// once. Without `hold` the slot is taken only after the verdict, beside the rest of the read.
pub async fn admit<T>(
    ctx: &Ctx,
    call: &Call,
    hold: bool,
    (missing, read): (
        &'static str,
        impl Future<Output = Result<Option<T>, ApiError>>,
    ),
    model_of: impl FnOnce(&T) -> Option<String>,
) -> Result<Admitted<T>, ApiError> {
    let user_id = call
        .principal
        .as_ref()
        .ok_or(ApiError::Unauthorized)?
        .user_id();
    let spend = &ctx.config.spend;
    let hold = hold && call.verdict.is_some();
    let lease = ids::prefixed("gen", &random_bytes::<16>());
    let day = spend::utc_day(ctx.now_ms);
    let admission = async {
        if !hold {
            call.verified().await?;
        }
        let ttl_ms = if hold { HOLD_MS } else { spend.lease_ms() };
        let slots = (spend.max_concurrent_generations, ttl_ms, hold);
        accounts::admit(
            &ctx.env,
            user_id,
            &lease,
            slots,
            &day,
            spend.daily_token_quota,
        )
        .await
    };
    let (read, admission) = futures::join!(read, admission);
    let verified = call.verified().await;
    let admitted = matches!(admission, Ok(Admission::Admitted));
    let checked = (|| {
        // The order of faults: the verdict (the pipeline answers it), the object (404), then
        // concurrency, then the quota, then the twin's model (409).
        verified?;
        let context = read?.ok_or(ApiError::NotFound(missing))?;
        match admission? {
            Admission::Admitted => {}
            Admission::Busy { retry_after } => {
                return Err(ApiError::ConcurrencyLimitExceeded {
                    limit: spend.max_concurrent_generations,
                    retry_after,
                })
            }
            Admission::OverQuota => {
                return Err(ApiError::TokenQuotaExceeded {
                    limit: spend.daily_token_quota,
                    retry_after: spend::secs_to_utc_midnight(ctx.now_ms),
                })
            }
        }
        let model = spend::turn_model(model_of(&context), spend)?;
        Ok((context, model))
    })();
    match checked {
        Ok((context, model)) => Ok(Admitted {
            context,
            model,
            lease,
            held: hold.then(|| spend.lease_ms()),
        }),
        Err(e) => {
            if admitted {
                release(ctx, user_id, &lease).await;
            }
            Err(e)
        }
    }
}

/// The caller's key's per-end-user limits (SPEC §16), for the generation holding `lease` for
/// `end_user`: the messages of the last hour, counted exactly by the end user's own object (this
/// generation included), and the day's tokens, checked by the account's object against what
/// the end user's turns recorded plus what their running ones hold; an admitted generation then
/// holds the most it may use until its usage is recorded, so parallel turns cannot all pass.
/// Keys without limits, and generations without an end user, pass at once; a refused
/// generation's slot (and any hold) goes back before the refusal is answered.
pub async fn end_user(
    ctx: &Ctx,
    caller: &Principal,
    end_user: Option<&str>,
    lease: &str,
) -> Result<(), ApiError> {
    let (Some(limits), Some(end_user_id)) = (caller.end_user_limits(), end_user) else {
        return Ok(());
    };
    let user_id = caller.user_id();
    let messages = async {
        let Some(n) = limits.messages_per_hour else {
            return Ok(None);
        };
        let policy = Policy {
            limit: n,
            window_secs: 3600,
            burst: n,
            burst_period_secs: 3600,
        };
        let instance = Instance::EndUser {
            user_id,
            end_user_id,
        };
        limits::limit(&ctx.env, instance, policy)
            .await
            .map(|d| d.rejected_by.map(|r| (n, r.retry_after)))
    };
    let spend = &ctx.config.spend;
    let tokens = async {
        let Some(limit) = limits.tokens_per_day else {
            return Ok(None);
        };
        let op = Op::EndUserAdmit {
            lease: lease.to_owned(),
            day: spend::utc_day(ctx.now_ms),
            end_user_id: end_user_id.to_owned(),
            limit,
            hold: spend.max_output_tokens,
            ttl_ms: spend.lease_ms(),
        };
        accounts::end_user_admit(&ctx.env, user_id, &op)
            .await
            .map(|admitted| (!admitted).then_some(limit))
    };
    let (messages, tokens) = futures::join!(messages, tokens);
    let refusal = end_user_refusal(ctx, messages, tokens);
    if refusal.is_err() {
        release(ctx, user_id, lease).await;
    }
    refusal
}

/// The end user's two checks as the refusal they mean, if any (messages first).
fn end_user_refusal(
    ctx: &Ctx,
    messages: Result<Option<(u64, u64)>, ApiError>,
    tokens: Result<Option<u64>, ApiError>,
) -> Result<(), ApiError> {
    if let Some((limit, retry_after)) = messages? {
        return Err(ApiError::EndUserLimitExceeded {
            which: "messagesPerHour",
            limit,
            window_secs: 3600,
            retry_after,
        });
    }
    if let Some(limit) = tokens? {
        return Err(ApiError::EndUserLimitExceeded {
            which: "tokensPerDay",
            limit,
            window_secs: 86_400,
            retry_after: spend::secs_to_utc_midnight(ctx.now_ms),
        });
    }
    Ok(())
}

/// Gives a slot back at once (a refused or finished generation).
pub async fn release(ctx: &Ctx, user_id: &str, lease: &str) {
    let _ = accounts::release(&ctx.env, user_id, lease).await;
}

/// A generation ended, however: its slot goes back and its usage joins the account's totals
/// for `day`, in one call to the account's object. Returned as a future so the caller decides
/// where it runs (off the reply's path). `reserved`: what admission already recorded for it
/// (then only the difference is added). `event`: the webhook event its end emits.
pub fn ended(
    env: &Env,
    lease: Option<String>,
    day: String,
    turn: TurnUsage,
    reserved: Option<TurnUsage>,
    event: Option<String>,
) -> impl Future<Output = ()> + 'static {
    let env = env.clone();
    async move {
        let delta = match &reserved {
            Some(r) => turn.after(r),
            None => turn.delta(),
        };
        let _ = accounts::record(&env, lease, &day, &turn, delta, event).await;
    }
}

/// Records `reserved` (the prompt estimate and the most output allowed) as the turn's usage
/// before the upstream is called: a generation whose request the platform cancels, and whose
/// end therefore never runs, is still charged. `ended` corrects it to the real figures.
pub async fn reserve(env: &Env, day: &str, reserved: &TurnUsage) -> Result<(), ApiError> {
    accounts::record(env, None, day, reserved, reserved.delta(), None).await
}
