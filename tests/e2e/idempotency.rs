//! `Idempotency-Key` on every POST (docs/idempotency.md): a retry replays the first answer and
//! does nothing again — no second object, message, key or model call.

use crate::common::{Auth, Options, Reply, Scope, TestApp, Var};
use serde_json::{json, Value};
use std::time::Duration;

crate::common::app!(AuthAttemptsPerMinute = "1000");

fn post_with_key(path: &str, auth: &str, key: &str, body: &str) -> Reply {
    post_on(app(), path, auth, key, body)
}

fn post_on(app: &TestApp, path: &str, auth: &str, key: &str, body: &str) -> Reply {
    app.raw(
        "POST",
        path,
        &[
            ("Authorization", &format!("Bearer {auth}")),
            ("Content-Type", "application/json"),
            ("Idempotency-Key", key),
        ],
        body.as_bytes(),
    )
}

/// A user's JWT, a full_access key, a twin of theirs and a conversation with it.
fn setup() -> (String, String, String, String) {
    setup_on(app())
}

fn setup_on(app: &TestApp) -> (String, String, String, String) {
    let jwt = app.user().jwt;
    let key = app.key(&jwt, Scope::FullAccess).secret;
    let twin = app.post(
        "/api/v1/twins",
        Auth::Bearer(&jwt),
        json!({"name": format!("Idem {}", &key[3..11]), "systemPrompt": "You are Idem."}),
    );
    let twin = twin.data()["id"].as_str().unwrap().to_owned();
    let conv = app.post(
        "/api/v1/conversations",
        Auth::Bearer(&key),
        json!({"twinId": twin}),
    );
    let conv = conv.data()["id"].as_str().unwrap().to_owned();
    (jwt, key, twin, conv)
}

fn model_calls(question: &str) -> u64 {
    model_calls_on(app(), question)
}

fn model_calls_on(app: &TestApp, question: &str) -> u64 {
    app.model_stats()["byQuestion"][question]["count"]
        .as_u64()
        .unwrap_or(0)
}

fn count(path: &str, auth: &str) -> u64 {
    app().get(path, Auth::Bearer(auth)).body["meta"]["pagination"]["total"]
        .as_u64()
        .unwrap()
}

fn assert_replay(first: &Reply, again: &Reply) {
    assert_eq!(again.status, first.status, "{}", again.text);
    assert_eq!(again.header("Idempotent-Replayed"), Some("true"));
    assert!(first.header("Idempotent-Replayed").is_none());
    assert_eq!(again.body["data"], first.body["data"]);
    assert_ne!(
        again.body["meta"]["requestId"],
        first.body["meta"]["requestId"]
    );
}

#[test]
fn a_retried_conversation_twin_and_api_key_are_created_once() {
    let (jwt, key, twin, _) = setup();
    let body = format!(r#"{{"twinId": "{twin}", "title": "Retry me"}}"#);
    let before = count("/api/v1/conversations", &key);
    let first = post_with_key("/api/v1/conversations", &key, "conv-1", &body);
    assert_eq!(first.status, 201, "{}", first.text);
    let again = post_with_key("/api/v1/conversations", &key, "conv-1", &body);
    assert_replay(&first, &again);
    assert_eq!(count("/api/v1/conversations", &key), before + 1);

    let twin_body = r#"{"name": "Twin Once", "systemPrompt": "You are Once."}"#;
    let first = post_with_key("/api/v1/twins", &jwt, "twin-1", twin_body);
    assert_eq!(first.status, 201, "{}", first.text);
    let again = post_with_key("/api/v1/twins", &jwt, "twin-1", twin_body);
    assert_replay(&first, &again);
    let twins = app().get("/api/v1/twins?q=Twin%20Once", Auth::Bearer(&jwt));
    assert_eq!(twins.body["meta"]["pagination"]["total"], 1);

    let key_body = r#"{"name": "ci", "scope": "read_only"}"#;
    let keys_before = app()
        .get("/api/v1/auth/api-keys", Auth::Bearer(&jwt))
        .data()
        .as_array()
        .unwrap()
        .len();
    let first = post_with_key("/api/v1/auth/api-keys", &jwt, "key-1", key_body);
    assert_eq!(first.status, 201, "{}", first.text);
    assert!(first.body["data"]["key"]
        .as_str()
        .unwrap()
        .starts_with("te_"));
    let again = post_with_key("/api/v1/auth/api-keys", &jwt, "key-1", key_body);
    assert_eq!(again.status, 201);
    assert_eq!(again.header("Idempotent-Replayed"), Some("true"));
    // The plaintext is never stored, so the replay carries `key: null` and the same id.
    assert_eq!(again.body["data"]["key"], Value::Null);
    assert_eq!(again.body["data"]["id"], first.body["data"]["id"]);
    let keys_after = app()
        .get("/api/v1/auth/api-keys", Auth::Bearer(&jwt))
        .data()
        .as_array()
        .unwrap()
        .len();
    assert_eq!(keys_after, keys_before + 1);
}

#[test]
fn a_retried_message_stores_one_turn_and_calls_the_model_once() {
    let (_, key, _, conv) = setup();
    let question = format!("Once only {} [[words:6]]", &key[3..15]);
    let body = json!({ "content": question }).to_string();
    let path = format!("/api/v1/conversations/{conv}/messages");
    let first = post_with_key(&path, &key, "msg-1", &body);
    assert_eq!(first.status, 201, "{}", first.text);
    let again = post_with_key(&path, &key, "msg-1", &body);
    assert_replay(&first, &again);
    // Reordered keys and other spacing are the same request.
    let spaced = format!(
        "{{ \"content\" :\n {} }}",
        serde_json::to_string(&question).unwrap()
    );
    assert_replay(&first, &post_with_key(&path, &key, "msg-1", &spaced));
    assert_eq!(model_calls(&question), 1);
    let c = app().get(&format!("/api/v1/conversations/{conv}"), Auth::Bearer(&key));
    assert_eq!(c.data()["messageCount"], 2);
}

#[test]
fn a_retried_stream_replays_the_same_generation() {
    let (_, key, _, conv) = setup();
    let question = format!("Stream once {} [[pace:30]] [[words:10]]", &key[3..15]);
    let path = format!("/api/v1/conversations/{conv}/messages/stream");
    let send = || {
        app()
            .try_stream(
                "POST",
                &path,
                Auth::Bearer(&key),
                &[("Idempotency-Key", "stream-1")],
                Some(json!({ "content": question })),
            )
            .unwrap_or_else(|r| panic!("{}", r.text))
    };
    let first = send();
    let message = first.message_id.clone().unwrap();
    // Retried while the first still streams: the same generation, live, from event 1.
    let live = send();
    assert_eq!(live.message_id.as_deref(), Some(message.as_str()));
    let ((a, raw_a), (b, _)) = (first.collect(), live.collect());
    assert_eq!(
        a.iter().map(|e| (e.id, e.data.clone())).collect::<Vec<_>>(),
        b.iter().map(|e| (e.id, e.data.clone())).collect::<Vec<_>>()
    );
    // And after the end, byte for byte.
    let done = send();
    let (_, raw_c) = done.collect();
    assert_eq!(raw_c, raw_a);
    assert_eq!(model_calls(&question), 1);
    let c = app().get(&format!("/api/v1/conversations/{conv}"), Auth::Bearer(&key));
    assert_eq!(c.data()["messageCount"], 2);
}

#[test]
fn ten_identical_requests_at_once_have_one_effect() {
    let (_, key, twin, _) = setup();
    let before = count("/api/v1/conversations", &key);
    let body = format!(r#"{{"twinId": "{twin}", "title": "Parallel"}}"#);
    let replies: Vec<Reply> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..10)
            .map(|_| s.spawn(|| post_with_key("/api/v1/conversations", &key, "par-1", &body)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(count("/api/v1/conversations", &key), before + 1);
    let created: Vec<&Reply> = replies.iter().filter(|r| r.status == 201).collect();
    let ids: std::collections::HashSet<String> = created
        .iter()
        .map(|r| r.body["data"]["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 1, "every 201 names the one conversation");
    for r in &replies {
        assert!(
            r.status == 201 || r.code() == "IDEMPOTENCY_KEY_IN_USE",
            "{} {}",
            r.status,
            r.text
        );
        if r.status == 409 {
            assert_eq!(r.header("Retry-After"), Some("1"));
        }
    }
}

#[test]
fn misuse_is_refused_and_refusals_leave_the_key_free() {
    let (_, key, twin, conv) = setup();
    let first = post_with_key(
        "/api/v1/conversations",
        &key,
        "k-reuse",
        &format!(r#"{{"twinId": "{twin}"}}"#),
    );
    assert_eq!(first.status, 201);
    let other = post_with_key(
        "/api/v1/conversations",
        &key,
        "k-reuse",
        &format!(r#"{{"twinId": "{twin}", "title": "Different"}}"#),
    );
    other.assert_error(422, "IDEMPOTENCY_KEY_REUSED");
    // Another path is another request, too.
    post_with_key(&format!("/api/v1/twins/{twin}"), &key, "k-reuse", "{}")
        .assert_error(422, "IDEMPOTENCY_KEY_REUSED");

    // Another account's same key runs fresh.
    let (_, other_key, other_twin, _) = setup();
    let theirs = post_with_key(
        "/api/v1/conversations",
        &other_key,
        "k-reuse",
        &format!(r#"{{"twinId": "{other_twin}"}}"#),
    );
    assert_eq!(theirs.status, 201);
    assert!(theirs.header("Idempotent-Replayed").is_none());

    // A 400 and a 404 leave the key free: the corrected request then runs.
    let path = format!("/api/v1/conversations/{conv}/messages");
    post_with_key(&path, &key, "k-fix", r#"{"content": ""}"#).assert_error(400, "VALIDATION_ERROR");
    post_with_key(
        "/api/v1/conversations/conv_nope/messages",
        &key,
        "k-fix",
        r#"{"content": "hi"}"#,
    )
    .assert_error(404, "NOT_FOUND");
    let fixed = post_with_key(&path, &key, "k-fix", r#"{"content": "hi [[words:2]]"}"#);
    assert_eq!(fixed.status, 201, "{}", fixed.text);

    // The header itself is checked.
    for bad in ["", &"k".repeat(256)] {
        let r = post_with_key(
            "/api/v1/conversations",
            &key,
            bad,
            &format!(r#"{{"twinId": "{twin}"}}"#),
        );
        r.assert_error(400, "VALIDATION_ERROR");
        assert!(
            r.body["details"]["fields"]["Idempotency-Key"].is_string(),
            "{}",
            r.text
        );
    }
}

#[test]
fn a_key_in_flight_answers_409_with_retry_after() {
    let (_, key, _, conv) = setup();
    let path = format!("/api/v1/conversations/{conv}/messages");
    let question = format!("slow {} [[pace:100]] [[words:15]]", &key[3..15]);
    let body = json!({ "content": question }).to_string();
    std::thread::scope(|s| {
        let first = s.spawn(|| post_with_key(&path, &key, "inflight", &body));
        // Once the model is answering it, the first request holds the key.
        crate::common::eventually(
            "the first request to reach the model",
            Duration::from_secs(5),
            || (model_calls(&question) == 1).then_some(()),
        );
        let busy = post_with_key(&path, &key, "inflight", &body);
        busy.assert_error(409, "IDEMPOTENCY_KEY_IN_USE");
        assert_eq!(busy.header("Retry-After"), Some("1"));
        assert_eq!(first.join().unwrap().status, 201);
    });
    let again = post_with_key(&path, &key, "inflight", &body);
    assert_eq!(again.header("Idempotent-Replayed"), Some("true"));
    assert_eq!(model_calls(&question), 1);
}

#[test]
fn a_remembered_upstream_failure_is_answered_again_without_a_model_call() {
    let (_, key, _, conv) = setup();
    let question = format!("fail {} [[fail:500]]", &key[3..15]);
    let body = json!({ "content": question }).to_string();
    let path = format!("/api/v1/conversations/{conv}/messages");
    let first = post_with_key(&path, &key, "fail-1", &body);
    first.assert_error(502, "UPSTREAM_ERROR");
    let again = post_with_key(&path, &key, "fail-1", &body);
    again.assert_error(502, "UPSTREAM_ERROR");
    assert_eq!(again.header("Idempotent-Replayed"), Some("true"));
    assert_eq!(model_calls(&question), 1);
}

#[test]
fn a_turn_cut_off_before_its_answer_was_remembered_is_replayed_never_run_twice() {
    let state_dir = crate::common::restart_dir("idem-cut");
    let opts = || Options {
        vars: vec![(Var::AuthAttemptsPerMinute, "1000".into())],
        state_dir: Some(state_dir.clone()),
        ..Default::default()
    };
    let mut first = TestApp::spawn_with(opts());
    let (_, key, _, conv) = setup_on(&first);
    let path = format!("/api/v1/conversations/{conv}/messages");
    let turn = |app: &TestApp, idem: &str, question: &str| {
        let body = json!({ "content": question }).to_string();
        post_on(app, &path, &key, idem, &body)
    };
    let held_q = format!("Cut off {} [[words:6]]", &key[3..15]);
    let lapsed_q = format!("Cut lapsed {} [[words:5]]", &key[3..15]);
    let held = turn(&first, "cut-held", &held_q);
    let lapsed = turn(&first, "cut-lapsed", &lapsed_q);
    assert_eq!(held.status, 201, "{}", held.text);
    assert_eq!(lapsed.status, 201, "{}", lapsed.text);
    // A streamed turn under a key too.
    let spath = format!("/api/v1/conversations/{conv}/messages/stream");
    let squestion = format!("Cut stream {} [[words:4]]", &key[3..15]);
    let sbody = json!({ "content": squestion });
    let open = |app: &TestApp| {
        app.try_stream(
            "POST",
            &spath,
            Auth::Bearer(&key),
            &[("Idempotency-Key", "cut-stream")],
            Some(sbody.clone()),
        )
        .unwrap_or_else(|r| panic!("{}", r.text))
    };
    let s = open(&first);
    let message = s.message_id.clone().unwrap();
    let (events, _) = s.collect();

    // As on the platform when the client leaves mid-turn: the request is cancelled, so its
    // key stays claimed in the account's object with nothing remembered — one claim still
    // leased, two whose lease has run out too. Edited while the runtime is down.
    first.crash_worker();
    let forgotten = first.object_sql(
        "twinexpert-cells-Account",
        "UPDATE idempotency SET response = NULL, \
           lease_until = CASE key WHEN 'cut-held' THEN lease_until ELSE 0 END \
         WHERE key IN ('cut-held', 'cut-lapsed', 'cut-stream')",
    );
    assert_eq!(forgotten, 3, "the account's object holds the three records");
    drop(first);
    let app = TestApp::spawn_with(opts());

    // Still claimed: the turn bound to the key in the conversation's object answers.
    let again = turn(&app, "cut-held", &held_q);
    assert_replay(&held, &again);
    // Claim lapsed: the key is taken again, and the turn already bound to it is answered,
    // not run a second time.
    let later = turn(&app, "cut-lapsed", &lapsed_q);
    assert_eq!(later.status, 201, "{}", later.text);
    assert_eq!(later.body["data"], lapsed.body["data"]);
    // A streamed retry of the same turn's key is the turn's own stream.
    let replayed = open(&app);
    assert_eq!(replayed.message_id.as_deref(), Some(message.as_str()));
    let (again, _) = replayed.collect();
    assert_eq!(again.len(), events.len());
    for q in [&held_q, &lapsed_q, &squestion] {
        assert_eq!(model_calls_on(&app, q), 0, "the model was called again");
    }
    let c = app.get(&format!("/api/v1/conversations/{conv}"), Auth::Bearer(&key));
    assert_eq!(c.data()["messageCount"], 6);
}

#[test]
fn keys_remembered_in_d1_before_cells_still_replay_and_expired_ones_are_not_copied() {
    let (jwt, key, twin, _) = setup();
    let me = app().get("/api/v1/auth/me", Auth::Bearer(&jwt));
    let user_id = me.data()["id"].as_str().unwrap().to_owned();
    // As the previous release left them: a conversation created under a key an hour ago,
    // and a record past its 24 h.
    let body = json!({ "twinId": twin, "title": "Before cells" });
    let fingerprint =
        twinexpert::idempotency::model::fingerprint("POST", "/api/v1/conversations", Some(&body));
    let remembered = json!({ "json": { "status": 201, "data": { "id": "conv_fromd1" } } });
    let now = crate::common::unix_ms() as i64;
    let hour = 3_600_000;
    app().d1(&format!(
        "INSERT INTO idempotency_keys (user_id, key, fingerprint, response, created_at, \
           lease_until, expires_at) VALUES \
         ('{user_id}', 'old-live', '{fingerprint}', '{remembered}', {}, {}, {}), \
         ('{user_id}', 'old-gone', '{fingerprint}', '{remembered}', {}, {}, {})",
        now - hour,
        now - hour,
        now + 23 * hour,
        now - 25 * hour,
        now - 25 * hour,
        now - hour,
    ));
    let text = body.to_string();
    let before = count("/api/v1/conversations", &key);
    let replayed = post_with_key("/api/v1/conversations", &key, "old-live", &text);
    assert_eq!(replayed.status, 201, "{}", replayed.text);
    assert_eq!(replayed.header("Idempotent-Replayed"), Some("true"));
    assert_eq!(replayed.data()["id"], "conv_fromd1");
    let other = json!({ "twinId": twin }).to_string();
    post_with_key("/api/v1/conversations", &key, "old-live", &other)
        .assert_error(422, "IDEMPOTENCY_KEY_REUSED");
    let fresh = post_with_key("/api/v1/conversations", &key, "old-gone", &text);
    assert_eq!(fresh.status, 201, "{}", fresh.text);
    assert!(fresh.header("Idempotent-Replayed").is_none());
    assert_eq!(count("/api/v1/conversations", &key), before + 1);
}
