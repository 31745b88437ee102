//! Per-key rate limits in the Durable Object: exact under concurrency, visible on
//! every response, persistent across restarts (all but the last second), configurable from [vars].

use crate::common::{Auth, Options, Reply, Scope, TestApp, TestKey, Var};
use serde_json::json;
use std::time::Instant;

crate::common::app!(AuthAttemptsPerMinute = "1000");

fn num(r: &Reply, name: &str) -> u64 {
    r.header(name)
        .unwrap_or_else(|| panic!("{name} missing: {:?}", r.headers))
        .parse()
        .unwrap()
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn assert_limit_headers(r: &Reply, hourly: u64, burst: u64) {
    assert_eq!(num(r, "X-RateLimit-Limit"), hourly);
    assert_eq!(num(r, "X-RateLimit-Window"), 3600);
    let reset = num(r, "X-RateLimit-Reset");
    assert!(
        reset > now_secs() && reset <= now_secs() + 3601,
        "reset {reset}"
    );
    assert_eq!(
        r.header("RateLimit-Policy").unwrap(),
        format!("\"hourly\";q={hourly};w=3600, \"burst\";q={burst};w=60")
    );
    let remaining = num(r, "X-RateLimit-Remaining");
    let t = reset.saturating_sub(now_secs());
    let rl = r.header("RateLimit").unwrap();
    assert!(
        rl.starts_with(&format!("\"hourly\";r={remaining};t=")),
        "{rl}"
    );
    let t_header: u64 = rl.rsplit("t=").next().unwrap().parse().unwrap();
    assert!(t_header.abs_diff(t) <= 2, "{rl} vs {t}");
}

#[test]
fn seventy_concurrent_requests_admit_exactly_the_burst() {
    let jwt = app().user().jwt;
    let key = app().key(&jwt, Scope::ReadOnly).secret;
    let started = Instant::now();
    let replies: Vec<Reply> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..70)
            .map(|_| s.spawn(|| app().get("/api/v1/auth/me", Auth::Bearer(&key))))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    // read_only refills 50 tokens per 60 s: allow what could have refilled while this ran.
    let refilled = (started.elapsed().as_secs_f64() * 50.0 / 60.0).floor() as usize;
    let admitted: Vec<&Reply> = replies.iter().filter(|r| r.status == 200).collect();
    let rejected: Vec<&Reply> = replies.iter().filter(|r| r.status == 429).collect();
    assert_eq!(
        admitted.len() + rejected.len(),
        70,
        "only 200 or 429 expected"
    );
    assert!(
        (50..=50 + refilled).contains(&admitted.len()),
        "admitted {} (refill {refilled})",
        admitted.len()
    );

    // Remaining counts down by one per admitted request: each value exactly once.
    let mut remaining: Vec<u64> = admitted
        .iter()
        .map(|r| num(r, "X-RateLimit-Remaining"))
        .collect();
    remaining.sort_unstable();
    let expected: Vec<u64> = (200 - admitted.len() as u64..200).collect();
    assert_eq!(remaining, expected);
    for r in &admitted {
        assert_limit_headers(r, 200, 50);
    }
    // Rejections consume nothing and carry every header plus Retry-After and details.
    for r in &rejected {
        r.assert_error(429, "RATE_LIMIT_EXCEEDED");
        assert_limit_headers(r, 200, 50);
        assert_eq!(num(r, "X-RateLimit-Remaining"), 200 - admitted.len() as u64);
        let retry = num(r, "Retry-After");
        assert!(retry >= 1);
        assert_eq!(
            r.body["details"],
            json!({"reason": "burst", "retryAfter": retry, "limit": 50})
        );
    }
}

#[test]
fn every_authenticated_response_carries_the_headers_even_errors() {
    let jwt = app().user().jwt;
    let reader = app().key(&jwt, Scope::ReadOnly).secret;
    let not_found = app().get("/api/v1/twins/twn_missing", Auth::Bearer(&reader));
    not_found.assert_error(404, "NOT_FOUND");
    assert_limit_headers(&not_found, 200, 50);
    let forbidden = app().post(
        "/api/v1/conversations",
        Auth::Bearer(&reader),
        json!({"twinId": "x"}),
    );
    forbidden.assert_error(403, "INSUFFICIENT_SCOPE");
    assert_limit_headers(&forbidden, 200, 50);
    // A session JWT is limited per user with the full_access figures.
    let session = app().get("/api/v1/auth/me", Auth::Bearer(&jwt));
    assert_limit_headers(&session, 500, 100);
    let writer = app().key(&jwt, Scope::FullAccess).secret;
    assert_limit_headers(
        &app().get("/api/v1/auth/me", Auth::XApiKey(&writer)),
        500,
        100,
    );
    // Unauthenticated requests have no key to count against.
    assert!(app()
        .get("/api/v1/health", Auth::None)
        .header("X-RateLimit-Limit")
        .is_none());
}

#[test]
fn revocation_is_refused_on_the_very_next_request_with_a_warm_key() {
    let jwt = app().user().jwt;
    let TestKey { secret: key, id } = app().key(&jwt, Scope::FullAccess);
    for _ in 0..3 {
        assert_eq!(app().get("/api/v1/auth/me", Auth::Bearer(&key)).status, 200);
    }
    assert_eq!(
        app()
            .delete(&format!("/api/v1/auth/api-keys/{id}"), Auth::Bearer(&jwt))
            .status,
        200
    );
    app()
        .get("/api/v1/auth/me", Auth::Bearer(&key))
        .assert_error(401, "INVALID_API_KEY");
    app()
        .get("/api/v1/twins", Auth::XApiKey(&key))
        .assert_error(401, "INVALID_API_KEY");
}

fn small_hourly(state_dir: Option<std::path::PathBuf>) -> TestApp {
    TestApp::spawn_with(Options {
        vars: vec![
            (Var::RateLimitReadOnlyHourly, "5".into()),
            (Var::RateLimitReadOnlyBurst, "100".into()),
            (Var::AuthAttemptsPerMinute, "3".into()),
        ],
        state_dir,
        ..Default::default()
    })
}

#[test]
fn the_hourly_cap_from_vars_is_enforced_and_survives_a_restart() {
    let app = small_hourly(None);
    let jwt = app.user().jwt;
    let key = app.key(&jwt, Scope::ReadOnly).secret;
    let first = app.get("/api/v1/auth/me", Auth::Bearer(&key));
    let reset = num(&first, "X-RateLimit-Reset");
    assert!(
        reset.abs_diff(now_secs() + 3600) <= 2,
        "the window starts at the first request"
    );
    assert_eq!(num(&first, "X-RateLimit-Remaining"), 4);
    assert_eq!(
        num(
            &app.get("/api/v1/auth/me", Auth::Bearer(&key)),
            "X-RateLimit-Remaining"
        ),
        3
    );

    // Restart the runtime on the same state folder: the counters are still there. The object
    // counts in memory and writes its counters within a second of a change (SAVE_AFTER_MS in
    // limits::object), so this waits that long: what a restart may lose is the last second.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let state = app.state_dir.clone();
    drop(app);
    let app = small_hourly(Some(state));
    let third = app.get("/api/v1/auth/me", Auth::Bearer(&key));
    assert_eq!(third.status, 200);
    assert_eq!(num(&third, "X-RateLimit-Remaining"), 2);
    assert_eq!(num(&third, "X-RateLimit-Reset"), reset);
    app.get("/api/v1/auth/me", Auth::Bearer(&key));
    app.get("/api/v1/auth/me", Auth::Bearer(&key));
    let over = app.get("/api/v1/auth/me", Auth::Bearer(&key));
    over.assert_error(429, "RATE_LIMIT_EXCEEDED");
    assert_eq!(over.body["details"]["reason"], "hourly");
    assert_eq!(over.body["details"]["limit"], 5);
    let retry = num(&over, "Retry-After");
    assert!(retry.abs_diff(reset - now_secs()) <= 2, "retry {retry}");
    assert_eq!(num(&over, "X-RateLimit-Remaining"), 0);

    // Login attempts are limited per client IP (3 a minute here).
    let attempts: Vec<u16> = (0..4)
        .map(|_| {
            app.post(
                "/api/v1/auth/login",
                Auth::None,
                json!({"email": "x@example.com", "password": "nope"}),
            )
            .status
        })
        .collect();
    assert_eq!(
        attempts,
        vec![401, 401, 429, 429],
        "the register above used one attempt"
    );
}
