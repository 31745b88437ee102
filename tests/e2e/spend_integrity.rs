//! Spend integrity (docs/usage.md): a client that leaves cannot make a generation uncounted or
//! keep its slot, and the upstream's figures cannot write an implausible charge.

use crate::common::{eventually, Auth, Options, Scope, TestApp, Var};
use serde_json::{json, Value};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const MAX_OUTPUT_TOKENS: u64 = 400;
const MAX_CONCURRENT: usize = 5;

fn app() -> &'static TestApp {
    static APP: OnceLock<TestApp> = OnceLock::new();
    APP.get_or_init(|| {
        TestApp::spawn_with(Options::with(&[
            (Var::AuthAttemptsPerMinute, "1000"),
            (Var::MaxOutputTokens, "400"),
            (Var::MaxConcurrentGenerations, "5"),
            (Var::RateLimitFullAccessBurst, "1000"),
            (Var::RateLimitFullAccessHourly, "10000"),
        ]))
    })
}

/// A new account's session, a full-access key and a twin of theirs.
fn account() -> (String, String, String) {
    let jwt = app().user().jwt;
    let key = app().key(&jwt, Scope::FullAccess).secret;
    let twin = app().post(
        "/api/v1/twins",
        Auth::Bearer(&jwt),
        json!({"name": "Integrity", "systemPrompt": "You are Integrity."}),
    );
    assert_eq!(twin.status, 201, "{}", twin.text);
    (jwt, key, twin.data()["id"].as_str().unwrap().to_owned())
}

fn totals(jwt: &str) -> Value {
    app().get("/api/v1/usage", Auth::Bearer(jwt)).body["meta"]["totals"].clone()
}

#[test]
fn streamed_completions_whose_client_leaves_are_aborted_counted_and_free_their_slot() {
    let (jwt, key, twin) = account();
    let closed_before = app().model_stats()["closedByClient"].as_u64().unwrap();
    for i in 0..MAX_CONCURRENT {
        // A long, slow reply: 300 pieces, 50 ms apart (15 s if nobody stops it).
        let mut s = app().open_stream(
            "/api/v1/chat/completions",
            Auth::Bearer(&key),
            json!({"model": twin, "stream": true, "messages": [{"role": "user",
                   "content": format!("Leave early {i} [[words:300]] [[pace:50]]")}]}),
        );
        let first = s.next_event().expect("a first chunk");
        assert_eq!(first.data["object"], "chat.completion.chunk");
        s.disconnect();
    }
    let left_at = Instant::now();
    eventually(
        "the model server to see five closed connections",
        Duration::from_secs(5),
        || {
            let closed = app().model_stats()["closedByClient"].as_u64().unwrap();
            (closed >= closed_before + MAX_CONCURRENT as u64).then_some(())
        },
    );
    let aborted_in = left_at.elapsed();
    // Counted: five requests, each at its real (estimated) size once it ended, not the
    // reservation of MAX_OUTPUT_TOKENS each it started with.
    let t = eventually("the five to be counted", Duration::from_secs(5), || {
        let t = totals(&jwt);
        let reconciled =
            t["completionTokens"].as_u64()? < MAX_CONCURRENT as u64 * MAX_OUTPUT_TOKENS;
        (t["requests"] == MAX_CONCURRENT && reconciled).then_some(t)
    });
    assert!(t["totalTokens"].as_u64().unwrap() > 0, "{t}");
    assert_eq!(t["estimatedTokens"], t["totalTokens"], "{t}");
    // Every slot came back: the next one is admitted at once.
    let next = app().chat_completion(
        &key,
        json!({"model": twin, "messages": [{"role": "user", "content": "Next [[words:3]]"}]}),
    );
    assert_eq!(
        next.status, 200,
        "{} (aborted in {aborted_in:?})",
        next.text
    );
}

#[test]
fn a_completion_is_charged_from_its_admission_and_reconciled_at_its_end() {
    let (jwt, key, twin) = account();
    let body = json!({"model": twin, "messages": [{"role": "user",
                      "content": "Slow whole answer [[words:40]] [[pace:50]]"}]});
    let running = std::thread::spawn(move || app().chat_completion(&key, body));
    // While the model is still answering, the account already carries the most it can cost.
    let reserved = eventually("the reservation", Duration::from_secs(5), || {
        let t = totals(&jwt);
        (t["requests"] == 1).then_some(t)
    });
    assert!(
        !running.is_finished(),
        "the completion ended before the check"
    );
    assert!(
        reserved["completionTokens"].as_u64().unwrap() >= MAX_OUTPUT_TOKENS,
        "{reserved}"
    );
    let done = running.join().unwrap();
    assert_eq!(done.status, 200, "{}", done.text);
    let u = &done.body["usage"];
    let t = eventually("the reconciled usage", Duration::from_secs(5), || {
        let t = totals(&jwt);
        (t["completionTokens"] == u["completion_tokens"]).then_some(t)
    });
    assert_eq!(t["requests"], 1);
    assert_eq!(t["promptTokens"], u["prompt_tokens"]);
    assert_eq!(t["estimatedTokens"], 0, "{t}");
}

#[test]
fn completion_ids_are_chatcmpl_with_a_hyphen() {
    let (_, key, twin) = account();
    let r = app().chat_completion(
        &key,
        json!({"model": twin, "messages": [{"role": "user", "content": "Id? [[words:2]]"}]}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let id = r.body["id"].as_str().unwrap();
    assert!(id.starts_with("chatcmpl-") && id.len() > 20, "{id}");
}

#[test]
fn implausible_upstream_usage_is_clamped() {
    let (jwt, key, twin) = account();
    let r = app().chat_completion(
        &key,
        json!({"model": twin, "messages": [{"role": "user",
               "content": "Huge bill [[words:3]] [[usage:9000000000000]]"}]}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let reported = r.body["usage"]["total_tokens"].as_u64().unwrap();
    // The prompt estimate ×4 + MAX_OUTPUT_TOKENS: a few hundred tokens, not 9e12.
    assert!(reported < 2 * MAX_OUTPUT_TOKENS, "{}", r.body["usage"]);
    let t = eventually("the usage", Duration::from_secs(5), || {
        let t = totals(&jwt);
        (t["estimatedTokens"] == 0 && t["requests"] == 1).then_some(t)
    });
    assert_eq!(t["totalTokens"].as_u64().unwrap(), reported, "{t}");
}

#[test]
fn a_model_taken_off_allowed_models_stops_being_called() {
    let (jwt, key, twin) = account();
    // As if ALLOWED_MODELS no longer listed the twin's model (set when it still did).
    app().d1(&format!(
        "UPDATE twins SET model = 'gpt-retired' WHERE id = '{twin}'"
    ));
    let question = format!("Retired model {twin}");
    let r = app().chat_completion(
        &key,
        json!({"model": twin, "messages": [{"role": "user", "content": question}]}),
    );
    assert_eq!(r.status, 409, "{}", r.text);
    let conv = app().post(
        "/api/v1/conversations",
        Auth::Bearer(&jwt),
        json!({"twinId": twin}),
    );
    let conv = conv.data()["id"].as_str().unwrap().to_owned();
    let turn = app().post(
        &format!("/api/v1/conversations/{conv}/messages"),
        Auth::Bearer(&jwt),
        json!({"content": question}),
    );
    turn.assert_error(409, "CONFLICT");
    assert!(app().model_stats()["byQuestion"][&question].is_null());
    // Both refusals gave their slot back.
    let again = app().chat_completion(
        &key,
        json!({"model": "nope", "messages": [{"role": "user", "content": "x"}]}),
    );
    assert_eq!(again.status, 404, "{}", again.text);
}

#[test]
fn a_generation_streams_to_at_most_twenty_readers() {
    let (jwt, _, twin) = account();
    let conv = app().post(
        "/api/v1/conversations",
        Auth::Bearer(&jwt),
        json!({"twinId": twin}),
    );
    let conv = conv.data()["id"].as_str().unwrap().to_owned();
    let mut first = app().open_stream(
        &format!("/api/v1/conversations/{conv}/messages/stream"),
        Auth::Bearer(&jwt),
        json!({"content": "Many readers [[words:200]] [[pace:50]]"}),
    );
    let message = first.message_id.clone().expect("X-Message-Id");
    first.next_event().expect("the first event");
    let path = format!("/api/v1/conversations/{conv}/messages/{message}/stream");
    // The starting request is one of the twenty.
    let mut readers = Vec::new();
    for _ in 0..19 {
        let r = app()
            .try_stream("GET", &path, Auth::Bearer(&jwt), &[], None)
            .unwrap_or_else(|r| panic!("reader refused: {} {}", r.status, r.text));
        readers.push(r);
    }
    let refused = app()
        .try_stream("GET", &path, Auth::Bearer(&jwt), &[], None)
        .err()
        .expect("the twenty-first reader is refused");
    refused.assert_error(429, "RATE_LIMIT_EXCEEDED");
    assert_eq!(refused.body["details"]["reason"], "readers");
    assert!(refused.header("Retry-After").is_some());
    // A cursor past 2^63 - 1 is refused rather than wrapped around to a replay.
    let wrapped = app().get(
        &format!("{path}?after=9223372036854775808"),
        Auth::Bearer(&jwt),
    );
    wrapped.assert_error(400, "VALIDATION_ERROR");
    assert!(wrapped.body["details"]["fields"]["after"].is_string());
    drop(readers);
    first.disconnect();
}

#[test]
fn a_page_past_the_end_is_an_empty_page_however_large() {
    let (jwt, _, _) = account();
    for page in ["2000000", "9223372036854775807"] {
        let r = app().get(&format!("/api/v1/twins?page={page}"), Auth::Bearer(&jwt));
        assert_eq!(r.status, 200, "page {page}: {}", r.text);
        assert_eq!(r.data(), &json!([]));
        assert!(r.body["meta"]["pagination"]["total"].as_u64().unwrap() >= 1);
        assert_eq!(r.body["meta"]["pagination"]["hasMore"], false);
    }
}
