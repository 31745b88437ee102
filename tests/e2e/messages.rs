//! Talking to a twin through the local model server: plain and streamed
//! replies, byte-exact Vietnamese, and that nothing is lost when the client or the model fails.

use crate::common::{deltas, eventually, Auth, Ev, Scope};
use serde_json::{json, Value};
use std::time::Duration;

#[rustfmt::skip]
crate::common::app!(AuthAttemptsPerMinute = "1000", UpstreamFirstByteTimeoutMs = "1500", UpstreamIdleTimeoutMs = "1500", SsePingSecs = "1");

const PERSONA: &str = "Bạn là Nguyễn Thu Hà, chuyên gia dinh dưỡng.";

/// A user with a full_access key and a conversation with a private twin of theirs.
fn setup() -> (String, String) {
    let jwt = app().user().jwt;
    let key = app().key(&jwt, Scope::FullAccess).secret;
    let twin = app().post(
        "/api/v1/twins",
        Auth::Bearer(&jwt),
        json!({"name": format!("Hà {}", key[3..11].to_lowercase()), "systemPrompt": PERSONA, "language": "vi"}),
    );
    assert_eq!(twin.status, 201, "{}", twin.text);
    let conv = app().post(
        "/api/v1/conversations",
        Auth::Bearer(&key),
        json!({"twinId": twin.data()["id"]}),
    );
    (key, conv.data()["id"].as_str().unwrap().to_owned())
}

fn stream(key: &str, conv: &str, content: &str) -> (Vec<Ev>, String) {
    let s = app().open_stream(
        &format!("/api/v1/conversations/{conv}/messages/stream"),
        Auth::Bearer(key),
        json!({"content": content}),
    );
    assert_eq!(s.status, 200);
    assert!(
        s.content_type.starts_with("text/event-stream"),
        "{}",
        s.content_type
    );
    s.collect()
}

fn history(key: &str, conv: &str) -> Vec<Value> {
    let r = app().get(
        &format!("/api/v1/conversations/{conv}/messages?limit=100"),
        Auth::Bearer(key),
    );
    r.data().as_array().unwrap().clone()
}

#[test]
fn plain_reply_is_stored_with_usage_and_counts() {
    let (key, conv) = setup();
    let r = app().post(
        &format!("/api/v1/conversations/{conv}/messages"),
        Auth::Bearer(&key),
        json!({"content": "Xin chào!"}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let d = r.data();
    assert_eq!(d["userMessage"]["content"], "Xin chào!");
    assert_eq!(d["userMessage"]["role"], "user");
    let m = &d["message"];
    assert_eq!(
        (
            m["role"].as_str(),
            m["status"].as_str(),
            m["model"].as_str()
        ),
        (Some("assistant"), Some("completed"), Some("twin-local-1"))
    );
    assert!(
        m["content"]
            .as_str()
            .unwrap()
            .starts_with("Chào bạn, tôi là Nguyễn Thu Hà"),
        "{m}"
    );
    let u = &d["usage"];
    assert_eq!(
        u["totalTokens"],
        u["promptTokens"].as_i64().unwrap() + u["completionTokens"].as_i64().unwrap()
    );
    assert_eq!(&m["usage"], u);
    assert!(m["latencyMs"].as_i64().unwrap() >= 0);

    let h = history(&key, &conv);
    assert_eq!(h.len(), 2);
    assert_eq!(h[0]["id"], d["userMessage"]["id"]);
    assert_eq!(h[1], *m);
    let c = app().get(&format!("/api/v1/conversations/{conv}"), Auth::Bearer(&key));
    assert_eq!(c.data()["messageCount"], 2);
    assert_eq!(c.data()["lastMessageAt"], m["createdAt"]);

    // The next turn carries the history to the model: its prompt is longer.
    let again = app().post(
        &format!("/api/v1/conversations/{conv}/messages"),
        Auth::Bearer(&key),
        json!({"content": "Cảm ơn!"}),
    );
    assert!(again.data()["usage"]["promptTokens"].as_i64() > u["promptTokens"].as_i64());
}

#[test]
fn streamed_reply_equals_its_deltas_and_the_stored_message() {
    let (key, conv) = setup();
    let (events, _) = stream(&key, &conv, "Tôi nên ăn gì buổi sáng?");
    let names: Vec<&str> = events.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(names.first(), Some(&"progress"));
    assert_eq!(events[0].data["stage"], "accepted");
    assert_eq!(names.last(), Some(&"complete"));
    assert!(names.iter().filter(|n| **n == "delta").count() > 5);
    let ids: Vec<u64> = events.iter().map(|e| e.id).collect();
    assert_eq!(ids, (1..=events.len() as u64).collect::<Vec<_>>());

    let complete = &events.last().unwrap().data;
    let text = deltas(&events);
    assert_eq!(complete["message"]["content"], text.as_str());
    assert_eq!(complete["message"]["id"], events[0].data["messageId"]);
    assert_eq!(complete["message"]["status"], "completed");
    let stored = history(&key, &conv);
    assert_eq!(stored[0]["id"], events[0].data["userMessageId"]);
    assert_eq!(stored[1]["content"], text.as_str());
    assert_eq!(stored[1], complete["message"]);
}

#[test]
fn vietnamese_and_emoji_survive_byte_at_a_time_upstream_chunks() {
    let (key, conv) = setup();
    let question = "Bữa sáng cho trẻ 5 tuổi nên có những món gì? 🍜🥢";
    let (whole, _) = stream(&key, &conv, question);
    // The same question with the upstream body written one byte per network chunk.
    let (split, _) = stream(&key, &conv, &format!("{question} [[split:1]]"));
    let (a, b) = (deltas(&whole), deltas(&split));
    assert_eq!(a, b);
    assert!(a.contains("Chào bạn") && a.contains('🙂'), "{a}");
    let stored = history(&key, &conv);
    assert_eq!(stored[0]["content"], question);
    assert_eq!(stored[3]["content"], b.as_str());
}

#[test]
fn the_first_event_arrives_before_the_models_first_token() {
    let (key, conv) = setup();
    let s = app().open_stream(
        &format!("/api/v1/conversations/{conv}/messages/stream"),
        Auth::Bearer(&key),
        json!({"content": "Slow please [[pace:600]] [[words:3]]"}),
    );
    let (events, _) = s.collect();
    let first_delta = events.iter().find(|e| e.event == "delta").unwrap();
    assert_eq!(events[0].event, "progress");
    assert!(
        events[0].at + Duration::from_millis(400) < first_delta.at,
        "{:?} vs {:?}",
        events[0].at,
        first_delta.at
    );
    // Deltas are forwarded as they come, not batched: ~600 ms apart.
    let times: Vec<Duration> = events
        .iter()
        .filter(|e| e.event == "delta")
        .map(|e| e.at)
        .collect();
    for pair in times.windows(2) {
        assert!(pair[1] - pair[0] > Duration::from_millis(300), "{times:?}");
    }
}

#[test]
fn a_client_that_disconnects_still_gets_its_reply_stored_completed() {
    let (key, conv) = setup();
    let question = "Explain breakfast [[pace:40]] [[words:40]]";
    let mut s = app().open_stream(
        &format!("/api/v1/conversations/{conv}/messages/stream"),
        Auth::Bearer(&key),
        json!({"content": question}),
    );
    let mut message_id = None;
    while let Some(e) = s.next_event() {
        if e.event == "progress" {
            message_id = Some(e.data["messageId"].as_str().unwrap().to_owned());
        }
        if e.event == "delta" {
            break;
        }
    }
    s.disconnect();
    let message_id = message_id.unwrap();
    // The reply is in history from the start (`generating`); wait for it to end.
    let stored = eventually("the reply to be stored", Duration::from_secs(15), || {
        history(&key, &conv)
            .into_iter()
            .find(|m| m["id"] == message_id.as_str() && m["status"] != "generating")
    });
    assert_eq!(stored["status"], "completed");
    assert_eq!(stored["content"].as_str().unwrap().split(' ').count(), 40);
}

#[test]
fn upstream_failure_is_502_plain_and_an_error_event_streamed() {
    let (key, conv) = setup();
    let r = app().post(
        &format!("/api/v1/conversations/{conv}/messages"),
        Auth::Bearer(&key),
        json!({"content": "hi [[fail:500]]"}),
    );
    r.assert_error(502, "UPSTREAM_ERROR");
    assert!(
        !r.text.contains("Injected failure") && !r.text.contains(crate::common::UPSTREAM_KEY),
        "{}",
        r.text
    );
    let (events, _) = stream(&key, &conv, "again [[fail:503]]");
    let last = events.last().unwrap();
    assert_eq!(last.event, "error");
    assert_eq!(
        last.data,
        json!({"error": "UPSTREAM_ERROR", "message": "The model provider returned an error", "statusCode": 502})
    );
    // Both questions are kept; the replies are stored as failed, with nothing in them.
    let h = history(&key, &conv);
    let statuses: Vec<&str> = h.iter().map(|m| m["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["completed", "failed", "completed", "failed"]);
    assert_eq!(h[1]["content"], "");
}

#[test]
fn a_stream_cut_mid_reply_keeps_what_arrived_as_incomplete() {
    let (key, conv) = setup();
    let (events, _) = stream(&key, &conv, "Tell me more [[cut:3]]");
    assert_eq!(events.iter().filter(|e| e.event == "delta").count(), 3);
    let last = events.last().unwrap();
    assert_eq!(
        (last.event.as_str(), last.data["error"].as_str()),
        ("error", Some("UPSTREAM_ERROR"))
    );
    let stored = &history(&key, &conv)[1];
    assert_eq!(stored["status"], "incomplete");
    assert_eq!(stored["content"], deltas(&events).as_str());
}

#[test]
fn a_stalled_model_times_out_and_pings_keep_the_stream_alive() {
    let (key, conv) = setup();
    // Before the first byte: plain request → 504.
    let r = app().post(
        &format!("/api/v1/conversations/{conv}/messages"),
        Auth::Bearer(&key),
        json!({"content": "x [[stall:0]]"}),
    );
    r.assert_error(504, "UPSTREAM_TIMEOUT");
    // After two tokens: the stream pings while waiting, then reports the timeout.
    let (events, raw) = stream(&key, &conv, "y [[stall:2]]");
    assert!(raw.contains("\n: ping\n"), "{raw}");
    let last = events.last().unwrap();
    assert_eq!(
        (
            last.event.as_str(),
            last.data["error"].as_str(),
            last.data["statusCode"].as_u64()
        ),
        ("error", Some("UPSTREAM_TIMEOUT"), Some(504))
    );
    let h = history(&key, &conv);
    assert_eq!(h[3]["status"], "incomplete");
    assert_eq!(h[3]["content"], deltas(&events).as_str());
}

#[test]
fn bad_requests_fail_as_json_before_any_stream_opens() {
    let (key, conv) = setup();
    for path in [
        format!("/api/v1/conversations/{conv}/messages"),
        format!("/api/v1/conversations/{conv}/messages/stream"),
    ] {
        app()
            .post(&path, Auth::Bearer(&key), json!({}))
            .assert_error(400, "VALIDATION_ERROR");
        app()
            .post(&path, Auth::Bearer(&key), json!({"content": "   "}))
            .assert_error(400, "VALIDATION_ERROR");
        app()
            .post(
                &path,
                Auth::Bearer(&key),
                json!({"content": "x".repeat(32_001)}),
            )
            .assert_error(400, "VALIDATION_ERROR");
        app()
            .post(
                &path.replace(&conv, "conv_missing"),
                Auth::Bearer(&key),
                json!({"content": "hi"}),
            )
            .assert_error(404, "NOT_FOUND");
    }
    let other = app().user().jwt;
    let reader = app().key(&other, Scope::ReadOnly).secret;
    let path = format!("/api/v1/conversations/{conv}/messages/stream");
    app()
        .post(&path, Auth::Bearer(&reader), json!({"content": "hi"}))
        .assert_error(403, "INSUFFICIENT_SCOPE");
    let writer = app().key(&other, Scope::FullAccess).secret;
    app()
        .post(&path, Auth::Bearer(&writer), json!({"content": "hi"}))
        .assert_error(404, "NOT_FOUND");
    assert!(
        history(&key, &conv).is_empty(),
        "nothing was stored for refused requests"
    );
}

/// SPEC §14: a conversation's D1 row is written by its object at most once per 10 s, from the
/// object's own count, however many turns come; a client still reads its own turns at once
/// (`GET /conversations/{id}` asks the object), and the list catches up within that time.
#[test]
fn the_conversation_row_follows_a_burst_of_turns_in_one_write_and_reads_are_current() {
    let (key, conv) = setup();
    for q in ["Một [[words:2]]", "Hai [[words:2]]", "Ba [[words:2]]"] {
        let r = app().post(
            &format!("/api/v1/conversations/{conv}/messages"),
            Auth::Bearer(&key),
            json!({ "content": q }),
        );
        assert_eq!(r.status, 201, "{}", r.text);
    }
    let h = history(&key, &conv);
    let c = app().get(&format!("/api/v1/conversations/{conv}"), Auth::Bearer(&key));
    assert_eq!(c.data()["messageCount"], 6, "{}", c.text);
    assert_eq!(c.data()["lastMessageAt"], h[5]["createdAt"]);
    let listed = || {
        app()
            .get("/api/v1/conversations?limit=100", Auth::Bearer(&key))
            .data()
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == conv.as_str())
            .cloned()
            .unwrap()
    };
    // Polled once a second (the key's burst limit would refuse eventually()'s 50 ms).
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let row = loop {
        let row = listed();
        if row["messageCount"] == 6 {
            break row;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the row did not follow: {row}"
        );
        std::thread::sleep(Duration::from_secs(1));
    };
    assert_eq!(row["lastMessageAt"], h[5]["createdAt"]);
}
