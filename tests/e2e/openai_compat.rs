//! The OpenAI-compatible endpoint (docs/openai.md): the official `openai` SDKs for Python and
//! Node, unchanged, against the real worker; and the raw stream their parsers rely on.

use crate::common::{root, Auth, Scope};
use serde_json::json;
use std::process::Command;

// A read_only key's hourly limit is hit fast: the SDKs' RateLimitError.
#[rustfmt::skip]
crate::common::app!(AuthAttemptsPerMinute = "1000", RateLimitReadOnlyHourly = "6", MaxOutputTokens = "64");

struct Fixture {
    key: String,
    read_only: String,
    limited: String,
    twin: String,
}

fn fixture() -> Fixture {
    let jwt = app().user().jwt;
    let twin = app().post(
        "/api/v1/twins",
        Auth::Bearer(&jwt),
        json!({"name": "Nguyễn Thu Hà SDK", "systemPrompt": "Bạn là Nguyễn Thu Hà.", "visibility": "private"}),
    );
    Fixture {
        key: app().key(&jwt, Scope::FullAccess).secret,
        read_only: app().key(&jwt, Scope::ReadOnly).secret,
        limited: app().key(&jwt, Scope::ReadOnly).secret,
        twin: twin.data()["id"].as_str().unwrap().to_owned(),
    }
}

fn run_sdk(mut cmd: Command) {
    let f = fixture();
    let out = cmd
        .current_dir(root())
        .env("BASE", app().url("/api/v1"))
        .env("KEY", &f.key)
        .env("READ_ONLY_KEY", &f.read_only)
        .env("LIMITED_KEY", &f.limited)
        .env("TWIN", &f.twin)
        .output()
        .expect("spawn");
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_official_python_sdk_works_unchanged() {
    let python = root().join(".tools/py/bin/python");
    assert!(
        python.exists(),
        "the test command installs the openai package into .tools/py"
    );
    let mut cmd = Command::new(python);
    cmd.arg("tests/sdk/openai_sdk.py");
    run_sdk(cmd);
}

#[test]
fn the_official_node_sdk_works_unchanged() {
    // Node 22 from node_modules (openai-node needs it), with the pinned `openai` package.
    let mut cmd = Command::new(root().join("node_modules/.bin/node"));
    cmd.arg("tests/sdk/openai_sdk.mjs");
    run_sdk(cmd);
}

#[test]
fn the_stream_is_data_lines_only_and_ends_with_done() {
    let f = fixture();
    let r = app().chat_completion(
        &f.key,
        json!({"model": f.twin, "stream": true, "user": "enduser-7",
               "messages": [{"role": "user", "content": "Stream please [[words:8]]"}]}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r
        .header("Content-Type")
        .unwrap()
        .starts_with("text/event-stream"));
    assert!(!r.text.contains("event:"), "{}", r.text);
    assert!(r.text.ends_with("data: [DONE]\n\n"), "{}", r.text);
    let chunks: Vec<serde_json::Value> = r
        .text
        .split("\n\n")
        .filter_map(|b| b.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert!(chunks
        .iter()
        .all(|c| c["object"] == "chat.completion.chunk" && c["model"] == f.twin.as_str()));
    assert_eq!(
        chunks.last().unwrap()["choices"][0]["finish_reason"],
        "stop"
    );
    // Usage is counted, under the twin and the end user.
    let usage = crate::common::eventually(
        "the completion's usage",
        std::time::Duration::from_secs(5),
        || {
            let u = app().get("/api/v1/usage?groupBy=endUser", Auth::Bearer(&f.key));
            let rows = u.data().as_array().unwrap().clone();
            rows.into_iter().find(|g| g["endUserId"] == "enduser-7")
        },
    );
    assert_eq!(usage["requests"], 1);
}

#[test]
fn a_failure_mid_stream_is_one_error_data_line() {
    let f = fixture();
    let r = app().chat_completion(
        &f.key,
        json!({"model": f.twin, "stream": true,
               "messages": [{"role": "user", "content": "Cut me [[cut:3]]"}]}),
    );
    assert_eq!(r.status, 200);
    let lines: Vec<&str> = r.text.split("\n\n").filter(|b| !b.is_empty()).collect();
    let last = lines.last().unwrap();
    assert!(last.starts_with("data: {\"error\":"), "{}", r.text);
    let err: serde_json::Value =
        serde_json::from_str(last.strip_prefix("data: ").unwrap()).unwrap();
    assert_eq!(err["error"]["code"], "UPSTREAM_ERROR");
    assert_eq!(lines.iter().filter(|l| l.contains("\"error\"")).count(), 1);
    assert!(!r.text.contains("[DONE]"));
}

#[test]
fn errors_are_openai_shaped_and_429s_carry_retry_after_ms() {
    let f = fixture();
    let r = app().chat_completion(&f.key, json!({"model": f.twin, "messages": []}));
    assert_eq!(r.status, 400);
    assert_eq!(r.body["error"]["type"], "invalid_request_error");
    assert_eq!(r.body["error"]["param"], "messages");
    assert!(
        r.body.get("success").is_none(),
        "not the envelope: {}",
        r.text
    );
    let r = app().get("/api/v1/models/twn_nope", Auth::Bearer(&f.key));
    assert_eq!(
        (r.status, r.body["error"]["type"].as_str()),
        (404, Some("not_found_error"))
    );
    assert!(r.header("X-Request-Id").is_some() && r.header("X-RateLimit-Limit").is_some());
    let limited = loop {
        let r = app().get("/api/v1/models", Auth::Bearer(&f.limited));
        if r.status == 429 {
            break r;
        }
    };
    assert_eq!(limited.body["error"]["type"], "rate_limit_error");
    let secs: u64 = limited.header("Retry-After").unwrap().parse().unwrap();
    assert_eq!(
        limited.header("retry-after-ms"),
        Some((secs * 1000).to_string().as_str())
    );
    // A browser preflight from an SDK: the x-stainless-* headers are allowed.
    let pre = app().raw(
        "OPTIONS",
        "/api/v1/chat/completions",
        &[
            ("Origin", "https://app.example"),
            ("Access-Control-Request-Method", "POST"),
            (
                "Access-Control-Request-Headers",
                "authorization,content-type,x-stainless-os,x-stainless-retry-count",
            ),
        ],
        b"",
    );
    assert_eq!(pre.status, 204);
    assert!(pre
        .header("Access-Control-Allow-Headers")
        .unwrap()
        .contains("x-stainless-retry-count"));
}

#[test]
fn max_tokens_is_capped_and_the_persona_comes_first() {
    let f = fixture();
    let question = format!("Long answer {} [[words:300]]", &f.twin[4..14]);
    let r = app().chat_completion(
        &f.key,
        json!({"model": f.twin, "max_tokens": 100000,
               "messages": [{"role": "system", "content": "Be kind."}, {"role": "user", "content": question}]}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["choices"][0]["finish_reason"], "length");
    assert!(r.body["usage"]["completion_tokens"].as_u64().unwrap() <= 64);
    let sent = &app().model_stats()["byQuestion"][&question]["lastRequest"];
    assert_eq!(sent["max_tokens"], 64);
    assert_eq!(sent["messages"][0]["content"], "Bạn là Nguyễn Thu Hà.");
    assert_eq!(sent["messages"][1]["content"], "Be kind.");
}

#[test]
fn a_retried_completion_with_an_idempotency_key_calls_the_model_once() {
    let f = fixture();
    let question = format!("Once {} [[words:5]]", &f.twin[4..14]);
    let body = json!({"model": f.twin, "messages": [{"role": "user", "content": question}]});
    let send = || {
        app().raw(
            "POST",
            "/api/v1/chat/completions",
            &[
                ("Authorization", &format!("Bearer {}", f.key)),
                ("Content-Type", "application/json"),
                ("Idempotency-Key", "completion-1"),
            ],
            body.to_string().as_bytes(),
        )
    };
    let first = send();
    assert_eq!(first.status, 200, "{}", first.text);
    let again = send();
    assert_eq!(again.header("Idempotent-Replayed"), Some("true"));
    assert_eq!(again.body, first.body, "same id, same text, same usage");
    let calls = &app().model_stats()["byQuestion"][&question]["count"];
    assert_eq!(calls, 1);
}
