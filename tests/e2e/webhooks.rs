//! Background turns and signed webhooks (docs/webhooks.md, SPEC §15), against a local
//! receiver: one signed delivery per event, retries on the (shortened) schedule with the same
//! `webhook-id`, the delivery log, redelivery, the URL guard, and nothing lost when the
//! runtime dies mid-delivery.

use crate::common::{eventually, Auth, Options, Received, Receiver, Reply, Scope, TestApp, Var};
use serde_json::{json, Value};
use std::time::Duration;

const VARS: [(Var, &str); 3] = [
    (Var::AuthAttemptsPerMinute, "1000"),
    (Var::WebhookAllowHttpHosts, "127.0.0.1"),
    // A retry 1 s, then 2 s after a failure: three attempts in all.
    (Var::WebhookRetryScheduleSecs, "1,2"),
];

fn app() -> &'static TestApp {
    static APP: std::sync::OnceLock<TestApp> = std::sync::OnceLock::new();
    crate::common::shared_app(&APP, options())
}

fn options() -> Options {
    Options::with(&VARS)
}

/// A user's JWT, a full_access key, and a conversation with a twin of theirs.
fn setup(app: &TestApp) -> (String, String, String) {
    let jwt = app.user().jwt;
    let key = app.key(&jwt, Scope::FullAccess).secret;
    let twin = app.post(
        "/api/v1/twins",
        Auth::Bearer(&jwt),
        json!({"name": format!("Hook {}", &key[3..11]), "systemPrompt": "You are Hook."}),
    );
    let conv = app.post(
        "/api/v1/conversations",
        Auth::Bearer(&key),
        json!({"twinId": twin.data()["id"]}),
    );
    (jwt, key, conv.data()["id"].as_str().unwrap().to_owned())
}

fn endpoint(app: &TestApp, jwt: &str, url: &str, events: &[&str]) -> (String, String) {
    let r = app.post(
        "/api/v1/webhooks",
        Auth::Bearer(jwt),
        json!({"url": url, "events": events, "description": "test receiver"}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let secret = r.data()["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"), "{secret}");
    (r.data()["id"].as_str().unwrap().to_owned(), secret)
}

fn background(app: &TestApp, key: &str, conv: &str, content: &str) -> Reply {
    app.post(
        &format!("/api/v1/conversations/{conv}/messages"),
        Auth::Bearer(key),
        json!({"content": content, "background": true}),
    )
}

fn deliveries(app: &TestApp, jwt: &str, hook: &str) -> Vec<Value> {
    let r = app.get(
        &format!("/api/v1/webhooks/{hook}/deliveries"),
        Auth::Bearer(jwt),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    r.data().as_array().unwrap().clone()
}

/// Waits until the endpoint's only delivery has this status; that delivery.
fn settled(app: &TestApp, jwt: &str, hook: &str, status: &str) -> Value {
    eventually(
        &format!("the delivery to be {status}"),
        Duration::from_secs(30),
        || {
            let list = deliveries(app, jwt, hook);
            (list.len() == 1 && list[0]["status"] == status).then(|| list[0].clone())
        },
    )
}

/// Checks a request's signature with the official Standard Webhooks library (Python).
fn verify(secret: &str, r: &Received) {
    let script = r#"
import json, sys
from standardwebhooks.webhooks import Webhook
Webhook(sys.argv[1]).verify(sys.argv[2], json.loads(sys.argv[3]))
print("verified")
"#;
    let headers = json!({
        "webhook-id": r.headers["webhook-id"],
        "webhook-timestamp": r.headers["webhook-timestamp"],
        "webhook-signature": r.headers["webhook-signature"],
    });
    let out = std::process::Command::new(crate::common::root().join(".tools/py/bin/python"))
        .args(["-c", script, secret, &r.body, &headers.to_string()])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "verified",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_background_turn_delivers_one_signed_message_completed() {
    let (jwt, key, conv) = setup(app());
    let receiver = Receiver::start(&[]);
    let (hook, secret) = endpoint(
        app(),
        &jwt,
        &receiver.url,
        &["message.completed", "message.failed"],
    );
    let r = background(
        app(),
        &key,
        &conv,
        "Background please [[pace:30]] [[words:8]]",
    );
    assert_eq!(r.status, 202, "{}", r.text);
    assert_eq!(r.data()["message"]["status"], "generating");
    let message_id = r.data()["message"]["id"].as_str().unwrap().to_owned();

    let got = receiver.wait_for(1, Duration::from_secs(30));
    let delivery = settled(app(), &jwt, &hook, "succeeded");
    assert_eq!(
        (
            delivery["attempts"].as_u64(),
            delivery["responseCode"].as_u64()
        ),
        (Some(1), Some(200))
    );
    assert_eq!(receiver.received().len(), 1, "delivered exactly once");
    verify(&secret, &got[0]);
    // Another secret does not verify it: the check is real.
    let forged =
        std::panic::catch_unwind(|| verify("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", &got[0]));
    assert!(forged.is_err());

    let event = got[0].json();
    assert_eq!(event["type"], "message.completed");
    assert_eq!(got[0].headers["webhook-id"], delivery["eventId"]);
    let history = app().get(
        &format!("/api/v1/conversations/{conv}/messages"),
        Auth::Bearer(&key),
    );
    let stored = &history.data()[1];
    assert_eq!(stored["id"], message_id.as_str());
    assert_eq!(
        event["data"]["message"], *stored,
        "the payload is the stored message"
    );
    assert_eq!(event["data"]["conversationId"], conv.as_str());
    assert_eq!(event["data"]["usage"], stored["usage"]);
    assert!(event["data"]["twinId"]
        .as_str()
        .unwrap()
        .starts_with("twn_"));
}

#[test]
fn a_failing_receiver_is_retried_on_the_schedule_with_the_same_webhook_id() {
    let (jwt, key, conv) = setup(app());
    let receiver = Receiver::start(&[500, 500]);
    let (hook, secret) = endpoint(app(), &jwt, &receiver.url, &["message.completed"]);
    assert_eq!(
        background(app(), &key, &conv, "Retry me [[words:3]]").status,
        202
    );
    let got = receiver.wait_for(3, Duration::from_secs(30));
    let delivery = settled(app(), &jwt, &hook, "succeeded");
    assert_eq!(delivery["attempts"], 3);
    assert_eq!(receiver.received().len(), 3);
    let ids: Vec<&String> = got.iter().map(|r| &r.headers["webhook-id"]).collect();
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    for r in &got {
        verify(&secret, r);
    }
    // The schedule (1 s, then 2 s) between the attempts.
    let gaps: Vec<f64> = got
        .windows(2)
        .map(|w| (w[1].at - w[0].at).as_secs_f64())
        .collect();
    assert!(gaps[0] >= 0.9 && gaps[1] >= 1.9, "{gaps:?}");

    // A receiver failing every attempt: failed after the last, kept in the log; a redelivery is
    // one more attempt, with the same webhook-id.
    let failing = Receiver::start(&[503, 503, 503]);
    let conv2 = app().post(
        "/api/v1/conversations",
        Auth::Bearer(&key),
        json!({"twinId": app().get(&format!("/api/v1/conversations/{conv}"), Auth::Bearer(&key)).data()["twinId"]}),
    );
    let conv2 = conv2.data()["id"].as_str().unwrap().to_owned();
    app().patch(
        &format!("/api/v1/webhooks/{hook}"),
        Auth::Bearer(&jwt),
        json!({"url": failing.url}),
    );
    assert_eq!(
        background(app(), &key, &conv2, "Fail me [[words:3]]").status,
        202
    );
    let failed = eventually("the delivery to fail", Duration::from_secs(30), || {
        deliveries(app(), &jwt, &hook)
            .into_iter()
            .find(|d| d["status"] == "failed")
    });
    assert_eq!(
        (failed["attempts"].as_u64(), failed["responseCode"].as_u64()),
        (Some(3), Some(503))
    );
    assert!(failed["nextAttemptAt"].is_null());
    let again = app().post(
        &format!(
            "/api/v1/webhooks/{hook}/deliveries/{}/redeliver",
            failed["id"].as_str().unwrap()
        ),
        Auth::Bearer(&jwt),
        json!({}),
    );
    assert_eq!(again.status, 202, "{}", again.text);
    let all = failing.wait_for(4, Duration::from_secs(20));
    assert_eq!(all[3].headers["webhook-id"], all[0].headers["webhook-id"]);
    eventually("the redelivery to succeed", Duration::from_secs(20), || {
        deliveries(app(), &jwt, &hook)
            .into_iter()
            .find(|d| d["id"] == failed["id"] && d["status"] == "succeeded" && d["attempts"] == 4)
    });
}

#[test]
fn a_cancelled_background_turn_emits_message_cancelled() {
    let (jwt, key, conv) = setup(app());
    let receiver = Receiver::start(&[]);
    endpoint(
        app(),
        &jwt,
        &receiver.url,
        &["message.cancelled", "message.completed"],
    );
    let r = background(app(), &key, &conv, "Long one [[pace:100]] [[words:60]]");
    assert_eq!(r.status, 202, "{}", r.text);
    let message = r.data()["message"]["id"].as_str().unwrap().to_owned();
    let cancel = app().post(
        &format!("/api/v1/conversations/{conv}/messages/{message}/cancel"),
        Auth::Bearer(&key),
        json!({}),
    );
    assert_eq!(cancel.status, 200, "{}", cancel.text);
    let got = receiver.wait_for(1, Duration::from_secs(30));
    let event = got[0].json();
    assert_eq!(event["type"], "message.cancelled");
    assert_eq!(event["data"]["message"]["id"], message.as_str());
    assert_eq!(event["data"]["message"]["status"], "cancelled");
}

#[test]
fn urls_are_guarded_and_endpoints_are_their_accounts_own() {
    // Without WEBHOOK_ALLOW_HTTP_HOSTS, as in production.
    let app = TestApp::spawn_with(Options::with(&[(Var::AuthAttemptsPerMinute, "1000")]));
    let app = || &app;
    let (jwt, key, _) = setup(app());
    let receiver = Receiver::start(&[]);
    for url in [
        receiver.url.as_str(),
        "https://127.0.0.1/hook",
        "http://example.com/hook",
        "https://10.0.0.5/hook",
        "https://192.168.1.10/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/hook",
        "http://localhost:8080/hook",
        "https://intranet/hook",
        "ftp://example.com/hook",
    ] {
        let r = app().post(
            "/api/v1/webhooks",
            Auth::Bearer(&jwt),
            json!({"url": url, "events": ["message.completed"]}),
        );
        r.assert_invalid("url");
    }
    app()
        .post(
            "/api/v1/webhooks",
            Auth::Bearer(&jwt),
            json!({"url": "https://hooks.example.com/x", "events": ["message.eaten"]}),
        )
        .assert_invalid("events");
    // Session only: an API key cannot manage webhooks.
    app()
        .get("/api/v1/webhooks", Auth::Bearer(&key))
        .assert_error(403, "FORBIDDEN");

    let (hook, secret) = endpoint(
        app(),
        &jwt,
        "https://hooks.example.com/twin",
        &["message.completed"],
    );
    let listed = app().get("/api/v1/webhooks", Auth::Bearer(&jwt));
    assert_eq!(listed.data().as_array().unwrap().len(), 1);
    assert!(
        listed.data()[0].get("secret").is_none(),
        "the secret is shown once"
    );
    let rotated = app().post(
        &format!("/api/v1/webhooks/{hook}/rotate-secret"),
        Auth::Bearer(&jwt),
        json!({}),
    );
    assert_eq!(rotated.status, 200, "{}", rotated.text);
    assert_ne!(rotated.data()["secret"].as_str().unwrap(), secret);

    // Another account sees none of it.
    let (other, _, _) = setup(app());
    let theirs =
        |method: &str, path: &str| app().send(method, path, Auth::Bearer(&other), Some(json!({})));
    for (method, path) in [
        ("GET", format!("/api/v1/webhooks/{hook}")),
        ("PATCH", format!("/api/v1/webhooks/{hook}")),
        ("DELETE", format!("/api/v1/webhooks/{hook}")),
        ("POST", format!("/api/v1/webhooks/{hook}/rotate-secret")),
        ("GET", format!("/api/v1/webhooks/{hook}/deliveries")),
        (
            "POST",
            format!("/api/v1/webhooks/{hook}/deliveries/whd_x/redeliver"),
        ),
    ] {
        theirs(method, &path).assert_error(404, "NOT_FOUND");
    }
    assert!(app()
        .get("/api/v1/webhooks", Auth::Bearer(&other))
        .data()
        .as_array()
        .unwrap()
        .is_empty());
    let disabled = app().patch(
        &format!("/api/v1/webhooks/{hook}"),
        Auth::Bearer(&jwt),
        json!({"enabled": false}),
    );
    assert_eq!(disabled.data()["enabled"], false);
    let deleted = app().delete(&format!("/api/v1/webhooks/{hook}"), Auth::Bearer(&jwt));
    assert_eq!(deleted.data()["deleted"], true);
    app()
        .get(&format!("/api/v1/webhooks/{hook}"), Auth::Bearer(&jwt))
        .assert_error(404, "NOT_FOUND");
}

#[test]
fn a_runtime_killed_mid_delivery_delivers_after_restart() {
    let state_dir = crate::common::restart_dir("hook-crash");
    let opts = || Options {
        state_dir: Some(state_dir.clone()),
        ..options()
    };
    let mut first = TestApp::spawn_with(opts());
    let (jwt, key, conv) = setup(&first);
    // The first attempt is held open until the runtime is gone; the next is answered.
    let receiver = Receiver::start_holding(&[(200, Duration::from_secs(60))]);
    let (hook, secret) = endpoint(&first, &jwt, &receiver.url, &["message.completed"]);
    assert_eq!(
        background(&first, &key, &conv, "Deliver me [[words:3]]").status,
        202
    );
    receiver.wait_for(1, Duration::from_secs(30));
    first.crash_worker();
    drop(first);

    let app = TestApp::spawn_with(opts());
    let got = receiver.wait_for(2, Duration::from_secs(90));
    let delivery = settled(&app, &jwt, &hook, "succeeded");
    assert_eq!(got[1].headers["webhook-id"], got[0].headers["webhook-id"]);
    assert_eq!(got[1].headers["webhook-id"], delivery["eventId"]);
    verify(&secret, &got[1]);
    assert_eq!(got[1].json()["type"], "message.completed");
}

#[test]
fn the_day_that_reaches_the_quota_emits_quota_reached_once() {
    let app = TestApp::spawn_with(Options::with(&[
        (Var::AuthAttemptsPerMinute, "1000"),
        (Var::WebhookAllowHttpHosts, "127.0.0.1"),
        (Var::DailyTokenQuota, "200"),
    ]));
    let (jwt, key, conv) = setup(&app);
    let receiver = Receiver::start(&[]);
    let (hook, _) = endpoint(&app, &jwt, &receiver.url, &["quota.reached"]);
    let mut turns = 0;
    loop {
        let r = app.post(
            &format!("/api/v1/conversations/{conv}/messages"),
            Auth::Bearer(&key),
            json!({"content": "Spend some tokens [[words:30]]"}),
        );
        if r.status == 429 {
            r.assert_error(429, "TOKEN_QUOTA_EXCEEDED");
            break;
        }
        assert_eq!(r.status, 201, "{}", r.text);
        turns += 1;
        assert!(turns < 20, "the quota was never reached");
    }
    let got = receiver.wait_for(1, Duration::from_secs(30));
    let event = got[0].json();
    assert_eq!(event["type"], "quota.reached");
    assert_eq!(event["data"]["quota"], 200);
    assert!(
        event["data"]["totalTokens"].as_u64().unwrap() >= 200,
        "{event}"
    );
    let usage = app.get("/api/v1/usage", Auth::Bearer(&jwt));
    assert_eq!(
        event["data"]["totalTokens"],
        usage.body["meta"]["totals"]["totalTokens"]
    );
    // One event for the day: the refused turn recorded nothing, so no second delivery.
    assert_eq!(deliveries(&app, &jwt, &hook).len(), 1);
}

#[test]
fn an_endpoint_failing_every_delivery_for_the_set_time_is_disabled() {
    // The 5 days shortened to 1 s: the second failed attempt finds the endpoint failing that long.
    let app = TestApp::spawn_with(Options::with(&[
        (Var::AuthAttemptsPerMinute, "1000"),
        (Var::WebhookAllowHttpHosts, "127.0.0.1"),
        (Var::WebhookRetryScheduleSecs, "1,2"),
        (Var::WebhookDisableAfterSecs, "1"),
    ]));
    let (jwt, key, conv) = setup(&app);
    let failing = Receiver::start(&[500, 500, 500, 500]);
    let (hook, _) = endpoint(&app, &jwt, &failing.url, &["message.completed"]);
    assert_eq!(
        background(&app, &key, &conv, "Fail [[words:2]]").status,
        202
    );
    let path = format!("/api/v1/webhooks/{hook}");
    eventually(
        "the endpoint to be disabled",
        Duration::from_secs(30),
        || (app.get(&path, Auth::Bearer(&jwt)).data()["enabled"] == false).then_some(()),
    );
    let failed = settled(&app, &jwt, &hook, "failed");
    assert_eq!(failed["lastError"], "the endpoint is disabled", "{failed}");
    assert_eq!(
        failing.received().len(),
        2,
        "no attempt after it was disabled"
    );
    // A disabled endpoint gets no new deliveries; enabled again, it does.
    let say = |content: &str| {
        app.post(
            &format!("/api/v1/conversations/{conv}/messages"),
            Auth::Bearer(&key),
            json!({ "content": content }),
        )
    };
    assert_eq!(say("Nobody listens [[words:2]]").status, 201);
    assert_eq!(deliveries(&app, &jwt, &hook).len(), 1);
    let enabled = app.patch(&path, Auth::Bearer(&jwt), json!({"enabled": true}));
    assert_eq!(enabled.data()["enabled"], true);
    assert_eq!(say("Listening again [[words:2]]").status, 201);
    failing.wait_for(3, Duration::from_secs(20));
}
