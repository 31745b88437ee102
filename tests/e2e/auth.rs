//! Accounts, JWTs and the API-key lifecycle against the real worker.

use crate::common::{eventually, Auth, Reply, Scope, TestKey, TestUser, JWT_SECRET};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use twinexpert::auth::api_key;
use twinexpert::auth::token;

// One generation at a time per account: the slot a turn takes beside its key's verdict is seen.
crate::common::app!(
    AuthAttemptsPerMinute = "1000",
    KeyRecordTtlSecs = "0",
    MaxConcurrentGenerations = "1"
);

#[test]
fn register_returns_user_and_token_and_email_is_unique_ignoring_case() {
    let email = format!("Mai.{}@Example.com", std::process::id());
    let r = app().post(
        "/api/v1/auth/register",
        Auth::None,
        json!({"email": email, "password": "0123456789", "name": "Mai"}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let data = r.data();
    assert_eq!(data["user"]["email"], email.to_lowercase());
    assert_eq!(data["user"]["name"], "Mai");
    assert!(data["user"]["id"].as_str().unwrap().starts_with("usr_"));
    assert!(data["user"].get("passwordHash").is_none() && !r.text.contains("pbkdf2"));
    assert_eq!(data["token"].as_str().unwrap().matches('.').count(), 2);

    let again = app().post(
        "/api/v1/auth/register",
        Auth::None,
        json!({"email": email.to_uppercase(), "password": "0123456789", "name": "Mai"}),
    );
    again.assert_error(409, "CONFLICT");
}

#[test]
fn register_names_every_bad_field() {
    let r = app().post(
        "/api/v1/auth/register",
        Auth::None,
        json!({"email": "not-an-email", "password": "short"}),
    );
    r.assert_error(400, "VALIDATION_ERROR");
    let fields = &r.body["details"]["fields"];
    assert!(
        fields["email"].is_string() && fields["password"].is_string() && fields["name"].is_string(),
        "{fields}"
    );
    let r = app().post(
        "/api/v1/auth/register",
        Auth::None,
        json!({"email": 5, "password": ["x"], "name": ""}),
    );
    assert_eq!(
        r.body["details"]["fields"].as_object().unwrap().len(),
        3,
        "{}",
        r.text
    );
}

#[test]
fn login_succeeds_and_fails_the_same_way_for_wrong_password_or_unknown_email() {
    let TestUser {
        email, password, ..
    } = app().user();
    let r = app().post(
        "/api/v1/auth/login",
        Auth::None,
        json!({"email": email.to_uppercase(), "password": password}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.data()["expiresIn"], 3600);
    assert_eq!(r.data()["user"]["email"], email);
    let jwt = r.data()["token"].as_str().unwrap();
    assert_eq!(app().get("/api/v1/auth/me", Auth::Bearer(jwt)).status, 200);

    let wrong = app().post(
        "/api/v1/auth/login",
        Auth::None,
        json!({"email": email, "password": "wrong-password"}),
    );
    wrong.assert_error(401, "INVALID_CREDENTIALS");
    let unknown = app().post(
        "/api/v1/auth/login",
        Auth::None,
        json!({"email": "nobody@example.com", "password": password}),
    );
    unknown.assert_error(401, "INVALID_CREDENTIALS");
    assert_eq!(wrong.body["message"], unknown.body["message"]);
}

#[test]
fn credentials_are_checked_in_order_and_reported_precisely() {
    app()
        .get("/api/v1/auth/me", Auth::None)
        .assert_error(401, "UNAUTHORIZED");
    let seed = app().get("/api/v1/auth/me", Auth::Bearer("123456"));
    seed.assert_error(401, "INVALID_API_KEY_FORMAT");
    assert_eq!(seed.body["message"], "Invalid API key format");
    // Right shape, right checksum, but never issued.
    let body = "abcdefghijABCDEFGHIJ0123456789";
    let unknown = format!("te_{body}{}", api_key::checksum(body));
    app()
        .get("/api/v1/auth/me", Auth::XApiKey(&unknown))
        .assert_error(401, "INVALID_API_KEY");
    app()
        .get("/api/v1/auth/me", Auth::Bearer("a.b.c"))
        .assert_error(401, "INVALID_TOKEN");
}

#[test]
fn expired_tampered_and_foreign_tokens_are_invalid() {
    let jwt = app().user().jwt;
    let me = app().get("/api/v1/auth/me", Auth::Bearer(&jwt));
    let user_id = me.data()["id"].as_str().unwrap().to_owned();

    let past = chrono::Utc::now() - chrono::Duration::hours(2);
    let expired = token::issue(JWT_SECRET.as_bytes(), &user_id, past, 3600).unwrap();
    app()
        .get("/api/v1/auth/me", Auth::Bearer(&expired))
        .assert_error(401, "INVALID_TOKEN");

    let foreign = token::issue(b"some-other-secret", &user_id, chrono::Utc::now(), 3600).unwrap();
    app()
        .get("/api/v1/auth/me", Auth::Bearer(&foreign))
        .assert_error(401, "INVALID_TOKEN");

    let mut tampered = jwt.clone();
    tampered.pop();
    tampered.push(if jwt.ends_with('A') { 'B' } else { 'A' });
    app()
        .get("/api/v1/auth/me", Auth::Bearer(&tampered))
        .assert_error(401, "INVALID_TOKEN");
}

#[test]
fn api_key_lifecycle_create_use_list_revoke() {
    let jwt = app().user().jwt;
    let created = app().post(
        "/api/v1/auth/api-keys",
        Auth::Bearer(&jwt),
        json!({"name": "My App", "scope": "full_access"}),
    );
    assert_eq!(created.status, 201, "{}", created.text);
    let d = created.data();
    let key = d["key"].as_str().unwrap().to_owned();
    let id = d["id"].as_str().unwrap().to_owned();
    assert!(api_key::is_well_formed(&key), "{key}");
    assert_eq!(key.len(), 39);
    assert_eq!(d["prefix"], &key[3..11]);
    assert_eq!(
        (d["name"].as_str(), d["scope"].as_str()),
        (Some("My App"), Some("full_access"))
    );
    assert!(d["createdAt"].is_string() && d["expiresAt"].is_null());

    // Both headers work, and /auth/me names the key.
    for auth in [Auth::Bearer(&key), Auth::XApiKey(&key)] {
        let me = app().get("/api/v1/auth/me", auth);
        assert_eq!(me.status, 200, "{}", me.text);
        assert_eq!(
            me.data()["apiKey"],
            json!({"id": id, "name": "My App", "scope": "full_access"})
        );
    }

    // Show once: the list never carries the plaintext; lastUsedAt is written off the hot path.
    eventually("lastUsedAt to be written", Duration::from_secs(10), || {
        let list = app().get("/api/v1/auth/api-keys", Auth::Bearer(&jwt));
        assert_eq!(list.status, 200);
        assert!(!list.text.contains(&key) && !list.text.contains(&key[11..]));
        let entry = list
            .data()
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["id"] == id.as_str())
            .unwrap()
            .clone();
        assert!(entry.get("key").is_none());
        entry["lastUsedAt"].as_str().map(drop)
    });

    // Revocation takes effect on the very next request.
    let revoked = app().delete(&format!("/api/v1/auth/api-keys/{id}"), Auth::Bearer(&jwt));
    assert_eq!(revoked.status, 200, "{}", revoked.text);
    assert!(revoked.data()["revokedAt"].is_string());
    app()
        .get("/api/v1/auth/me", Auth::Bearer(&key))
        .assert_error(401, "INVALID_API_KEY");
}

#[test]
fn default_scope_is_read_only_and_bad_input_is_named() {
    let jwt = app().user().jwt;
    let r = app().post(
        "/api/v1/auth/api-keys",
        Auth::Bearer(&jwt),
        json!({"name": "reader"}),
    );
    assert_eq!(r.data()["scope"], "read_only");
    let r = app().post(
        "/api/v1/auth/api-keys",
        Auth::Bearer(&jwt),
        json!({"name": "", "scope": "admin", "expiresInDays": 0}),
    );
    r.assert_error(400, "VALIDATION_ERROR");
    let f = &r.body["details"]["fields"];
    assert!(
        f["name"].is_string() && f["scope"].is_string() && f["expiresInDays"].is_string(),
        "{f}"
    );
    let r = app().post(
        "/api/v1/auth/api-keys",
        Auth::Bearer(&jwt),
        json!({"name": "year", "expiresInDays": 365}),
    );
    let expires =
        twinexpert::platform::time::parse_rfc3339_ms(r.data()["expiresAt"].as_str().unwrap())
            .unwrap();
    let created =
        twinexpert::platform::time::parse_rfc3339_ms(r.data()["createdAt"].as_str().unwrap())
            .unwrap();
    assert_eq!(expires - created, 365 * 86_400_000);
}

#[test]
fn key_management_needs_a_session_not_a_key() {
    let jwt = app().user().jwt;
    let TestKey { secret: key, id } = app().key(&jwt, Scope::FullAccess);
    let r = app().post(
        "/api/v1/auth/api-keys",
        Auth::Bearer(&key),
        json!({"name": "x"}),
    );
    r.assert_error(403, "FORBIDDEN");
    app()
        .get("/api/v1/auth/api-keys", Auth::XApiKey(&key))
        .assert_error(403, "FORBIDDEN");
    app()
        .delete(&format!("/api/v1/auth/api-keys/{id}"), Auth::Bearer(&key))
        .assert_error(403, "FORBIDDEN");
}

#[test]
fn another_users_key_cannot_be_revoked() {
    let alice = app().user().jwt;
    let bob = app().user().jwt;
    let TestKey {
        secret: alice_key,
        id: alice_key_id,
    } = app().key(&alice, Scope::ReadOnly);
    app()
        .delete(
            &format!("/api/v1/auth/api-keys/{alice_key_id}"),
            Auth::Bearer(&bob),
        )
        .assert_error(404, "NOT_FOUND");
    assert_eq!(
        app()
            .get("/api/v1/auth/me", Auth::Bearer(&alice_key))
            .status,
        200
    );
    let bobs_list = app().get("/api/v1/auth/api-keys", Auth::Bearer(&bob));
    assert!(!bobs_list.text.contains(&alice_key_id));
}

#[test]
fn an_expired_key_is_refused_as_expired() {
    let jwt = app().user().jwt;
    let TestKey { secret: key, id } = app().key(&jwt, Scope::ReadOnly);
    assert_eq!(app().get("/api/v1/auth/me", Auth::Bearer(&key)).status, 200);
    app().d1(&format!(
        "UPDATE api_keys SET expires_at = '2001-01-01T00:00:00.000Z' WHERE id = '{id}'"
    ));
    app()
        .get("/api/v1/auth/me", Auth::Bearer(&key))
        .assert_error(401, "API_KEY_EXPIRED");
}

#[test]
fn logs_never_contain_passwords_keys_or_tokens() {
    let TestUser {
        email, password, ..
    } = app().user();
    let login = app().post(
        "/api/v1/auth/login",
        Auth::None,
        json!({"email": email, "password": password}),
    );
    let jwt = login.data()["token"].as_str().unwrap().to_owned();
    let TestKey {
        secret: key,
        id: key_id,
    } = app().key(&jwt, Scope::ReadOnly);
    let me = app().get("/api/v1/auth/me", Auth::Bearer(&key));
    let rid = me.header("X-Request-Id").unwrap().to_owned();
    // Wait until the keyed request's own log line is there, so the check covers it.
    let log = eventually("the request's log line", Duration::from_secs(10), || {
        Some(app().log()).filter(|log| log.contains(&rid))
    });
    assert!(log.contains(&key_id), "the key id should be logged");
    for secret in [
        password.as_str(),
        key.as_str(),
        jwt.as_str(),
        &jwt[jwt.len() - 20..],
        crate::common::JWT_SECRET,
    ] {
        assert!(!log.contains(secret), "a secret reached the log");
    }
}

/// A generation starts while its key's object is still deciding (issue 27: the conversation's
/// row, or the twin's persona, is read beside the verdict). It stores, counts and spends
/// nothing unless the verdict admits the very caller it was started for. A key this worker
/// admitted before and that then changed, or was revoked, is where the early start guessed
/// wrong: a changed key's request runs again, once and whole, for its new record; a revoked
/// key's is refused with nothing kept.
#[test]
fn a_generation_started_before_its_keys_verdict_acts_only_on_that_verdict() {
    let jwt = app().user().jwt;
    let key = app().key(&jwt, Scope::FullAccess);
    let twin = app().post(
        "/api/v1/twins",
        Auth::Bearer(&jwt),
        json!({"name": format!("Lan {}", &key.id[4..12]), "systemPrompt": "Bạn là Lan.", "language": "vi"}),
    );
    let twin = twin.data()["id"].as_str().unwrap().to_owned();
    let conv = app().post(
        "/api/v1/conversations",
        Auth::Bearer(&key.secret),
        json!({"twinId": twin}),
    );
    let conv = conv.data()["id"].as_str().unwrap().to_owned();
    let turn = || {
        app().post(
            &format!("/api/v1/conversations/{conv}/messages"),
            Auth::Bearer(&key.secret),
            json!({"content": "Chào [[words:3]]"}),
        )
    };
    let stored = || {
        let r = app().get(
            &format!("/api/v1/conversations/{conv}/messages?limit=100"),
            Auth::Bearer(&jwt),
        );
        r.data().as_array().unwrap().len()
    };
    let limit = |limits: Value| {
        let r = app().patch(
            &format!("/api/v1/auth/api-keys/{}", key.id),
            Auth::Bearer(&jwt),
            json!({ "endUserLimits": limits }),
        );
        assert_eq!(r.status, 200, "{}", r.text);
    };
    let complete = || {
        app().chat_completion(
            &key.secret,
            json!({"model": twin, "user": "eu-1", "messages": [{"role": "user", "content": "Chào [[words:3]]"}]}),
        )
    };
    // The worker learns the key.
    assert_eq!(turn().status, 201);
    assert_eq!(stored(), 2);

    // The key's record changes: the turn started for the old one runs again for the new one,
    // with its body whole, and is stored once.
    limit(json!({"messagesPerHour": 2}));
    let again = turn();
    assert_eq!(again.status, 201, "{}", again.text);
    assert_eq!(stored(), 4);
    // The same for a completion: the early start counted nothing against the end user's
    // limit, so the run that counts is the second of the hour, and the next is refused.
    assert_eq!(complete().status, 200);
    limit(json!({"messagesPerHour": 2, "tokensPerDay": 100000}));
    let second = complete();
    assert_eq!(second.status, 200, "{}", second.text);
    let third = complete();
    assert_eq!(third.status, 429, "{}", third.text);
    assert_eq!(third.body["error"]["code"], "END_USER_LIMIT_EXCEEDED");

    // Revoked: refused, and nothing of the turn or the completion is kept.
    let revoked = app().delete(
        &format!("/api/v1/auth/api-keys/{}", key.id),
        Auth::Bearer(&jwt),
    );
    assert_eq!(revoked.status, 200, "{}", revoked.text);
    turn().assert_error(401, "INVALID_API_KEY");
    let streamed = app()
        .try_stream(
            "POST",
            &format!("/api/v1/conversations/{conv}/messages/stream"),
            Auth::Bearer(&key.secret),
            &[],
            Some(json!({"content": "Chào"})),
        )
        .err()
        .expect("a revoked key's stream is refused before it opens");
    streamed.assert_error(401, "INVALID_API_KEY");
    assert_eq!(complete().status, 401);
    assert_eq!(stored(), 4);
    // Two turns and two completions, each counted once.
    eventually(
        "the usage of 4 generations",
        Duration::from_secs(10),
        || {
            let usage = app().get("/api/v1/usage", Auth::Bearer(&jwt));
            (usage.body["meta"]["totals"]["requests"] == 4).then_some(())
        },
    );
}

/// Two conversations, opened with `key`, with a new twin of the account `jwt` signs in.
fn two_conversations(jwt: &str, key: &str, name: &str) -> (String, String) {
    let twin = app().post(
        "/api/v1/twins",
        Auth::Bearer(jwt),
        json!({"name": format!("{name} {}", &key[3..11]), "systemPrompt": format!("Bạn là {name}.")}),
    );
    let twin = twin.data()["id"].as_str().unwrap().to_owned();
    let conv = || {
        let c = app().post(
            "/api/v1/conversations",
            Auth::Bearer(key),
            json!({"twinId": twin}),
        );
        c.data()["id"].as_str().unwrap().to_owned()
    };
    (conv(), conv())
}

/// A short plain turn.
fn say(key: &str, conv: &str) -> Reply {
    app().post(
        &format!("/api/v1/conversations/{conv}/messages"),
        Auth::Bearer(key),
        json!({"content": "Chào [[words:2]]"}),
    )
}

/// The account's slot for a turn started beside its key's verdict is only held, in the account
/// object's memory, until the turn starts (`spend::gate::HOLD_MS`, 10 s); the conversation's
/// object then confirms it for the whole generation. A refused verdict gives the hold back at
/// once. (One generation at a time per account in this app.)
#[test]
fn a_slot_taken_beside_the_verdict_is_kept_for_the_generation_and_freed_by_a_refusal() {
    let jwt = app().user().jwt;
    let (key, other) = (
        app().key(&jwt, Scope::FullAccess),
        app().key(&jwt, Scope::FullAccess),
    );
    let (first, second) = two_conversations(&jwt, &key.secret, "Minh");
    // The worker learns both keys.
    assert_eq!(say(&key.secret, &first).status, 201);
    assert_eq!(say(&other.secret, &first).status, 201);

    // A generation of about 12 s outlives its hold, and still has the account's one slot.
    let started = Instant::now();
    let long = app().open_stream(
        &format!("/api/v1/conversations/{first}/messages/stream"),
        Auth::Bearer(&key.secret),
        json!({"content": "Dài [[pace:800]] [[words:15]]"}),
    );
    assert_eq!(long.status, 200);
    std::thread::sleep(Duration::from_millis(11_000).saturating_sub(started.elapsed()));
    say(&key.secret, &second).assert_error(429, "CONCURRENCY_LIMIT_EXCEEDED");
    let (_, text) = long.collect();
    assert!(!text.is_empty());
    eventually(
        "the slot back after the generation",
        Duration::from_secs(5),
        || (say(&key.secret, &second).status == 201).then_some(()),
    );

    // A message refused for its body (read beside the slot's hold) gives the slot back too.
    let bad = app().post(
        &format!("/api/v1/conversations/{second}/messages"),
        Auth::Bearer(&key.secret),
        json!({"content": ""}),
    );
    assert_eq!(bad.status, 400, "{}", bad.text);
    let next = say(&key.secret, &second);
    assert_eq!(next.status, 201, "{}", next.text);

    // The other key is revoked; its turn, started before its verdict, held the slot and gave
    // it back with the refusal: the next turn of the account runs at once.
    let revoked = app().delete(
        &format!("/api/v1/auth/api-keys/{}", other.id),
        Auth::Bearer(&jwt),
    );
    assert_eq!(revoked.status, 200, "{}", revoked.text);
    say(&other.secret, &second).assert_error(401, "INVALID_API_KEY");
    let next = say(&key.secret, &second);
    assert_eq!(next.status, 201, "{}", next.text);
}

/// The conversation's object confirms a turn's slot once the model's answer begins, or after
/// 5 s without one: a model that has not answered when the 10 s hold would lapse still holds
/// the account's one slot, until the turn is cancelled.
#[test]
fn a_slot_is_kept_while_the_model_has_not_answered_yet() {
    let jwt = app().user().jwt;
    let key = app().key(&jwt, Scope::FullAccess);
    let (first, second) = two_conversations(&jwt, &key.secret, "Lan");
    let say = |conv: &str| say(&key.secret, conv);
    // The worker learns the key: its next turn takes its slot beside the verdict.
    assert_eq!(say(&first).status, 201);

    let started = Instant::now();
    let stalled = app().open_stream(
        &format!("/api/v1/conversations/{first}/messages/stream"),
        Auth::Bearer(&key.secret),
        json!({"content": "Chờ [[stall:0]]"}),
    );
    assert_eq!(stalled.status, 200);
    let reply = stalled.message_id.clone().expect("X-Message-Id");
    std::thread::sleep(Duration::from_millis(11_000).saturating_sub(started.elapsed()));
    say(&second).assert_error(429, "CONCURRENCY_LIMIT_EXCEEDED");

    let cancel = app().post(
        &format!("/api/v1/conversations/{first}/messages/{reply}/cancel"),
        Auth::Bearer(&key.secret),
        json!({}),
    );
    assert_eq!(cancel.status, 200, "{}", cancel.text);
    eventually(
        "the slot back after the cancel",
        Duration::from_secs(5),
        || (say(&second).status == 201).then_some(()),
    );
}
