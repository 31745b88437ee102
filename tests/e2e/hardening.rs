//! Bad actors and bad input cost nothing and learn nothing (README, Security).

use crate::common::{Auth, Options, Scope, TestApp, TestUser, Var};
use serde_json::json;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;
use twinexpert::auth::api_key;

crate::common::app!(AuthAttemptsPerMinute = "1000");

#[test]
fn responses_say_nosniff_and_secrets_are_never_cached() {
    let h = app().get("/api/v1/health", Auth::None);
    assert_eq!(h.header("X-Content-Type-Options"), Some("nosniff"));
    assert!(h.header("Cache-Control").is_none());
    let err = app().get("/api/v1/twins", Auth::None);
    assert_eq!(err.header("X-Content-Type-Options"), Some("nosniff"));

    let email = format!("nostore-{}@example.com", std::process::id());
    let reg = app().post(
        "/api/v1/auth/register",
        Auth::None,
        json!({"email": email, "password": "long-enough-pw", "name": "N"}),
    );
    assert_eq!(reg.status, 201);
    assert_eq!(reg.header("Cache-Control"), Some("no-store"));
    let login = app().post(
        "/api/v1/auth/login",
        Auth::None,
        json!({"email": email, "password": "long-enough-pw"}),
    );
    assert_eq!(login.header("Cache-Control"), Some("no-store"));
    let jwt = login.data()["token"].as_str().unwrap().to_owned();
    let key = app().post(
        "/api/v1/auth/api-keys",
        Auth::Bearer(&jwt),
        json!({"name": "k"}),
    );
    assert_eq!(key.status, 201);
    assert_eq!(key.header("Cache-Control"), Some("no-store"));
}

#[test]
fn a_short_jwt_secret_fails_closed_and_register_leaves_no_account() {
    let weak = TestApp::spawn_with(Options {
        vars: vec![(Var::JwtSecret, "only-sixteen-byt".into())],
        ..Default::default()
    });
    let r = weak.post(
        "/api/v1/auth/register",
        Auth::None,
        json!({"email": "weak@example.com", "password": "long-enough-pw", "name": "W"}),
    );
    r.assert_error(500, "INTERNAL_ERROR");
    assert!(
        !r.text.contains("JWT_SECRET"),
        "the client learns nothing: {}",
        r.text
    );
    let rows = weak.d1_rows("SELECT COUNT(*) AS n FROM users");
    assert_eq!(rows[0]["n"], 0, "no account was created");
    crate::common::eventually("the log line to say why", Duration::from_secs(5), || {
        weak.log()
            .contains("JWT_SECRET is shorter than 32 bytes")
            .then_some(())
    });
}

#[test]
fn a_var_that_does_not_parse_fails_every_request_loudly() {
    let broken = TestApp::spawn_with(Options::with(&[(Var::MaxOutputTokens, "lots")]));
    for path in ["/api/v1/health", "/api/v1/twins"] {
        let r = broken.get(path, Auth::None);
        r.assert_error(500, "INTERNAL_ERROR");
        assert!(!r.text.contains("MAX_OUTPUT_TOKENS"), "{}", r.text);
    }
    crate::common::eventually(
        "the log line to name the var",
        Duration::from_secs(5),
        || {
            broken
                .log()
                .contains("MAX_OUTPUT_TOKENS must be a whole number")
                .then_some(())
        },
    );
    // The docs site does not depend on the API's settings.
    assert_eq!(broken.get("/docs/", Auth::None).status, 200);
}

#[test]
fn a_deleted_twin_hides_but_conversations_with_it_stay_readable() {
    let owner = app().user().jwt;
    let twin = app().post(
        "/api/v1/twins",
        Auth::Bearer(&owner),
        json!({"name": "Soon Gone", "systemPrompt": "x", "visibility": "public"}),
    );
    let twin = twin.data()["id"].as_str().unwrap().to_owned();
    // B talks to A's public twin.
    let b = app().user().jwt;
    let conv = app().post(
        "/api/v1/conversations",
        Auth::Bearer(&b),
        json!({"twinId": twin}),
    );
    let conv = conv.data()["id"].as_str().unwrap().to_owned();
    let sent = app().post(
        &format!("/api/v1/conversations/{conv}/messages"),
        Auth::Bearer(&b),
        json!({"content": "hi [[words:3]]"}),
    );
    assert_eq!(sent.status, 201);

    let del = app().delete(&format!("/api/v1/twins/{twin}"), Auth::Bearer(&owner));
    assert_eq!(del.data(), &json!({"id": twin, "deleted": true}));
    app()
        .get(&format!("/api/v1/twins/{twin}"), Auth::Bearer(&b))
        .assert_error(404, "NOT_FOUND");
    let listed = app().get("/api/v1/twins?q=Soon%20Gone", Auth::Bearer(&b));
    assert_eq!(listed.body["meta"]["pagination"]["total"], 0);
    // B's history is intact and listed under the twin; new messages are refused.
    let history = app().get(
        &format!("/api/v1/conversations/{conv}/messages"),
        Auth::Bearer(&b),
    );
    assert_eq!(history.data().as_array().unwrap().len(), 2);
    let by_twin = app().get(
        &format!("/api/v1/conversations?twinId={twin}"),
        Auth::Bearer(&b),
    );
    assert_eq!(by_twin.body["meta"]["pagination"]["total"], 1);
    app()
        .post(
            &format!("/api/v1/conversations/{conv}/messages"),
            Auth::Bearer(&b),
            json!({"content": "still there?"}),
        )
        .assert_error(404, "NOT_FOUND");
    app()
        .post(
            "/api/v1/conversations",
            Auth::Bearer(&b),
            json!({"twinId": twin}),
        )
        .assert_error(404, "NOT_FOUND");
    // The owner can reuse the name (and so the slug).
    let again = app().post(
        "/api/v1/twins",
        Auth::Bearer(&owner),
        json!({"name": "Soon Gone", "systemPrompt": "y"}),
    );
    assert_eq!(again.status, 201, "{}", again.text);
}

#[test]
fn deep_pages_over_rows_are_refused_and_pages_past_the_end_are_empty() {
    let jwt = app().user().jwt;
    // No rows: page 102 of 100 is past the end, an empty page (the count answers it).
    let past = app().get(
        "/api/v1/conversations?page=102&limit=100",
        Auth::Bearer(&jwt),
    );
    assert_eq!(past.status, 200, "{}", past.text);
    assert_eq!(past.data(), &json!([]));
    // 10 101 conversations: a page skipping more than 10 000 of them is refused.
    let user = app().get("/api/v1/auth/me", Auth::Bearer(&jwt)).data()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let twin = app().post(
        "/api/v1/twins",
        Auth::Bearer(&jwt),
        json!({"name": "Deep", "systemPrompt": "x"}),
    );
    let twin = twin.data()["id"].as_str().unwrap().to_owned();
    app().d1(&format!(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10101) \
         INSERT INTO conversations (id, user_id, twin_id, title, created_at, updated_at) \
         SELECT 'conv_deep' || i || '{user}', '{user}', '{twin}', 'Deep', \
                '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z' FROM n"
    ));
    let r = app().get(
        "/api/v1/conversations?page=102&limit=100",
        Auth::Bearer(&jwt),
    );
    r.assert_error(400, "VALIDATION_ERROR");
    assert!(r.body["details"]["fields"]["page"]
        .as_str()
        .unwrap()
        .contains("too deep"));
    let ok = app().get(
        "/api/v1/conversations?page=101&limit=100",
        Auth::Bearer(&jwt),
    );
    assert_eq!(ok.status, 200);
    assert_eq!(ok.data().as_array().unwrap().len(), 100);
    let beyond = app().get(
        "/api/v1/conversations?page=103&limit=100",
        Auth::Bearer(&jwt),
    );
    assert_eq!(beyond.status, 200, "{}", beyond.text);
    assert_eq!(beyond.data(), &json!([]));
}

/// A new twin of the user behind `jwt`, and a conversation with it opened with `auth`.
fn conversation(jwt: &str, auth: &str) -> String {
    let twin = app().post(
        "/api/v1/twins",
        Auth::Bearer(jwt),
        json!({"name": "Twin", "systemPrompt": "x"}),
    );
    let conv = app().post(
        "/api/v1/conversations",
        Auth::Bearer(auth),
        json!({"twinId": twin.data()["id"]}),
    );
    conv.data()["id"].as_str().unwrap().to_owned()
}

#[test]
fn a_ten_megabyte_upstream_line_ends_the_reply_as_an_upstream_error() {
    let jwt = app().user().jwt;
    let conv = conversation(&jwt, &jwt);
    let r = app().post(
        &format!("/api/v1/conversations/{conv}/messages"),
        Auth::Bearer(&jwt),
        json!({"content": "flood [[longline:10000000]]"}),
    );
    r.assert_error(502, "UPSTREAM_ERROR");
    let h = app().get(
        &format!("/api/v1/conversations/{conv}/messages"),
        Auth::Bearer(&jwt),
    );
    assert_eq!(h.data()[1]["status"], "failed");
}

/// Opens a connection and sends a request's head with a chunked body (no Content-Length).
fn chunked_request(path: &str, headers: &str) -> TcpStream {
    let addr = app().base.trim_start_matches("http://").to_owned();
    let mut s = TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\n{headers}\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    .unwrap();
    s
}

fn send_chunk(s: &mut TcpStream, piece: &[u8]) {
    write!(s, "{:x}\r\n", piece.len()).unwrap();
    s.write_all(piece).unwrap();
    s.write_all(b"\r\n").unwrap();
}

#[test]
fn a_chunked_body_over_the_limit_is_refused_while_it_is_still_being_sent() {
    let jwt = app().user().jwt;
    // Also under an Idempotency-Key, whose fingerprint reads the body before the handler
    // does: both get the same refusal.
    for (n, extra) in ["", "Idempotency-Key: chunked-over-the-limit\r\n"]
        .iter()
        .enumerate()
    {
        let headers = format!("Authorization: Bearer {jwt}\r\n{extra}");
        let mut s = chunked_request("/api/v1/conversations", &headers);
        // 512 KiB of a 1 MiB body, then wait: the answer must come before the rest is sent.
        let piece = vec![b' '; 64 * 1024];
        for _ in 0..8 {
            send_chunk(&mut s, &piece);
        }
        s.flush().unwrap();
        let mut head = [0u8; 64];
        let n_read = s.read(&mut head).expect("an answer before the body ends");
        let head = String::from_utf8_lossy(&head[..n_read]);
        assert!(head.starts_with("HTTP/1.1 413"), "request {n}: {head}");
    }
}

/// A turn's body read by the handler started beside the key's verdict (a key this isolate
/// admitted before), sent in pieces without a length: the question is stored whole.
#[test]
fn a_turn_sent_in_chunks_beside_the_verdict_is_stored_whole() {
    let jwt = app().user().jwt;
    let key = app().key(&jwt, Scope::FullAccess).secret;
    let conv = conversation(&jwt, &key);
    let path = format!("/api/v1/conversations/{conv}/messages");
    let mut s = chunked_request(&path, &format!("Authorization: Bearer {key}\r\n"));
    for piece in [
        &br#"{"content": "first half, "#[..],
        br#"second half [[words:2]]"}"#,
    ] {
        send_chunk(&mut s, piece);
        s.flush().unwrap();
        // Apart, so the worker reads the body in two pieces (not waiting for anything).
        std::thread::sleep(Duration::from_millis(50));
    }
    s.write_all(b"0\r\n\r\n").unwrap();
    let mut head = [0u8; 16];
    s.read_exact(&mut head).expect("an answer");
    assert!(
        head.starts_with(b"HTTP/1.1 201"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    let messages = app().get(&path, Auth::Bearer(&key));
    assert_eq!(
        messages.data()[0]["content"],
        "first half, second half [[words:2]]"
    );
}

/// Each key-object instance in the app's local state: its name (miniflare records it) and
/// whether it holds any of our tables. Read with Python's sqlite3, read-only.
fn limiter_instances(app: &TestApp) -> Vec<(String, bool)> {
    let dir = app
        .state_dir
        .join("wrangler/v3/do/twinexpert-api-RateLimiter");
    let script = r#"
import glob, json, sqlite3, sys
out = []
for f in glob.glob(sys.argv[1] + "/*.sqlite"):
    if f.endswith("metadata.sqlite"):
        continue
    c = sqlite3.connect("file:" + f + "?mode=ro", uri=True)
    tables = [r[0] for r in c.execute("select name from sqlite_master where type = 'table'")]
    name = c.execute("select name from __miniflare_do_name").fetchone()[0] if "__miniflare_do_name" in tables else ""
    out.append([name, any(t in tables for t in ("kv", "leases"))])
print(json.dumps(out))
"#;
    // A file the runtime is writing or deleting at that instant cannot be opened read-only
    // ("attempt to write a readonly database": a journal to roll back): read them all again.
    for _ in 0..20 {
        let out = std::process::Command::new(crate::common::root().join(".tools/py/bin/python"))
            .args(["-c", script])
            .arg(&dir)
            .output()
            .unwrap();
        if let Ok(instances) = serde_json::from_slice::<Vec<(String, bool)>>(&out.stdout) {
            return instances;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("the limiter objects' SQLite files stayed unreadable")
}

/// A well-formed key nobody holds: 30 random base62 characters and a valid checksum.
fn random_key(n: u64) -> String {
    let bytes: Vec<u8> = (0..64)
        .map(|i| ((n * 7919 + i * 104_729) % 251) as u8)
        .collect();
    api_key::generate(&bytes).expect("enough bytes for a key")
}

#[test]
fn guessed_keys_leave_nothing_behind_and_an_ip_past_its_failures_is_refused() {
    let app = TestApp::spawn_with(Options {
        vars: vec![(Var::AuthFailuresPerMinute, "5".into())],
        ..Default::default()
    });
    let jwt = app.user().jwt;
    let key = app.key(&jwt, Scope::ReadOnly).secret;
    assert_eq!(app.get("/api/v1/twins", Auth::Bearer(&key)).status, 200);
    // Guessed keys reach no Durable Object: no instance exists for any of them.
    for n in 1..=4 {
        app.get("/api/v1/twins", Auth::Bearer(&random_key(n)))
            .assert_error(401, "INVALID_API_KEY");
    }
    let names: Vec<String> = limiter_instances(&app)
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert!(
        names.contains(&format!("key:{}", api_key::hash(&key))),
        "{names:?}"
    );
    for n in 1..=4 {
        let guessed = format!("key:{}", api_key::hash(&random_key(n)));
        assert!(!names.contains(&guessed), "a guess created {guessed}");
    }
    app.get("/api/v1/twins", Auth::Bearer("te_malformed"))
        .assert_error(401, "INVALID_API_KEY_FORMAT");
    // The sixth failure in the minute: 429, and then the IP's keyed requests are refused,
    // valid keys too, without a lookup.
    let r = app.get("/api/v1/twins", Auth::Bearer(&random_key(6)));
    r.assert_error(429, "RATE_LIMIT_EXCEEDED");
    assert_eq!(r.body["details"]["reason"], "auth_failures");
    assert!(r.header("Retry-After").unwrap().parse::<u64>().unwrap() >= 1);
    app.get("/api/v1/twins", Auth::Bearer(&key))
        .assert_error(429, "RATE_LIMIT_EXCEEDED");
    // Sessions are not API-key attempts.
    assert_eq!(app.get("/api/v1/twins", Auth::Bearer(&jwt)).status, 200);
}

#[test]
fn failed_logins_for_one_email_are_refused_after_ten_whatever_the_ip() {
    let TestUser {
        email, password, ..
    } = app().user();
    for i in 0..10 {
        let r = app().raw(
            "POST",
            "/api/v1/auth/login",
            &[
                ("Content-Type", "application/json"),
                ("CF-Connecting-IP", &format!("203.0.113.{i}")),
            ],
            json!({"email": email, "password": "wrong-password!"})
                .to_string()
                .as_bytes(),
        );
        r.assert_error(401, "INVALID_CREDENTIALS");
    }
    // The eleventh, even with the right password.
    let r = app().post(
        "/api/v1/auth/login",
        Auth::None,
        json!({"email": email, "password": password}),
    );
    r.assert_error(429, "RATE_LIMIT_EXCEEDED");
    assert_eq!(r.body["details"]["reason"], "login_failures");
    assert!(r.header("Retry-After").unwrap().parse::<u64>().unwrap() > 60);
    // Another account from the same place logs in.
    let TestUser {
        email: other,
        password: other_pw,
        ..
    } = app().user();
    let ok = app().post(
        "/api/v1/auth/login",
        Auth::None,
        json!({"email": other, "password": other_pw}),
    );
    assert_eq!(ok.status, 200, "{}", ok.text);
}

#[test]
fn idle_limiter_state_is_removed() {
    let app = TestApp::spawn_with(Options {
        vars: vec![
            (Var::RateLimitWindowSecs, "2".into()),
            (Var::RateLimitBurstPeriodSecs, "2".into()),
        ],
        ..Default::default()
    });
    let jwt = app.user().jwt;
    let key = app.key(&jwt, Scope::ReadOnly).secret;
    assert_eq!(app.get("/api/v1/twins", Auth::Bearer(&key)).status, 200);
    let instance = format!("key:{}", api_key::hash(&key));
    let holds_state = || {
        limiter_instances(&app)
            .into_iter()
            .find(|(n, _)| *n == instance)
            .is_some_and(|(_, ours)| ours)
    };
    // A key's counters are written within a second (limits::object::SAVE_AFTER_MS).
    crate::common::eventually(
        "the key's counters to be stored",
        Duration::from_secs(5),
        || holds_state().then_some(()),
    );
    // Window and bucket are 2 s: the alarm then deletes the instance's storage.
    crate::common::eventually(
        "idle counters to be deleted",
        Duration::from_secs(20),
        || (!holds_state()).then_some(()),
    );
    // And a later request starts afresh.
    let r = app.get("/api/v1/twins", Auth::Bearer(&key));
    assert_eq!(r.status, 200);
    assert_eq!(r.header("X-RateLimit-Remaining"), Some("199"));
}

#[test]
fn forty_parallel_wrong_logins_for_one_email_get_at_most_ten_answers_of_401() {
    let TestUser { email, .. } = app().user();
    let answers: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..40)
            .map(|i| {
                let email = email.clone();
                s.spawn(move || {
                    app()
                        .raw(
                            "POST",
                            "/api/v1/auth/login",
                            &[
                                ("Content-Type", "application/json"),
                                ("CF-Connecting-IP", &format!("198.51.100.{i}")),
                            ],
                            json!({"email": email, "password": "wrong-password!"})
                                .to_string()
                                .as_bytes(),
                        )
                        .status
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let refused = answers.iter().filter(|s| **s == 401).count();
    let limited = answers.iter().filter(|s| **s == 429).count();
    assert!(refused <= 10, "{refused} answers of 401: {answers:?}");
    assert_eq!(refused + limited, 40, "{answers:?}");
}

#[test]
fn a_right_password_gives_its_attempt_back() {
    let TestUser {
        email, password, ..
    } = app().user();
    // Twenty good logins in a row stay far from the ten-attempt limit: each is given back.
    for _ in 0..20 {
        let ok = app().post(
            "/api/v1/auth/login",
            Auth::None,
            json!({"email": email, "password": password}),
        );
        assert_eq!(ok.status, 200, "{}", ok.text);
    }
    for _ in 0..10 {
        app()
            .post(
                "/api/v1/auth/login",
                Auth::None,
                json!({"email": email, "password": "wrong-password!"}),
            )
            .assert_error(401, "INVALID_CREDENTIALS");
    }
}

#[test]
fn the_sixth_registration_from_one_ipv6_64_in_a_day_is_refused() {
    let app = TestApp::spawn_with(Options::with(&[
        (Var::AuthAttemptsPerMinute, "1000"),
        (Var::SignupsPerIpPerDay, "5"),
    ]));
    let pid = std::process::id();
    let register = |ip: &str, n: u32| {
        app.raw(
            "POST",
            "/api/v1/auth/register",
            &[
                ("Content-Type", "application/json"),
                ("CF-Connecting-IP", ip),
            ],
            json!({"email": format!("v6-{n}-{pid}@example.com"), "password": "long-enough-pw", "name": "V6"})
                .to_string()
                .as_bytes(),
        )
    };
    // Five hosts of one /64: one bucket.
    for n in 0..5 {
        let r = register(&format!("2001:db8:77:1::{:x}", n + 1), n);
        assert_eq!(r.status, 201, "{}", r.text);
    }
    let r = register("2001:db8:77:1:ffff:ffff:ffff:ffff", 5);
    r.assert_error(429, "RATE_LIMIT_EXCEEDED");
    assert_eq!(r.body["details"]["reason"], "signups");
    let retry: u64 = r.header("Retry-After").unwrap().parse().unwrap();
    assert!((1..=86_400).contains(&retry), "until UTC midnight: {retry}");
    // Another /64 and an IPv4 address have their own.
    assert_eq!(register("2001:db8:77:2::1", 6).status, 201);
    assert_eq!(register("192.0.2.10", 7).status, 201);
}

#[test]
fn an_ip_blocked_for_failed_keys_stays_blocked_on_a_fresh_isolate() {
    let vars = [(Var::AuthFailuresPerMinute, "3")];
    let app = TestApp::spawn_with(Options::with(&vars));
    let jwt = app.user().jwt;
    let key = app.key(&jwt, Scope::ReadOnly).secret;
    let from = |app: &TestApp, ip: &str, key: &str| {
        app.raw(
            "GET",
            "/api/v1/twins",
            &[
                ("Authorization", &format!("Bearer {key}")),
                ("CF-Connecting-IP", ip),
            ],
            b"",
        )
    };
    for n in 1..=3 {
        from(&app, "203.0.113.50", &random_key(n)).assert_error(401, "INVALID_API_KEY");
    }
    from(&app, "203.0.113.50", &random_key(4)).assert_error(429, "RATE_LIMIT_EXCEEDED");
    // A new runtime on the same state: an isolate that never saw this IP fail.
    let state = app.state_dir.clone();
    drop(app);
    let app = TestApp::spawn_with(Options::with(&vars).state_dir(state));
    let r = from(&app, "203.0.113.50", &key);
    r.assert_error(429, "RATE_LIMIT_EXCEEDED");
    assert_eq!(r.body["details"]["reason"], "auth_failures");
    assert_eq!(from(&app, "203.0.113.51", &key).status, 200);
}
