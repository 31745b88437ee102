//! SPEC §16 against the real worker: client tokens (what a browser holds instead of an API key)
//! and the per-end-user limits a key sets.

use crate::common::{browser_script, screenshot_dir, Auth, Scope, JWT_SECRET};
use chrono::{TimeZone, Utc};
use serde_json::{json, Value};
use twinexpert::auth::{api_key, client_token};
use twinexpert::http::routes::{Access, CLIENT_ROUTES, ROUTES};

crate::common::app!(
    AuthAttemptsPerMinute = "1000",
    MaxConcurrentGenerations = "100",
    RateLimitFullAccessBurst = "1000",
    RateLimitFullAccessHourly = "5000"
);

struct Owner {
    jwt: String,
    key: String,
    key_id: String,
    twin: String,
}

fn owner() -> Owner {
    let jwt = app().user().jwt;
    let key = app().key(&jwt, Scope::FullAccess);
    let twin = twin(&jwt, "An");
    Owner {
        jwt,
        key: key.secret,
        key_id: key.id,
        twin,
    }
}

fn twin(jwt: &str, name: &str) -> String {
    let t = app().post(
        "/api/v1/twins",
        Auth::Bearer(jwt),
        json!({"name": format!("{name} {}", crate::common::unix_ms()), "systemPrompt": "Bạn là An, thợ gốm.", "language": "vi"}),
    );
    assert_eq!(t.status, 201, "{}", t.text);
    t.data()["id"].as_str().unwrap().to_owned()
}

fn mint(o: &Owner, body: Value) -> crate::common::Reply {
    app().post("/api/v1/client-tokens", Auth::Bearer(&o.key), body)
}

fn token(o: &Owner, end_user: &str) -> String {
    let r = mint(o, json!({"twinId": o.twin, "endUserId": end_user}));
    assert_eq!(r.status, 201, "{}", r.text);
    r.data()["token"].as_str().unwrap().to_owned()
}

/// `{id}`-style segments filled with a plausible id, so the route itself answers.
fn concrete(pattern: &str) -> String {
    pattern
        .split('/')
        .map(|seg| if seg.starts_with('{') { "x_1" } else { seg })
        .collect::<Vec<_>>()
        .join("/")
}

#[test]
fn a_client_token_does_what_it_grants_and_gets_403_everywhere_else() {
    let o = owner();
    let minted = mint(
        &o,
        json!({"twinId": o.twin, "endUserId": "eu-1", "expiresInSeconds": 120}),
    );
    assert_eq!(minted.status, 201, "{}", minted.text);
    let t = minted.data()["token"].as_str().unwrap().to_owned();
    assert!(t.starts_with("tect_"));
    assert_eq!(minted.header("cache-control"), Some("no-store"));
    assert_eq!(minted.data()["endUserId"], "eu-1");

    // Its own twin, conversations of its twin and end user, every turn route.
    assert_eq!(
        app()
            .get(&format!("/api/v1/twins/{}", o.twin), Auth::Bearer(&t))
            .status,
        200
    );
    let other_twin = twin(&o.jwt, "Bình");
    app()
        .get(&format!("/api/v1/twins/{other_twin}"), Auth::Bearer(&t))
        .assert_error(404, "NOT_FOUND");
    let c = app().post(
        "/api/v1/conversations",
        Auth::Bearer(&t),
        json!({"twinId": o.twin}),
    );
    assert_eq!(c.status, 201, "{}", c.text);
    assert_eq!(
        c.data()["endUserId"],
        "eu-1",
        "its end user, whatever the body says"
    );
    let conv = c.data()["id"].as_str().unwrap().to_owned();
    let seed = app().post(
        &format!("/api/v1/twins/{}", o.twin),
        Auth::Bearer(&t),
        json!({}),
    );
    assert_eq!(seed.status, 201, "{}", seed.text);
    app()
        .post(
            "/api/v1/conversations",
            Auth::Bearer(&t),
            json!({"twinId": other_twin}),
        )
        .assert_error(403, "FORBIDDEN");
    app()
        .post(
            "/api/v1/conversations",
            Auth::Bearer(&t),
            json!({"twinId": o.twin, "endUserId": "eu-2"}),
        )
        .assert_error(403, "FORBIDDEN");
    let sent = app().post(
        &format!("/api/v1/conversations/{conv}/messages"),
        Auth::Bearer(&t),
        json!({"content": "Xin chào"}),
    );
    assert_eq!(sent.status, 201, "{}", sent.text);
    let reply = sent.data()["message"]["id"].as_str().unwrap().to_owned();
    let s = app().open_stream(
        &format!("/api/v1/conversations/{conv}/messages/stream"),
        Auth::Bearer(&t),
        json!({"content": "Thêm nữa"}),
    );
    assert!(s.collect().0.iter().any(|e| e.event == "complete"));
    for (method, path, body) in [
        ("GET", format!("/api/v1/conversations/{conv}"), None),
        (
            "GET",
            format!("/api/v1/conversations/{conv}/messages"),
            None,
        ),
        (
            "GET",
            format!("/api/v1/conversations/{conv}/messages/{reply}/stream"),
            None,
        ),
        (
            "POST",
            format!("/api/v1/conversations/{conv}/messages/{reply}/cancel"),
            Some(json!({})),
        ),
        (
            "POST",
            format!("/api/v1/conversations/{conv}/messages/{reply}/feedback"),
            Some(json!({"rating": 1})),
        ),
    ] {
        let r = app().send(method, &path, Auth::Bearer(&t), body);
        assert_eq!(r.status, 200, "{method} {path}: {}", r.text);
    }
    // The same account's conversation of another end user is not its.
    let theirs = app().post(
        "/api/v1/conversations",
        Auth::Bearer(&o.key),
        json!({"twinId": o.twin, "endUserId": "eu-2"}),
    );
    let theirs = theirs.data()["id"].as_str().unwrap();
    for path in ["", "/messages"] {
        app()
            .get(
                &format!("/api/v1/conversations/{theirs}{path}"),
                Auth::Bearer(&t),
            )
            .assert_error(404, "NOT_FOUND");
    }
    app()
        .post(
            &format!("/api/v1/conversations/{theirs}/messages"),
            Auth::Bearer(&t),
            json!({"content": "x"}),
        )
        .assert_error(404, "NOT_FOUND");

    // Every other route of the table: 403, before anything else is looked at.
    let mut refused = 0;
    for route in ROUTES {
        if CLIENT_ROUTES.contains(&route.id)
            || matches!(route.access, Access::Public | Access::PublicPerIp)
        {
            continue;
        }
        let path = format!("/api/v1{}", concrete(route.pattern));
        let body = (route.method != "GET" && route.method != "DELETE").then(|| json!({}));
        let r = app().send(route.method, &path, Auth::Bearer(&t), body);
        let code = r.body["error"]["code"]
            .as_str()
            .or(r.body["error"].as_str())
            .unwrap_or("");
        assert_eq!(
            (r.status, code),
            (403, "FORBIDDEN"),
            "{} {path}: {}",
            route.method,
            r.text
        );
        refused += 1;
    }
    assert!(refused >= 30, "{refused}");
}

#[test]
fn tokens_are_minted_by_a_key_expire_and_stop_with_their_key() {
    let o = owner();
    // Minting: a full_access key only, for a twin it can use.
    let read_only = app().key(&o.jwt, Scope::ReadOnly).secret;
    app()
        .post(
            "/api/v1/client-tokens",
            Auth::Bearer(&read_only),
            json!({"twinId": o.twin, "endUserId": "e"}),
        )
        .assert_error(403, "INSUFFICIENT_SCOPE");
    app()
        .post(
            "/api/v1/client-tokens",
            Auth::Bearer(&o.jwt),
            json!({"twinId": o.twin, "endUserId": "e"}),
        )
        .assert_error(403, "FORBIDDEN");
    mint(&o, json!({"twinId": o.twin})).assert_invalid("endUserId");
    mint(
        &o,
        json!({"twinId": o.twin, "endUserId": "e", "expiresInSeconds": 7200}),
    )
    .assert_invalid("expiresInSeconds");
    mint(&o, json!({"twinId": "twn_nope", "endUserId": "e"})).assert_error(404, "NOT_FOUND");

    // A genuine token past its time: its own 401, so the app knows to mint another.
    let hash = api_key::hash(&o.key);
    let me = app().get("/api/v1/auth/me", Auth::Bearer(&o.jwt));
    let user_id = me.data()["id"].as_str().unwrap();
    let grant = client_token::Grant::new(user_id, (&o.key_id, &hash), &o.twin, "e", None);
    let old = client_token::issue(
        JWT_SECRET.as_bytes(),
        &grant,
        Utc.timestamp_opt(1_700_000_000, 0).unwrap(),
        600,
    )
    .unwrap();
    app()
        .get(&format!("/api/v1/twins/{}", o.twin), Auth::Bearer(&old))
        .assert_error(401, "CLIENT_TOKEN_EXPIRED");
    // Forged, or signed with another secret: INVALID_TOKEN.
    let forged = client_token::issue(
        b"not-the-server-secret-0123456789abcdef",
        &grant,
        Utc::now(),
        600,
    )
    .unwrap();
    for bad in [forged.as_str(), "tect_x.y.z"] {
        app()
            .get(&format!("/api/v1/twins/{}", o.twin), Auth::Bearer(bad))
            .assert_error(401, "INVALID_TOKEN");
    }

    // Revoking the key stops its tokens at once.
    let t = token(&o, "e");
    assert_eq!(
        app()
            .get(&format!("/api/v1/twins/{}", o.twin), Auth::Bearer(&t))
            .status,
        200
    );
    let revoked = app().delete(
        &format!("/api/v1/auth/api-keys/{}", o.key_id),
        Auth::Bearer(&o.jwt),
    );
    assert_eq!(revoked.status, 200, "{}", revoked.text);
    app()
        .get(&format!("/api/v1/twins/{}", o.twin), Auth::Bearer(&t))
        .assert_error(401, "INVALID_TOKEN");
}

#[test]
fn per_end_user_limits_are_exact_and_one_end_user_never_touches_another() {
    let o = owner();
    let set = |limits: Value| {
        let r = app().patch(
            &format!("/api/v1/auth/api-keys/{}", o.key_id),
            Auth::Bearer(&o.jwt),
            json!({ "endUserLimits": limits }),
        );
        assert_eq!(r.status, 200, "{}", r.text);
        r
    };
    let updated = set(json!({"messagesPerHour": 5}));
    assert_eq!(
        updated.data()["endUserLimits"],
        json!({"messagesPerHour": 5})
    );
    app()
        .patch(
            &format!("/api/v1/auth/api-keys/{}", o.key_id),
            Auth::Bearer(&o.jwt),
            json!({"endUserLimits": {"messagesPerHour": 0}}),
        )
        .assert_invalid("messagesPerHour");
    app()
        .patch(
            &format!("/api/v1/auth/api-keys/{}", o.key_id),
            Auth::Bearer(&o.key),
            json!({"endUserLimits": null}),
        )
        .assert_error(403, "FORBIDDEN");

    // 50 at once for one end user: exactly 5 pass.
    let complete = |user: &str| {
        app().chat_completion(
            &o.key,
            json!({"model": o.twin, "user": user, "messages": [{"role": "user", "content": "Chào [[words:3]]"}]}),
        )
    };
    let replies: Vec<crate::common::Reply> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..50).map(|_| s.spawn(|| complete("eu-a"))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let ok = replies.iter().filter(|r| r.status == 200).count();
    let limited: Vec<_> = replies.iter().filter(|r| r.status == 429).collect();
    assert_eq!(
        (ok, limited.len()),
        (5, 45),
        "{:?}",
        replies.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    let r = limited[0];
    assert_eq!(
        r.body["error"]["code"], "END_USER_LIMIT_EXCEEDED",
        "{}",
        r.text
    );
    assert!(r.header("retry-after").is_some());
    assert_eq!(
        r.header("ratelimit-policy"),
        Some("\"messagesPerHour\";q=5;w=3600")
    );
    // Another end user of the same key is untouched; so is the account without an end user.
    assert_eq!(complete("eu-b").status, 200);
    // The key's client tokens are held to the same limit for their end user.
    let t = token(&o, "eu-a");
    let conv = app().post(
        "/api/v1/conversations",
        Auth::Bearer(&t),
        json!({"twinId": o.twin}),
    );
    let conv = conv.data()["id"].as_str().unwrap();
    app()
        .post(
            &format!("/api/v1/conversations/{conv}/messages"),
            Auth::Bearer(&t),
            json!({"content": "x"}),
        )
        .assert_error(429, "END_USER_LIMIT_EXCEEDED");

    // Tokens per day, exact too: of 10 at once one passes (it holds the most it may use until
    // its usage is recorded), and the next finds the day's tokens spent.
    set(json!({"tokensPerDay": 1}));
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..10)
            .map(|_| s.spawn(|| complete("eu-c").status))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    let over = complete("eu-c");
    assert_eq!(over.status, 429, "{}", over.text);
    assert_eq!(
        over.header("ratelimit-policy"),
        Some("\"tokensPerDay\";q=1;w=86400")
    );
    assert_eq!(complete("eu-d").status, 200);

    // Cleared: unlimited again.
    let cleared = set(json!(null));
    assert!(cleared.data()["endUserLimits"].is_null());
    assert_eq!(complete("eu-a").status, 200);
}

#[test]
fn the_widget_streams_on_another_origin_and_resumes_after_a_reload() {
    let o = owner();
    let doc = app().post(
        &format!("/api/v1/twins/{}/knowledge", o.twin),
        Auth::Bearer(&o.jwt),
        json!({"title": "Men gốm Bát Tràng", "content": "Men gốm Bát Tràng được nung ở khoảng 1200 độ trong lò bầu."}),
    );
    assert_eq!(doc.status, 201, "{}", doc.text);
    let dir = screenshot_dir();
    browser_script(
        "widget.mjs",
        &[&app().base, &o.key, &o.twin, dir.to_str().unwrap()],
    );
    for shot in ["widget-360.png", "widget-1280.png"] {
        assert!(
            std::fs::metadata(dir.join(shot)).unwrap().len() > 5_000,
            "{shot}"
        );
    }
}
