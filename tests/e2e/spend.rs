//! Spend controls, usage and end users (docs/usage.md), with small figures set through vars.

use crate::common::{eventually, Auth, Options, Scope, TestApp, TestKey, Var};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::sync::OnceLock;
use std::time::Duration;

const MAX_OUTPUT_TOKENS: u64 = 20;
const MAX_KEYS: usize = 3;
const MAX_CONCURRENT: usize = 2;
const DAILY_QUOTA: u64 = 1500;
const MAX_TWINS: usize = 3;
const MAX_KNOWLEDGE_CHARS: usize = 1000;

fn app() -> &'static TestApp {
    static APP: OnceLock<TestApp> = OnceLock::new();
    APP.get_or_init(|| {
        let vars = [
            (Var::AuthAttemptsPerMinute, "1000".to_owned()),
            (Var::AllowedModels, "twin-local-1,twin-local-2".to_owned()),
            (Var::MaxOutputTokens, MAX_OUTPUT_TOKENS.to_string()),
            (Var::MaxApiKeysPerAccount, MAX_KEYS.to_string()),
            (Var::MaxConcurrentGenerations, MAX_CONCURRENT.to_string()),
            (Var::DailyTokenQuota, DAILY_QUOTA.to_string()),
            (Var::GenerationMaxSecs, "4".to_owned()),
            (Var::MaxTwinsPerAccount, MAX_TWINS.to_string()),
            (
                Var::MaxKnowledgeCharsPerAccount,
                MAX_KNOWLEDGE_CHARS.to_string(),
            ),
        ];
        TestApp::spawn_with(Options {
            vars: vars.to_vec(),
            ..Default::default()
        })
    })
}

/// A user's JWT and user id, and a twin of theirs.
fn account() -> (String, String, String) {
    let jwt = app().user().jwt;
    let me = app().get("/api/v1/auth/me", Auth::Bearer(&jwt));
    let user_id = me.data()["id"].as_str().unwrap().to_owned();
    let twin = app().post(
        "/api/v1/twins",
        Auth::Bearer(&jwt),
        json!({"name": format!("Spend {}", &user_id[4..12]), "systemPrompt": "You are Spend."}),
    );
    assert_eq!(twin.status, 201, "{}", twin.text);
    (jwt, user_id, twin.data()["id"].as_str().unwrap().to_owned())
}

fn conversation(auth: &str, twin: &str, end_user: Option<&str>) -> String {
    let mut body = json!({ "twinId": twin });
    if let Some(e) = end_user {
        body["endUserId"] = json!(e);
    }
    let r = app().post("/api/v1/conversations", Auth::Bearer(auth), body);
    assert_eq!(r.status, 201, "{}", r.text);
    r.data()["id"].as_str().unwrap().to_owned()
}

fn say(auth: &str, conv: &str, content: &str) -> crate::common::Reply {
    app().post(
        &format!("/api/v1/conversations/{conv}/messages"),
        Auth::Bearer(auth),
        json!({ "content": content }),
    )
}

fn last_request(question: &str) -> Value {
    app().model_stats()["byQuestion"][question]["lastRequest"].clone()
}

#[test]
fn only_allowed_models_and_bounded_replies_reach_the_model() {
    let (jwt, _, twin) = account();
    let r = app().post(
        "/api/v1/twins",
        Auth::Bearer(&jwt),
        json!({"name": "Pricey", "systemPrompt": "x", "model": "o1-pro-2025-03-19"}),
    );
    r.assert_error(400, "VALIDATION_ERROR");
    assert!(
        r.body["details"]["fields"]["model"].is_string(),
        "{}",
        r.text
    );
    app()
        .patch(
            &format!("/api/v1/twins/{twin}"),
            Auth::Bearer(&jwt),
            json!({"model": "gpt-4.5"}),
        )
        .assert_error(400, "VALIDATION_ERROR");
    let ok = app().patch(
        &format!("/api/v1/twins/{twin}"),
        Auth::Bearer(&jwt),
        json!({"model": "twin-local-2"}),
    );
    assert_eq!(ok.status, 200, "{}", ok.text);

    // A long reply stops at MAX_OUTPUT_TOKENS, and is still `completed`.
    let conv = conversation(&jwt, &twin, None);
    let question = format!("Tell me everything {} [[words:200]]", &twin[4..14]);
    let r = say(&jwt, &conv, &question);
    assert_eq!(r.status, 201, "{}", r.text);
    let m = &r.data()["message"];
    assert_eq!(m["status"], "completed");
    assert_eq!(m["model"], "twin-local-2");
    let completion = m["usage"]["completionTokens"].as_u64().unwrap();
    assert!(completion <= MAX_OUTPUT_TOKENS && completion > 0, "{m}");
    assert_eq!(last_request(&question)["max_tokens"], MAX_OUTPUT_TOKENS);
}

#[test]
fn a_generation_has_a_total_deadline() {
    let (jwt, _, twin) = account();
    let conv = conversation(&jwt, &twin, None);
    // 20 pieces 300 ms apart: longer than GENERATION_MAX_SECS = 4, each gap under the idle timeout.
    let s = app().open_stream(
        &format!("/api/v1/conversations/{conv}/messages/stream"),
        Auth::Bearer(&jwt),
        json!({"content": "slowly [[pace:300]] [[words:19]]"}),
    );
    let (events, raw) = s.collect();
    let last = events.last().unwrap();
    assert_eq!(
        (last.event.as_str(), last.data["error"].as_str()),
        ("error", Some("UPSTREAM_TIMEOUT")),
        "the stream as received ({:?} after opening):\n{raw}",
        last.at
    );
    let at = last.at.as_secs_f64();
    assert!((3.5..6.0).contains(&at), "ended after {at} s");
    let h = app().get(
        &format!("/api/v1/conversations/{conv}/messages"),
        Auth::Bearer(&jwt),
    );
    assert_eq!(h.data()[1]["status"], "incomplete");
}

#[test]
fn an_account_has_at_most_its_number_of_active_keys() {
    let (jwt, _, _) = account();
    let mut ids = Vec::new();
    for _ in 0..MAX_KEYS {
        ids.push(app().key(&jwt, Scope::ReadOnly).id);
    }
    let r = app().post(
        "/api/v1/auth/api-keys",
        Auth::Bearer(&jwt),
        json!({"name": "one more"}),
    );
    r.assert_error(409, "API_KEY_LIMIT_REACHED");
    assert_eq!(r.body["details"]["limit"], MAX_KEYS);
    // A revoked key frees its slot.
    app().delete(
        &format!("/api/v1/auth/api-keys/{}", ids[0]),
        Auth::Bearer(&jwt),
    );
    app().key(&jwt, Scope::ReadOnly);
    app()
        .post(
            "/api/v1/auth/api-keys",
            Auth::Bearer(&jwt),
            json!({"name": "again"}),
        )
        .assert_error(409, "API_KEY_LIMIT_REACHED");
}

#[test]
fn concurrent_generations_are_capped_and_every_slot_comes_back() {
    let (jwt, _, twin) = account();
    let convs: Vec<String> = (0..=MAX_CONCURRENT)
        .map(|_| conversation(&jwt, &twin, None))
        .collect();
    let open = |conv: &str, content: &str| {
        app().try_stream(
            "POST",
            &format!("/api/v1/conversations/{conv}/messages/stream"),
            Auth::Bearer(&jwt),
            &[],
            Some(json!({ "content": content })),
        )
    };
    // N+1 at once: exactly N run, one is refused.
    let outcomes: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = convs
            .iter()
            .map(|c| s.spawn(|| open(c, "busy [[pace:100]] [[words:15]]")))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let (running, refused): (Vec<_>, Vec<_>) = outcomes.into_iter().partition(|o| o.is_ok());
    assert_eq!(running.len(), MAX_CONCURRENT);
    let refused = refused.into_iter().next().unwrap().err().unwrap();
    refused.assert_error(429, "CONCURRENCY_LIMIT_EXCEEDED");
    assert!(
        refused
            .header("Retry-After")
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= 1
    );
    for s in running {
        s.ok().unwrap().collect();
    }
    // After they end, N more run; cancelling one frees its slot for the next.
    let mut streams: Vec<_> = convs[..MAX_CONCURRENT]
        .iter()
        .map(|c| {
            open(c, "again [[pace:100]] [[words:15]]").unwrap_or_else(|r| panic!("{}", r.text))
        })
        .collect();
    let first = streams.remove(0);
    let cancel = app().post(
        &format!(
            "/api/v1/conversations/{}/messages/{}/cancel",
            convs[0],
            first.message_id.clone().unwrap()
        ),
        Auth::Bearer(&jwt),
        json!({}),
    );
    assert_eq!(cancel.status, 200, "{}", cancel.text);
    first.collect();
    let next = eventually("the cancelled turn's slot", Duration::from_secs(5), || {
        open(&convs[MAX_CONCURRENT], "after cancel [[words:3]]").ok()
    });
    next.collect();
    for s in streams {
        s.collect();
    }
}

#[test]
fn the_daily_quota_stops_new_messages_until_midnight_utc() {
    let (jwt, _, twin) = account();
    let conv = conversation(&jwt, &twin, None);
    // ~500 tokens of prompt each: the quota is spent in a few turns.
    let long = "x".repeat(2000);
    let refused = eventually("the quota to be spent", Duration::from_secs(30), || {
        let r = say(&jwt, &conv, &format!("{long} [[words:5]]"));
        (r.status == 429).then_some(r)
    });
    refused.assert_error(429, "TOKEN_QUOTA_EXCEEDED");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let to_midnight = 86_400 - now % 86_400;
    let retry: u64 = refused.header("Retry-After").unwrap().parse().unwrap();
    assert!(retry.abs_diff(to_midnight) <= 2, "{retry} vs {to_midnight}");
    assert_eq!(refused.body["details"]["limit"], DAILY_QUOTA);
    let usage = app().get("/api/v1/usage", Auth::Bearer(&jwt));
    assert!(
        usage.body["meta"]["totals"]["totalTokens"]
            .as_u64()
            .unwrap()
            >= DAILY_QUOTA
    );
}

fn sum_of_stored(auth: &str, convs: &[&str]) -> u64 {
    convs
        .iter()
        .flat_map(|c| {
            app()
                .get(
                    &format!("/api/v1/conversations/{c}/messages?limit=100"),
                    Auth::Bearer(auth),
                )
                .data()
                .as_array()
                .unwrap()
                .clone()
        })
        .filter(|m| m["role"] == "assistant")
        .map(|m| m["usage"]["totalTokens"].as_u64().unwrap())
        .sum()
}

#[test]
fn usage_adds_up_per_group_and_a_key_sees_only_its_own() {
    let (jwt, user_id, twin) = account();
    let TestKey {
        secret: key_a,
        id: key_a_id,
    } = app().key(&jwt, Scope::FullAccess);
    let key_b = app().key(&jwt, Scope::FullAccess).secret;
    let alice = conversation(&key_a, &twin, Some("alice@app"));
    let bob = conversation(&key_b, &twin, Some("bob"));
    let question = format!("Hello from alice {} [[words:4]]", &user_id[4..12]);
    assert_eq!(say(&key_a, &alice, &question).status, 201);
    assert_eq!(say(&key_a, &alice, "Again [[words:6]]").status, 201);
    assert_eq!(say(&key_b, &bob, "Bob here [[words:3]]").status, 201);
    assert_eq!(say(&jwt, &bob, "Session turn [[fail:500]]").status, 502);

    // The upstream saw only the hash of account:endUser.
    let sent = last_request(&question);
    let expected: String = Sha256::digest(format!("{user_id}:alice@app").as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(sent["user"], expected.as_str());
    assert!(!sent.to_string().contains("alice@app"));

    let total = sum_of_stored(&jwt, &[&alice, &bob]);
    let report = |auth: &str, group: &str| {
        app().get(
            &format!("/api/v1/usage?groupBy={group}"),
            Auth::Bearer(auth),
        )
    };
    // Usage lands as each turn ends: wait for all four.
    eventually("usage of all four turns", Duration::from_secs(5), || {
        (report(&jwt, "day").body["meta"]["totals"]["requests"] == 4).then_some(())
    });
    for group in ["day", "apiKey", "twin", "endUser"] {
        let r = report(&jwt, group);
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(
            r.body["meta"]["totals"]["totalTokens"], total,
            "{group}: {}",
            r.text
        );
        let rows = r.data().as_array().unwrap();
        let sum: u64 = rows
            .iter()
            .map(|g| g["totalTokens"].as_u64().unwrap())
            .sum();
        assert_eq!(sum, total, "{group}");
    }
    let by_end_user = report(&jwt, "endUser");
    let names: Vec<&Value> = by_end_user
        .data()
        .as_array()
        .unwrap()
        .iter()
        .map(|g| &g["endUserId"])
        .collect();
    assert_eq!(names, [&json!("alice@app"), &json!("bob")]);
    let by_key = report(&jwt, "apiKey");
    let keys: Vec<Value> = by_key
        .data()
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["apiKeyId"].clone())
        .collect();
    assert!(
        keys.contains(&Value::Null),
        "the session's turn has no key: {keys:?}"
    );
    // The failed turn counts, with its prompt estimated.
    assert!(
        by_key.body["meta"]["totals"]["estimatedTokens"]
            .as_u64()
            .unwrap()
            > 0
    );

    // A key sees only its own usage.
    let mine = report(&key_a, "apiKey");
    let rows = mine.data().as_array().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["apiKeyId"], key_a_id.as_str());
    assert_eq!(rows[0]["requests"], 2);
    assert_eq!(
        mine.body["meta"]["totals"]["totalTokens"],
        sum_of_stored(&key_a, &[&alice])
    );

    // Filtering conversations by end user, and bad input.
    let listed = app().get("/api/v1/conversations?endUserId=bob", Auth::Bearer(&jwt));
    assert_eq!(listed.body["meta"]["pagination"]["total"], 1);
    assert_eq!(listed.data()[0]["endUserId"], "bob");
    let r = app().post(
        "/api/v1/conversations",
        Auth::Bearer(&jwt),
        json!({"twinId": twin, "endUserId": "not ok!"}),
    );
    r.assert_error(400, "VALIDATION_ERROR");
    assert!(r.body["details"]["fields"]["endUserId"].is_string());
    for q in [
        "from=2026-02-01&to=2026-01-01",
        "from=2024-01-01&to=2026-01-01",
        "groupBy=week",
        "to=yesterday",
    ] {
        app()
            .get(&format!("/api/v1/usage?{q}"), Auth::Bearer(&jwt))
            .assert_error(400, "VALIDATION_ERROR");
    }
}

fn utc_day(offset_days: i64) -> String {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    twinexpert::spend::model::utc_day(now_ms + offset_days * 86_400_000)
}

/// Cells (SPEC §14): an account's usage lives in its own Durable Object. What an account had
/// recorded in D1 before is carried into it once, so totals and the quota are the same after
/// the move; and a turn's usage is written to the object, never to D1.
#[test]
fn usage_from_before_cells_is_kept_and_counts_toward_todays_quota() {
    let (jwt, user_id, twin) = account();
    let (yesterday, today) = (utc_day(-1), utc_day(0));
    // As the previous release left them: one group yesterday, today's quota spent.
    app().d1(&format!(
        "INSERT INTO usage_daily (user_id, day, api_key_id, twin_id, end_user_id, requests, \
           prompt_tokens, completion_tokens, total_tokens, estimated_tokens) VALUES \
         ('{user_id}', '{yesterday}', '', '{twin}', 'alice', 3, 100, 50, 150, 0), \
         ('{user_id}', '{today}', '', '{twin}', '', 2, 1400, {}, {DAILY_QUOTA}, 40)",
        DAILY_QUOTA - 1400
    ));
    let r = app().get(
        &format!("/api/v1/usage?from={yesterday}&to={today}"),
        Auth::Bearer(&jwt),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let totals = &r.body["meta"]["totals"];
    assert_eq!(totals["requests"], 5, "{totals}");
    assert_eq!(totals["totalTokens"], 150 + DAILY_QUOTA, "{totals}");
    assert_eq!(totals["estimatedTokens"], 40, "{totals}");
    let days: Vec<&str> = r
        .data()
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["day"].as_str().unwrap())
        .collect();
    assert_eq!(days, [yesterday.as_str(), today.as_str()]);
    let by_end_user = app().get("/api/v1/usage?groupBy=endUser", Auth::Bearer(&jwt));
    assert_eq!(
        by_end_user.data()[1]["endUserId"],
        "alice",
        "{}",
        by_end_user.text
    );

    // Today's tokens came from D1: the quota is spent.
    let conv = conversation(&jwt, &twin, None);
    say(&jwt, &conv, "Over quota?").assert_error(429, "TOKEN_QUOTA_EXCEEDED");
    // Read again (the import happened once): the same totals.
    let again = app().get(
        &format!("/api/v1/usage?from={yesterday}&to={today}"),
        Auth::Bearer(&jwt),
    );
    assert_eq!(again.body["meta"]["totals"], *totals);
}

#[test]
fn a_turn_records_its_usage_in_the_account_object_not_in_d1() {
    let (jwt, user_id, twin) = account();
    let conv = conversation(&jwt, &twin, None);
    assert_eq!(say(&jwt, &conv, "Count me [[words:3]]").status, 201);
    let stored = sum_of_stored(&jwt, &[&conv]);
    eventually("the turn's usage", Duration::from_secs(5), || {
        let r = app().get("/api/v1/usage", Auth::Bearer(&jwt));
        (r.body["meta"]["totals"]["totalTokens"] == stored).then_some(())
    });
    let rows = app().d1_rows(&format!(
        "SELECT COUNT(*) AS n FROM usage_daily WHERE user_id = '{user_id}'"
    ));
    assert_eq!(rows[0]["n"], 0);
}

#[test]
fn an_account_has_at_most_its_number_of_twins() {
    let (jwt, _, first) = account();
    let create = |n: usize| {
        app().post(
            "/api/v1/twins",
            Auth::Bearer(&jwt),
            json!({"name": format!("Extra {n}"), "systemPrompt": "You are extra."}),
        )
    };
    for n in 1..MAX_TWINS {
        assert_eq!(create(n).status, 201);
    }
    let refused = create(MAX_TWINS);
    refused.assert_error(409, "CONFLICT");
    assert!(refused.body["message"].as_str().unwrap().contains("twins"));
    // A deleted twin frees its place.
    let deleted = app().delete(&format!("/api/v1/twins/{first}"), Auth::Bearer(&jwt));
    assert_eq!(deleted.status, 200);
    assert_eq!(create(MAX_TWINS).status, 201);
}

#[test]
fn an_accounts_twins_hold_at_most_their_characters_of_knowledge() {
    let (jwt, _, twin) = account();
    // 600 characters each: one fits, a second does not.
    let add = |twin: &str, title: &str| {
        app().post(
            &format!("/api/v1/twins/{twin}/knowledge"),
            Auth::Bearer(&jwt),
            json!({"title": title, "content": "Bữa sáng. ".repeat(60)}),
        )
    };
    let first = add(&twin, "Một");
    assert_eq!(first.status, 201, "{}", first.text);
    assert_eq!(first.data()["chars"], 600);
    let refused = add(&twin, "Hai");
    refused.assert_error(409, "CONFLICT");
    assert!(refused.body["message"]
        .as_str()
        .unwrap()
        .contains("characters"));
    // The account's other twins draw on the same allowance.
    let other = app().post(
        "/api/v1/twins",
        Auth::Bearer(&jwt),
        json!({"name": "Second", "systemPrompt": "You are second."}),
    );
    let other = other.data()["id"].as_str().unwrap().to_owned();
    add(&other, "Ba").assert_error(409, "CONFLICT");
    // Deleting the document gives its characters back.
    let doc = first.data()["id"].as_str().unwrap();
    let deleted = app().delete(
        &format!("/api/v1/twins/{twin}/knowledge/{doc}"),
        Auth::Bearer(&jwt),
    );
    assert_eq!(deleted.status, 200, "{}", deleted.text);
    assert_eq!(add(&other, "Bốn").status, 201);
}
