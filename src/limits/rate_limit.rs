//! The rate-limit algorithm (hourly window + burst bucket) as a pure state machine `(state, now) -> (decision, state)`:
//! a fixed window (started by the first request in it) and a token bucket, both must pass,
//! and a rejected request consumes nothing. The Durable Object only stores the state.

use serde::{Deserialize, Serialize};

use crate::http::error::LimitReason;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Policy {
    /// Requests per window (the "hourly" figure).
    pub limit: u64,
    pub window_secs: u64,
    /// Bucket capacity; it refills `burst` tokens per `burst_period_secs`.
    pub burst: u64,
    pub burst_period_secs: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct State {
    pub window_start_ms: Option<i64>,
    pub window_count: u64,
    /// `None` means a full bucket (a key never seen).
    pub tokens: Option<f64>,
    pub last_ms: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Decision {
    pub allowed: bool,
    pub limit: u64,
    pub remaining: u64,
    /// Unix seconds at which the current window ends.
    pub reset_at: u64,
    /// Seconds until the window ends (the `t=` of the `RateLimit` header).
    pub reset_in: u64,
    /// Set when rejected: which limit, its figure, and whole seconds to wait (>= 1).
    pub rejected_by: Option<Rejection>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rejection {
    pub reason: Reason,
    pub limit: u64,
    pub retry_after: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    Hourly,
    Burst,
}

impl From<Reason> for LimitReason {
    fn from(r: Reason) -> Self {
        match r {
            Reason::Hourly => LimitReason::Hourly,
            Reason::Burst => LimitReason::Burst,
        }
    }
}

fn ceil_secs(ms: i64) -> u64 {
    (ms.max(0) as u64).div_ceil(1000)
}

/// From when the state holds nothing that matters: its window is over and its bucket has
/// refilled, so forgetting it changes no decision.
pub fn idle_at(policy: &Policy, state: &State) -> i64 {
    let window_end = state
        .window_start_ms
        .map_or(0, |start| start + (policy.window_secs * 1000) as i64);
    let refilled = state.last_ms + (policy.burst_period_secs * 1000) as i64;
    window_end.max(refilled)
}

pub fn check(policy: &Policy, state: State, now_ms: i64) -> (Decision, State) {
    // A clock that goes backwards is treated as no time passing: no refill, no new window.
    let now = now_ms.max(state.last_ms);
    let window_ms = (policy.window_secs * 1000) as i64;
    let (start, count) = match state.window_start_ms {
        Some(start) if now < start + window_ms => (start, state.window_count),
        _ => (now, 0),
    };
    let capacity = policy.burst as f64;
    let refill_per_ms = capacity / (policy.burst_period_secs.max(1) * 1000) as f64;
    let elapsed = (now - state.last_ms) as f64;
    let tokens = state
        .tokens
        .map_or(capacity, |t| (t + elapsed * refill_per_ms).min(capacity));

    let window_end = start + window_ms;
    let rejected_by = if count >= policy.limit {
        Some(Rejection {
            reason: Reason::Hourly,
            limit: policy.limit,
            retry_after: ceil_secs(window_end - now).max(1),
        })
    } else if tokens < 1.0 {
        let wait_ms = ((1.0 - tokens) / refill_per_ms).ceil() as i64;
        Some(Rejection {
            reason: Reason::Burst,
            limit: policy.burst,
            retry_after: ceil_secs(wait_ms).max(1),
        })
    } else {
        None
    };
    let allowed = rejected_by.is_none();
    let (count, tokens) = if allowed {
        (count + 1, tokens - 1.0)
    } else {
        (count, tokens)
    };
    let decision = Decision {
        allowed,
        limit: policy.limit,
        remaining: policy.limit.saturating_sub(count),
        reset_at: ceil_secs(window_end),
        reset_in: ceil_secs(window_end - now),
        rejected_by,
    };
    let next = State {
        window_start_ms: Some(start),
        window_count: count,
        tokens: Some(tokens),
        last_ms: now,
    };
    (decision, next)
}

/// Gives back one request counted in the current window (a login that turned out right): the
/// limit counts before the work it guards, so concurrent attempts cannot all pass one check.
pub fn refund(policy: &Policy, state: State) -> State {
    State {
        window_count: state.window_count.saturating_sub(1),
        tokens: state.tokens.map(|t| (t + 1.0).min(policy.burst as f64)),
        ..state
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refund_gives_back_one_request_and_never_goes_below_zero() {
        let p = Policy {
            limit: 2,
            window_secs: 60,
            burst: 2,
            burst_period_secs: 60,
        };
        let mut s = State::default();
        assert!(run(&p, &mut s, T0).allowed);
        assert!(run(&p, &mut s, T0).allowed);
        assert!(!run(&p, &mut s, T0).allowed);
        s = refund(&p, s);
        assert!(
            run(&p, &mut s, T0).allowed,
            "the refunded request is free again"
        );
        let empty = refund(&p, refund(&p, refund(&p, s)));
        assert_eq!(empty.window_count, 0);
        assert_eq!(empty.tokens, Some(2.0), "never above capacity");
    }

    #[test]
    fn state_is_idle_once_its_window_and_bucket_are_over() {
        let p = Policy {
            limit: 10,
            window_secs: 60,
            burst: 5,
            burst_period_secs: 10,
        };
        let (_, s) = check(&p, State::default(), 1_000);
        assert_eq!(idle_at(&p, &s), 61_000);
        let (_, s) = check(&p, s, 58_000);
        assert_eq!(
            idle_at(&p, &s),
            68_000,
            "the bucket refills after the window ends"
        );
    }

    const READ_ONLY: Policy = Policy {
        limit: 200,
        window_secs: 3600,
        burst: 50,
        burst_period_secs: 60,
    };
    const T0: i64 = 1_800_000_000_000;

    fn run(policy: &Policy, state: &mut State, now: i64) -> Decision {
        let (d, s) = check(policy, *state, now);
        *state = s;
        d
    }

    #[test]
    fn burst_admits_exactly_capacity_at_one_instant() {
        let mut s = State::default();
        let admitted = (0..70)
            .filter(|_| run(&READ_ONLY, &mut s, T0).allowed)
            .count();
        assert_eq!(admitted, 50);
        let d = run(&READ_ONLY, &mut s, T0);
        let r = d.rejected_by.unwrap();
        assert_eq!((r.reason, r.limit, r.retry_after), (Reason::Burst, 50, 2)); // 1 token per 1.2 s
        assert_eq!(d.remaining, 150);
    }

    #[test]
    fn rejected_requests_consume_nothing() {
        let mut s = State::default();
        for _ in 0..50 {
            run(&READ_ONLY, &mut s, T0);
        }
        let before = s;
        assert!(!run(&READ_ONLY, &mut s, T0).allowed);
        assert_eq!(s.window_count, before.window_count);
        assert_eq!(s.tokens, before.tokens);
    }

    #[test]
    fn bucket_refills_over_time() {
        let mut s = State::default();
        for _ in 0..50 {
            run(&READ_ONLY, &mut s, T0);
        }
        assert!(!run(&READ_ONLY, &mut s, T0 + 1_000).allowed);
        assert!(run(&READ_ONLY, &mut s, T0 + 1_200).allowed);
        assert!(!run(&READ_ONLY, &mut s, T0 + 1_200).allowed);
        // After a full period the bucket is full again, never above capacity.
        let admitted = (0..60)
            .filter(|_| run(&READ_ONLY, &mut s, T0 + 600_000).allowed)
            .count();
        assert_eq!(admitted, 50);
    }

    #[test]
    fn hourly_cap_and_window_roll_over() {
        let p = Policy {
            limit: 3,
            window_secs: 3600,
            burst: 100,
            burst_period_secs: 60,
        };
        let mut s = State::default();
        let first = run(&p, &mut s, T0);
        assert_eq!(
            (first.remaining, first.reset_at, first.reset_in),
            (2, (T0 / 1000) as u64 + 3600, 3600)
        );
        run(&p, &mut s, T0 + 10);
        assert_eq!(run(&p, &mut s, T0 + 20).remaining, 0);
        let d = run(&p, &mut s, T0 + 1_000);
        let r = d.rejected_by.unwrap();
        assert_eq!(
            (r.reason, r.limit, r.retry_after),
            (Reason::Hourly, 3, 3599)
        );
        // The window starts with the first request and lasts exactly window_secs.
        assert!(!run(&p, &mut s, T0 + 3_599_999).allowed);
        let next = run(&p, &mut s, T0 + 3_600_000);
        assert!(next.allowed);
        assert_eq!(next.remaining, 2);
        assert_eq!(next.reset_at, (T0 / 1000) as u64 + 7200);
    }

    #[test]
    fn clock_going_backwards_neither_refills_nor_resets() {
        let p = Policy {
            limit: 2,
            window_secs: 60,
            burst: 1,
            burst_period_secs: 60,
        };
        let mut s = State::default();
        assert!(run(&p, &mut s, T0).allowed);
        assert!(!run(&p, &mut s, T0 - 120_000).allowed);
        assert_eq!(s.last_ms, T0);
        assert_eq!(s.window_start_ms, Some(T0));
    }

    #[test]
    fn retry_after_is_at_least_one_second() {
        let p = Policy {
            limit: 1,
            window_secs: 60,
            burst: 10,
            burst_period_secs: 60,
        };
        let mut s = State::default();
        run(&p, &mut s, T0);
        let d = run(&p, &mut s, T0 + 59_999);
        assert_eq!(d.rejected_by.unwrap().retry_after, 1);
    }
}
