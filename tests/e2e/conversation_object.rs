//! The conversation's Durable Object owns its turns (docs/streaming.md): resumable streams,
//! many readers, cancel, one turn at a time, and replies that survive a crashed runtime.

use crate::common::{
    deltas, eventually, unix_ms, Auth, Ev, EventStream, Options, Scope, TestApp, Var,
};
use serde_json::{json, Value};
use std::time::Duration;

crate::common::app!(AuthAttemptsPerMinute = "1000");

/// A user's JWT, a full_access key and a conversation with a twin of theirs.
fn setup(app: &TestApp) -> (String, String, String) {
    let jwt = app.user().jwt;
    let key = app.key(&jwt, Scope::FullAccess).secret;
    let twin = app.post(
        "/api/v1/twins",
        Auth::Bearer(&jwt),
        json!({"name": format!("Hà {}", &key[3..11]), "systemPrompt": "Bạn là Nguyễn Thu Hà.", "language": "vi"}),
    );
    assert_eq!(twin.status, 201, "{}", twin.text);
    let conv = app.post(
        "/api/v1/conversations",
        Auth::Bearer(&key),
        json!({"twinId": twin.data()["id"]}),
    );
    (jwt, key, conv.data()["id"].as_str().unwrap().to_owned())
}

fn start(app: &TestApp, key: &str, conv: &str, content: &str) -> EventStream {
    let s = app.open_stream(
        &format!("/api/v1/conversations/{conv}/messages/stream"),
        Auth::Bearer(key),
        json!({ "content": content }),
    );
    assert_eq!(s.status, 200);
    s
}

fn resume(
    app: &TestApp,
    key: &str,
    conv: &str,
    message: &str,
    query: &str,
    headers: &[(&str, &str)],
) -> EventStream {
    app.try_stream(
        "GET",
        &format!("/api/v1/conversations/{conv}/messages/{message}/stream{query}"),
        Auth::Bearer(key),
        headers,
        None,
    )
    .unwrap_or_else(|r| panic!("resume refused: {} {}", r.status, r.text))
}

/// (id, event, data) of each event: what must be identical between readers.
fn shape(events: &[Ev]) -> Vec<(u64, String, Value)> {
    events
        .iter()
        .map(|e| (e.id, e.event.clone(), e.data.clone()))
        .collect()
}

fn history(app: &TestApp, key: &str, conv: &str) -> Vec<Value> {
    let r = app.get(
        &format!("/api/v1/conversations/{conv}/messages?limit=100"),
        Auth::Bearer(key),
    );
    r.data().as_array().unwrap().clone()
}

const SLOW: &str = "Kể chuyện [[pace:40]] [[words:25]]";

#[test]
fn a_dropped_stream_resumes_after_last_event_id_exactly() {
    let (_, key, conv) = setup(app());
    let mut first = start(app(), &key, &conv, SLOW);
    let message = first.message_id.clone().expect("X-Message-Id");
    let seen = first.read_until(|e| e.id == 6);
    first.disconnect();
    assert_eq!(seen.last().unwrap().id, 6);

    let rest = resume(app(), &key, &conv, &message, "", &[("Last-Event-ID", "6")]);
    assert_eq!(rest.message_id.as_deref(), Some(message.as_str()));
    let (rest, _) = rest.collect();
    assert_eq!(rest[0].id, 7, "exactly the events after 6");
    assert_eq!(rest.last().unwrap().event, "complete");

    // The whole log, replayed after the end, is the concatenation: same ids, same data.
    let (whole, _) = resume(app(), &key, &conv, &message, "", &[]).collect();
    let joined: Vec<Ev> = seen.iter().chain(rest.iter()).cloned().collect();
    assert_eq!(shape(&joined), shape(&whole));
    let ids: Vec<u64> = whole.iter().map(|e| e.id).collect();
    assert_eq!(ids, (1..=whole.len() as u64).collect::<Vec<_>>());
    assert_eq!(
        whole.last().unwrap().data["message"]["content"],
        deltas(&whole).as_str()
    );

    // `?after=N` does the same; `Last-Event-ID` wins when both are sent.
    let (after, _) = resume(app(), &key, &conv, &message, "?after=20", &[]).collect();
    assert_eq!(shape(&after), shape(&whole[20..]));
    let (both, _) = resume(
        app(),
        &key,
        &conv,
        &message,
        "?after=2",
        &[("Last-Event-ID", "25")],
    )
    .collect();
    assert_eq!(shape(&both), shape(&whole[25..]));
    // At or past the end: an empty stream that ends at once.
    let (none, raw) = resume(app(), &key, &conv, &message, "?after=999", &[]).collect();
    assert!(none.is_empty() && raw.is_empty(), "{raw}");
}

#[test]
fn a_finished_generation_replays_byte_for_byte() {
    let (_, key, conv) = setup(app());
    let s = start(app(), &key, &conv, "Xin chào 👋 [[words:12]]");
    let message = s.message_id.clone().unwrap();
    let (_, original) = s.collect();
    let (_, replay) = resume(app(), &key, &conv, &message, "", &[]).collect();
    assert_eq!(replay, original);
    assert!(original.contains("event: complete"), "{original}");
}

#[test]
fn concurrent_readers_see_the_same_sequence() {
    let (_, key, conv) = setup(app());
    let mut a = start(app(), &key, &conv, SLOW);
    let message = a.message_id.clone().unwrap();
    let head = a.read_until(|e| e.event == "delta");
    // Two more readers join mid-generation, one from the start and one after event 2.
    let b = resume(app(), &key, &conv, &message, "", &[]);
    let c = resume(app(), &key, &conv, &message, "?after=2", &[]);
    let (tail, _) = a.collect();
    let all_a: Vec<Ev> = head.into_iter().chain(tail).collect();
    let ((all_b, _), (all_c, _)) = (b.collect(), c.collect());
    assert_eq!(shape(&all_a), shape(&all_b));
    assert_eq!(shape(&all_a[2..]), shape(&all_c));
    assert_eq!(all_a.last().unwrap().event, "complete");
}

#[test]
fn one_turn_at_a_time_and_history_alternates() {
    let (_, key, conv) = setup(app());
    let mut running = start(app(), &key, &conv, SLOW);
    let message = running.message_id.clone().unwrap();
    running.read_until(|e| e.event == "delta");
    for path in ["messages", "messages/stream"] {
        let r = app().post(
            &format!("/api/v1/conversations/{conv}/{path}"),
            Auth::Bearer(&key),
            json!({"content": "Me too"}),
        );
        r.assert_error(409, "CONVERSATION_BUSY");
        assert_eq!(r.body["details"]["messageId"], message.as_str());
    }
    // While it runs, history shows the reply growing with status `generating`.
    let during = history(app(), &key, &conv);
    assert_eq!(during.len(), 2);
    assert_eq!(during[1]["id"], message.as_str());
    assert_eq!(during[1]["status"], "generating");
    let (_, _) = running.collect();
    // Accepted right after the end.
    let next = app().post(
        &format!("/api/v1/conversations/{conv}/messages"),
        Auth::Bearer(&key),
        json!({"content": "Cảm ơn"}),
    );
    assert_eq!(next.status, 201, "{}", next.text);
    let roles: Vec<Value> = history(app(), &key, &conv)
        .iter()
        .map(|m| m["role"].clone())
        .collect();
    assert_eq!(roles, ["user", "assistant", "user", "assistant"]);
    let c = app().get(&format!("/api/v1/conversations/{conv}"), Auth::Bearer(&key));
    assert_eq!(c.data()["messageCount"], 4);
}

/// The model gets the conversation so far, oldest first, then the new question: every question
/// and every reply that produced text (a reply that failed before its first word is left out),
/// plain and streamed turns alike, turn after turn (the object keeps the history it read; a
/// turn's end refreshes it).
#[test]
fn the_model_gets_the_conversation_so_far() {
    let (_, key, conv) = setup(app());
    let tag = &conv[5..13];
    let say = |content: &str| {
        let r = app().post(
            &format!("/api/v1/conversations/{conv}/messages"),
            Auth::Bearer(&key),
            json!({ "content": content }),
        );
        assert_eq!(r.status, 201, "{}", r.text);
        r.data()["message"]["content"].as_str().unwrap().to_owned()
    };
    let sent = |question: &str| -> Vec<(String, String)> {
        let stats = app().model_stats();
        let messages = stats["byQuestion"][question]["lastRequest"]["messages"]
            .as_array()
            .unwrap_or_else(|| panic!("the model saw no {question:?}"))
            .clone();
        assert_eq!(messages[0]["role"], "system");
        messages[1..]
            .iter()
            .map(|m| {
                let text = |k: &str| m[k].as_str().unwrap().to_owned();
                (text("role"), text("content"))
            })
            .collect()
    };
    let turn = |role: &str, content: &str| (role.to_owned(), content.to_owned());

    let q1 = format!("Một {tag} [[words:3]]");
    let a1 = say(&q1);
    assert_eq!(sent(&q1), [turn("user", &q1)]);
    let q2 = format!("Hai {tag} [[cut:0]]");
    let (events, _) = start(app(), &key, &conv, &q2).collect();
    assert_eq!(events.last().unwrap().event, "error");
    let q3 = format!("Ba {tag} [[words:2]]");
    let (events, _) = start(app(), &key, &conv, &q3).collect();
    let a3 = deltas(&events);
    let q4 = format!("Bốn {tag} [[words:2]]");
    say(&q4);
    assert_eq!(
        sent(&q4),
        [
            turn("user", &q1),
            turn("assistant", &a1),
            turn("user", &q2),
            turn("user", &q3),
            turn("assistant", &a3),
            turn("user", &q4),
        ]
    );
}

#[test]
fn the_reply_is_persisted_while_it_is_generated() {
    let (_, key, conv) = setup(app());
    let mut s = start(app(), &key, &conv, "Chậm thôi [[pace:150]] [[words:20]]");
    let seen = s.read_until(|e| e.event == "delta" && e.id >= 6);
    let so_far = deltas(&seen);
    // Readable from history while generating, at least what this reader has seen.
    let text = eventually(
        "the growing text in history",
        Duration::from_secs(2),
        || {
            let h = history(app(), &key, &conv);
            let c = h[1]["content"].as_str().unwrap().to_owned();
            (h[1]["status"] == "generating" && c.len() >= so_far.len()).then_some(c)
        },
    );
    assert!(text.starts_with(&so_far), "{text:?} vs {so_far:?}");
    s.disconnect();
}

#[test]
fn cancel_stops_the_model_and_stores_what_readers_got() {
    let (_, key, conv) = setup(app());
    let closed_before = app().model_stats()["closedByClient"].as_u64().unwrap();
    let mut s = start(app(), &key, &conv, "Long one [[pace:200]] [[words:60]]");
    let message = s.message_id.clone().unwrap();
    let before = s.read_until(|e| e.event == "delta" && e.id >= 4);
    let cancel_path = format!("/api/v1/conversations/{conv}/messages/{message}/cancel");
    let cancelled_at = unix_ms();
    let r = app().post(&cancel_path, Auth::Bearer(&key), json!({}));
    assert_eq!(r.status, 200, "{}", r.text);
    let stored = r.data()["message"].clone();
    assert_eq!(stored["status"], "cancelled");
    assert_eq!(stored["usage"]["estimated"], true);

    // The reader gets `complete` with the cancelled message, and no delta after it.
    let (after, _) = s.collect();
    let all: Vec<Ev> = before.into_iter().chain(after).collect();
    let last = all.last().unwrap();
    assert_eq!(last.event, "complete");
    assert_eq!(last.data["message"], stored);
    assert_eq!(stored["content"], deltas(&all).as_str());
    assert!(!stored["content"].as_str().unwrap().is_empty());

    // The model server saw its connection closed within a second of the cancel.
    let closed_at = eventually("the upstream to close", Duration::from_secs(3), || {
        let stats = app().model_stats();
        (stats["closedByClient"].as_u64().unwrap() > closed_before)
            .then(|| stats["lastClosedAtMs"].as_u64().unwrap())
    });
    assert!(
        closed_at < cancelled_at + 1000,
        "closed {} ms after the cancel",
        closed_at as i64 - cancelled_at as i64
    );

    // Cancelling again, or a finished message, changes nothing.
    let again = app().post(&cancel_path, Auth::Bearer(&key), json!({}));
    assert_eq!(again.data()["message"], stored);
    assert_eq!(history(app(), &key, &conv)[1], stored);
    let done = app().post(
        &format!("/api/v1/conversations/{conv}/messages"),
        Auth::Bearer(&key),
        json!({"content": "Short [[words:3]]"}),
    );
    let done = done.data()["message"].clone();
    let r = app().post(
        &format!(
            "/api/v1/conversations/{conv}/messages/{}/cancel",
            done["id"].as_str().unwrap()
        ),
        Auth::Bearer(&key),
        json!({}),
    );
    assert_eq!(r.data()["message"], done);
}

#[test]
fn deleting_a_conversation_cancels_its_generation() {
    let (_, key, conv) = setup(app());
    let mut s = start(app(), &key, &conv, "Long one [[pace:200]] [[words:60]]");
    s.read_until(|e| e.event == "delta");
    let r = app().delete(&format!("/api/v1/conversations/{conv}"), Auth::Bearer(&key));
    assert_eq!(r.status, 200, "{}", r.text);
    let (rest, _) = s.collect();
    let last = rest.last().unwrap();
    assert_eq!(
        (last.event.as_str(), &last.data["message"]["status"]),
        ("complete", &json!("cancelled"))
    );
    app()
        .get(
            &format!("/api/v1/conversations/{conv}/messages"),
            Auth::Bearer(&key),
        )
        .assert_error(404, "NOT_FOUND");
}

#[test]
fn new_routes_refuse_strangers_bad_cursors_and_read_only_cancels() {
    let (jwt, key, conv) = setup(app());
    let done = app().post(
        &format!("/api/v1/conversations/{conv}/messages"),
        Auth::Bearer(&key),
        json!({"content": "Hi [[words:3]]"}),
    );
    let user_msg = done.data()["userMessage"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let reply = done.data()["message"]["id"].as_str().unwrap().to_owned();
    let stream_path = format!("/api/v1/conversations/{conv}/messages/{reply}/stream");
    let cancel_path = format!("/api/v1/conversations/{conv}/messages/{reply}/cancel");

    // read_only may resume, not cancel.
    let reader = app().key(&jwt, Scope::ReadOnly).secret;
    let (events, _) = app()
        .try_stream("GET", &stream_path, Auth::Bearer(&reader), &[], None)
        .unwrap_or_else(|r| panic!("{}", r.text))
        .collect();
    assert_eq!(events.last().unwrap().event, "complete");
    app()
        .post(&cancel_path, Auth::Bearer(&reader), json!({}))
        .assert_error(403, "INSUFFICIENT_SCOPE");

    // Another user: 404 on both, with a key or a JWT.
    let other_jwt = app().user().jwt;
    let other_key = app().key(&other_jwt, Scope::FullAccess).secret;
    for auth in [Auth::Bearer(&other_key), Auth::Bearer(&other_jwt)] {
        app().get(&stream_path, auth).assert_error(404, "NOT_FOUND");
        app()
            .post(&cancel_path, auth, json!({}))
            .assert_error(404, "NOT_FOUND");
    }
    // A user message or an unknown id: 404.
    for id in [user_msg.as_str(), "msg_nope"] {
        app()
            .get(
                &format!("/api/v1/conversations/{conv}/messages/{id}/stream"),
                Auth::Bearer(&key),
            )
            .assert_error(404, "NOT_FOUND");
    }
    // Bad cursors: 400 naming the parameter.
    app()
        .get(&format!("{stream_path}?after=-1"), Auth::Bearer(&key))
        .assert_invalid("after");
    let r = app().raw(
        "GET",
        &stream_path,
        &[
            ("Authorization", &format!("Bearer {key}")),
            ("Last-Event-ID", "abc"),
        ],
        b"",
    );
    r.assert_error(400, "VALIDATION_ERROR");
    assert!(r.body["details"]["fields"]["Last-Event-ID"].is_string());
}

#[test]
fn another_conversations_message_is_not_found_here() {
    let (jwt, key, conv) = setup(app());
    // A second conversation of the same user: the id is real, but not of this conversation.
    let twin = app().get(&format!("/api/v1/conversations/{conv}"), Auth::Bearer(&key));
    let conv2 = app().post(
        "/api/v1/conversations",
        Auth::Bearer(&jwt),
        json!({"twinId": twin.data()["twinId"]}),
    );
    let conv2 = conv2.data()["id"].as_str().unwrap().to_owned();
    let key2 = key.clone();
    let done = app().post(
        &format!("/api/v1/conversations/{conv2}/messages"),
        Auth::Bearer(&key2),
        json!({"content": "Hi [[words:3]]"}),
    );
    let theirs = done.data()["message"]["id"].as_str().unwrap().to_owned();
    let mine = app().post(
        &format!("/api/v1/conversations/{conv}/messages"),
        Auth::Bearer(&key),
        json!({"content": "Hi [[words:3]]"}),
    );
    assert_eq!(mine.status, 201);
    app()
        .get(
            &format!("/api/v1/conversations/{conv}/messages/{theirs}/stream"),
            Auth::Bearer(&key),
        )
        .assert_error(404, "NOT_FOUND");
}

#[test]
fn a_crashed_runtime_leaves_the_reply_incomplete_not_generating() {
    let state_dir = crate::common::restart_dir("crash");
    // One generation at a time for the account: the interrupted one must give its slot back.
    let opts = || Options {
        vars: vec![
            (Var::AuthAttemptsPerMinute, "1000".into()),
            (Var::MaxConcurrentGenerations, "1".into()),
        ],
        state_dir: Some(state_dir.clone()),
        ..Default::default()
    };
    let mut first = TestApp::spawn_with(opts());
    let (_, key, conv) = setup(&first);
    let mut s = start(&first, &key, &conv, "Kể dài [[pace:100]] [[words:80]]");
    let message = s.message_id.clone().unwrap();
    let seen = s.read_until(|e| e.event == "delta" && e.id >= 6);
    let received = deltas(&seen);
    let twin = first
        .get(&format!("/api/v1/conversations/{conv}"), Auth::Bearer(&key))
        .data()["twinId"]
        .clone();
    first.crash_worker();
    drop(s);
    drop(first);

    // On the same state folder, with no request touching the conversation's object, its
    // watchdog alarm settles the reply and gives the account's only slot back. The slot was
    // kept through the crash (the account's object stores it), so until the watchdog runs a
    // turn elsewhere is refused; once it ran, one is admitted.
    let second = TestApp::spawn_with(opts());
    let other = second.post(
        "/api/v1/conversations",
        Auth::Bearer(&key),
        json!({ "twinId": twin }),
    );
    let other = other.data()["id"].as_str().unwrap().to_owned();
    eventually(
        "the watchdog to settle the reply and free its slot",
        Duration::from_secs(20),
        || {
            let r = second.post(
                &format!("/api/v1/conversations/{other}/messages"),
                Auth::Bearer(&key),
                json!({"content": "Còn chỗ không? [[words:2]]"}),
            );
            (r.status == 201).then_some(())
        },
    );
    let h = history(&second, &key, &conv);
    assert_eq!(h[1]["status"], "incomplete", "{}", h[1]);
    let content = h[1]["content"].as_str().unwrap();
    assert!(
        content.starts_with(&received) && !content.is_empty(),
        "{content:?} / {received:?}"
    );
    assert!(
        content.split(' ').count() < 80,
        "a prefix, not the whole reply"
    );
    assert_eq!(h[1]["usage"]["estimated"], true);
    // Readers get the persisted events, then GENERATION_INTERRUPTED.
    let (events, _) = resume(&second, &key, &conv, &message, "", &[]).collect();
    let last = events.last().unwrap();
    assert_eq!(
        (last.event.as_str(), last.data["error"].as_str()),
        ("error", Some("GENERATION_INTERRUPTED"))
    );
    assert_eq!(deltas(&events), content);
    // And the conversation takes new messages: the interrupted turn's concurrency slot (the
    // account's only one) is free again.
    let next = second.post(
        &format!("/api/v1/conversations/{conv}/messages"),
        Auth::Bearer(&key),
        json!({"content": "Tiếp tục [[words:4]]"}),
    );
    assert_eq!(next.status, 201, "{}", next.text);
}

/// SPEC §14: a finished generation's event log is compacted after its replay window. Here the
/// window is 1 s past the longest generation (2 s): within it a resumed stream replays every
/// event; after it, only the final `complete` is left, under its own id and with the whole
/// message, and the stored message is unchanged.
#[test]
fn a_finished_log_is_compacted_after_its_replay_window_to_its_final_event() {
    let app = TestApp::spawn_with(Options {
        vars: vec![
            (Var::AuthAttemptsPerMinute, "1000".into()),
            (Var::EventLogRetentionSecs, "1".into()),
            (Var::GenerationMaxSecs, "2".into()),
        ],
        ..Default::default()
    });
    let (_, key, conv) = setup(&app);
    let s = start(&app, &key, &conv, "Ngắn thôi [[words:6]]");
    let message = s.message_id.clone().unwrap();
    let (events, _) = s.collect();
    let last = events.last().unwrap().clone();
    assert_eq!(last.event, "complete");
    assert!(events.len() > 3, "{events:?}");
    let before = history(&app, &key, &conv);

    let (replayed, _) = resume(&app, &key, &conv, &message, "", &[]).collect();
    assert_eq!(shape(&replayed), shape(&events), "whole within the window");
    let compacted = eventually("the log to be compacted", Duration::from_secs(20), || {
        let (left, _) = resume(&app, &key, &conv, &message, "", &[]).collect();
        (left.len() == 1).then_some(left)
    });
    assert_eq!(shape(&compacted), shape(&[last]));
    assert_eq!(history(&app, &key, &conv), before);
}

#[test]
fn a_turn_that_still_sees_a_deleted_conversation_is_refused_by_its_object() {
    let (_, key, conv) = setup(app());
    let say = |content: &str| {
        app().post(
            &format!("/api/v1/conversations/{conv}/messages"),
            Auth::Bearer(&key),
            json!({ "content": content }),
        )
    };
    assert_eq!(say("Trước khi xoá [[words:2]]").status, 201);
    let row = app().d1_rows(&format!("SELECT * FROM conversations WHERE id = '{conv}'"));
    let row = row[0].as_object().unwrap().clone();
    let deleted = app().delete(&format!("/api/v1/conversations/{conv}"), Auth::Bearer(&key));
    assert_eq!(deleted.status, 200, "{}", deleted.text);
    // The row seen again, as by a turn that read it just before the delete, or from a read
    // replica that has not caught up with it.
    let columns: Vec<&str> = row.keys().map(String::as_str).collect();
    let values: Vec<String> = row
        .values()
        .map(|v| match v {
            Value::Null => "NULL".to_owned(),
            Value::String(s) => format!("'{}'", s.replace('\'', "''")),
            other => other.to_string(),
        })
        .collect();
    app().d1(&format!(
        "INSERT INTO conversations ({}) VALUES ({})",
        columns.join(", "),
        values.join(", ")
    ));
    let question = format!("Sau khi xoá {} [[words:2]]", &key[3..15]);
    say(&question).assert_error(404, "NOT_FOUND");
    let calls = app().model_stats()["byQuestion"][&question]["count"]
        .as_u64()
        .unwrap_or(0);
    assert_eq!(
        calls, 0,
        "the deleted conversation's turn reached the model"
    );
    // Nothing was started again in the object: its history stays empty.
    let h = history(app(), &key, &conv);
    assert!(h.is_empty(), "{h:?}");
}
