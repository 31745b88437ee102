//! The request pipeline end to end: envelopes, request ids, routing errors, body rules,
//! CORS, the docs-site split, the log line, and the local model server.

use crate::common::{eventually, Auth};
use serde_json::{json, Value};
use std::io::Read;

crate::common::app!(AuthAttemptsPerMinute = "1000");

#[test]
fn health_answers_the_success_envelope() {
    let r = app().get("/api/v1/health", Auth::None);
    assert_eq!(r.status, 200);
    assert_eq!(r.body["success"], true);
    assert_eq!(r.body["data"]["status"], "ok");
    assert_eq!(r.body["data"]["version"], env!("CARGO_PKG_VERSION"));
    let rid = r.header("X-Request-Id").unwrap();
    assert!(rid.starts_with("req_") && rid.len() >= 24, "{rid}");
    assert_eq!(r.body["meta"]["requestId"], rid);
    let ts = r.body["meta"]["timestamp"].as_str().unwrap();
    assert!(
        twinexpert::platform::time::parse_rfc3339_ms(ts).is_some()
            && ts.ends_with('Z')
            && ts.len() == 24,
        "{ts}"
    );
}

#[test]
fn client_request_ids_are_echoed_only_when_safe() {
    let ok = app().raw(
        "GET",
        "/api/v1/health",
        &[("X-Request-Id", "trace-42.a_b")],
        b"",
    );
    assert_eq!(ok.header("X-Request-Id"), Some("trace-42.a_b"));
    let bad = app().raw(
        "GET",
        "/api/v1/health",
        &[("X-Request-Id", "bad id<script>")],
        b"",
    );
    assert!(bad.header("X-Request-Id").unwrap().starts_with("req_"));
}

#[test]
fn unknown_api_path_answers_the_full_error_envelope() {
    let r = app().get("/api/v1/no/such/thing", Auth::None);
    r.assert_error(404, "NOT_FOUND");
    assert_eq!(r.body["path"], "/api/v1/no/such/thing");
    assert_eq!(r.body["method"], "GET");
    assert_eq!(r.body["timestamp"], r.body["meta"]["timestamp"]);
}

#[test]
fn wrong_method_is_405_with_allow() {
    let r = app().send("PUT", "/api/v1/health", Auth::None, None);
    r.assert_error(405, "METHOD_NOT_ALLOWED");
    assert_eq!(r.header("Allow"), Some("GET, OPTIONS"));
}

#[test]
fn malformed_json_is_invalid_json() {
    let r = app().raw(
        "POST",
        "/api/v1/auth/login",
        &[("Content-Type", "application/json")],
        b"{\"email\": ",
    );
    r.assert_error(400, "INVALID_JSON");
}

#[test]
fn non_json_body_is_415_and_oversized_body_is_413() {
    let r = app().raw(
        "POST",
        "/api/v1/auth/login",
        &[("Content-Type", "text/plain")],
        b"email=a",
    );
    r.assert_error(415, "UNSUPPORTED_MEDIA_TYPE");
    let big = vec![b' '; 256 * 1024 + 1];
    let r = app().raw(
        "POST",
        "/api/v1/auth/login",
        &[("Content-Type", "application/json")],
        &big,
    );
    r.assert_error(413, "PAYLOAD_TOO_LARGE");
}

#[test]
fn a_json_array_body_is_a_validation_error() {
    let r = app().raw(
        "POST",
        "/api/v1/auth/login",
        &[("Content-Type", "application/json")],
        b"[]",
    );
    r.assert_error(400, "VALIDATION_ERROR");
    assert!(r.body["details"]["fields"]["body"].is_string());
}

#[test]
fn cors_preflight_and_exposed_headers() {
    let r = app().raw(
        "OPTIONS",
        "/api/v1/auth/api-keys",
        &[
            ("Origin", "https://app.example"),
            ("Access-Control-Request-Method", "POST"),
        ],
        b"",
    );
    assert_eq!(r.status, 204);
    assert_eq!(r.header("Access-Control-Allow-Origin"), Some("*"));
    assert!(r
        .header("Access-Control-Allow-Methods")
        .unwrap()
        .contains("POST"));
    assert!(r
        .header("Access-Control-Allow-Headers")
        .unwrap()
        .contains("X-API-Key"));
    let r = app().raw(
        "GET",
        "/api/v1/health",
        &[("Origin", "https://app.example")],
        b"",
    );
    assert!(r
        .header("Access-Control-Expose-Headers")
        .unwrap()
        .contains("X-RateLimit-Remaining"));
}

#[test]
fn paths_outside_the_api_belong_to_the_site() {
    let r = app().get("/", Auth::None);
    assert_eq!(r.status, 200);
    assert!(r.header("Content-Type").unwrap().starts_with("text/html"));
    let r = app().get("/nope", Auth::None);
    assert_eq!(r.status, 404);
    assert!(r.header("Content-Type").unwrap().starts_with("text/html"));
    // The docs come from the site Worker over its binding, with the site's own headers…
    let r = app().get("/docs/", Auth::None);
    assert_eq!(r.status, 200);
    assert!(r
        .header("Content-Security-Policy")
        .unwrap()
        .contains("frame-ancestors 'none'"));
    // …and its configuration file is not one of its pages.
    assert_eq!(app().get("/wrangler.toml", Auth::None).status, 404);
}

#[test]
fn each_request_writes_one_json_log_line() {
    let r = app().raw(
        "GET",
        "/api/v1/health",
        &[("X-Request-Id", "log-line-check-1")],
        b"",
    );
    assert_eq!(r.status, 200);
    let lines = eventually("the log line", std::time::Duration::from_secs(10), || {
        let lines: Vec<Value> = app()
            .log_lines()
            .into_iter()
            .filter(|l| l["requestId"] == "log-line-check-1")
            .collect();
        (!lines.is_empty()).then_some(lines)
    });
    assert_eq!(lines.len(), 1);
    let line = &lines[0];
    assert_eq!(line["method"], "GET");
    assert_eq!(line["path"], "/api/v1/health");
    assert_eq!(line["status"], 200);
    assert!(line["durationMs"].is_number());
}

#[test]
fn model_server_streams_an_openai_style_reply() {
    let body = json!({
        "model": "twin-local-1", "stream": true, "stream_options": {"include_usage": true},
        "messages": [{"role": "system", "content": "Bạn là Chị Hà, chuyên gia dinh dưỡng."},
                     {"role": "user", "content": "Tôi nên ăn gì buổi sáng?"}]
    });
    let resp = ureq::post(&format!("{}/v1/chat/completions", app().model_url))
        .set(
            "Authorization",
            &format!("Bearer {}", crate::common::UPSTREAM_KEY),
        )
        .send_string(&body.to_string())
        .unwrap();
    assert_eq!(resp.header("Content-Type"), Some("text/event-stream"));
    let mut text = String::new();
    resp.into_reader().read_to_string(&mut text).unwrap();
    let events: Vec<&str> = text
        .split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .collect();
    assert_eq!(events.last(), Some(&"[DONE]"));
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    let reply: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert!(reply.starts_with("Chào bạn, tôi là Chị Hà"), "{reply}");
    let usage = &chunks.last().unwrap()["usage"];
    assert!(usage["completion_tokens"].as_u64().unwrap() > 3);

    let unauthorized = ureq::post(&format!("{}/v1/chat/completions", app().model_url))
        .send_string(&body.to_string());
    assert!(matches!(unauthorized, Err(ureq::Error::Status(401, _))));
}
