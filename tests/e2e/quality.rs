//! SPEC §19 against the real worker: follow-up suggestions from the same model call, feedback
//! (latest wins, the twin's report), export, an end user's erasure, and tools through the
//! OpenAI-compatible endpoint.

use crate::common::{deltas, Auth, Scope};
use serde_json::{json, Value};

crate::common::app!(AuthAttemptsPerMinute = "1000");

struct Owner {
    jwt: String,
    key: String,
    twin: String,
}

/// A user, a full_access key and a twin of theirs; `knowledge` adds one document to it.
fn owner(knowledge: Option<&str>) -> Owner {
    let jwt = app().user().jwt;
    let key = app().key(&jwt, Scope::FullAccess).secret;
    let twin = app().post(
        "/api/v1/twins",
        Auth::Bearer(&jwt),
        json!({"name": format!("Lan {}", key[3..11].to_lowercase()),
               "systemPrompt": "Bạn là Trần Thị Lan, đầu bếp Huế.", "language": "vi"}),
    );
    assert_eq!(twin.status, 201, "{}", twin.text);
    let twin = twin.data()["id"].as_str().unwrap().to_owned();
    if let Some(content) = knowledge {
        let doc = app().post(
            &format!("/api/v1/twins/{twin}/knowledge"),
            Auth::Bearer(&jwt),
            json!({"title": "Món Huế", "content": content}),
        );
        assert_eq!(doc.status, 201, "{}", doc.text);
    }
    Owner { jwt, key, twin }
}

fn conversation(o: &Owner, end_user: Option<&str>) -> String {
    let c = app().post(
        "/api/v1/conversations",
        Auth::Bearer(&o.key),
        json!({"twinId": o.twin, "endUserId": end_user}),
    );
    assert_eq!(c.status, 201, "{}", c.text);
    c.data()["id"].as_str().unwrap().to_owned()
}

/// A plain turn: its reply.
fn ask(o: &Owner, conv: &str, content: &str) -> Value {
    let r = app().post(
        &format!("/api/v1/conversations/{conv}/messages"),
        Auth::Bearer(&o.key),
        json!({ "content": content }),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    r.data()["message"].clone()
}

fn history(o: &Owner, conv: &str) -> Vec<Value> {
    let r = app().get(
        &format!("/api/v1/conversations/{conv}/messages?limit=100"),
        Auth::Bearer(&o.key),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    r.data().as_array().unwrap().clone()
}

fn rate(o: &Owner, conv: &str, message: &str, body: Value) -> crate::common::Reply {
    app().post(
        &format!("/api/v1/conversations/{conv}/messages/{message}/feedback"),
        Auth::Bearer(&o.key),
        body,
    )
}

fn id(v: &Value) -> &str {
    v["id"].as_str().unwrap()
}

#[test]
fn suggestions_come_with_a_completed_reply_and_never_inside_its_content() {
    let o = owner(None);
    let conv = conversation(&o, None);
    let question = "Món nào dễ nấu cho người mới? [[suggest:3]]";
    let s = app().open_stream(
        &format!("/api/v1/conversations/{conv}/messages/stream"),
        Auth::Bearer(&o.key),
        json!({ "content": question }),
    );
    let (events, _) = s.collect();
    let complete = events
        .iter()
        .find(|e| e.event == "complete")
        .expect("complete");
    let message = &complete.data["message"];
    let suggestions = message["suggestions"].as_array().expect("suggestions");
    assert_eq!(suggestions.len(), 3, "{message}");
    assert!(suggestions
        .iter()
        .all(|q| q.as_str().is_some_and(|q| q.ends_with('?'))));
    let content = message["content"].as_str().unwrap();
    assert_eq!(
        deltas(&events),
        content,
        "the deltas are exactly the content"
    );
    assert!(
        !content.contains("suggestions") && !content.contains("Bạn có thể cho một ví dụ"),
        "{content}"
    );
    // The model was asked for them in the same call (one call for this question).
    let seen = &app().model_stats()["byQuestion"][question];
    assert_eq!(seen["count"], 1);
    let system = seen["lastRequest"]["messages"][0]["content"]
        .as_str()
        .unwrap();
    assert!(system.starts_with("Bạn là Trần Thị Lan") && system.contains("<suggestions>"));
    // Stored with the message.
    let stored = history(&o, &conv);
    assert_eq!(stored[1]["suggestions"], message["suggestions"]);

    // None offered: the field is absent. More than three: three. A malformed block: read
    // leniently, and still kept out of the content.
    let none = ask(&o, &conv, "Cảm ơn bạn [[suggest:0]]");
    assert!(none.get("suggestions").is_none(), "{none}");
    let many = ask(&o, &conv, "Thêm nữa nhé [[suggest:5]]");
    assert_eq!(many["suggestions"].as_array().unwrap().len(), 3);
    let sloppy = ask(&o, &conv, "Còn gì nữa? [[suggest:9]]");
    assert_eq!(sloppy["suggestions"], json!(["What next?", "Why?"]));
    assert!(!sloppy["content"].as_str().unwrap().contains("What next"));
}

#[test]
fn feedback_latest_wins_and_the_twins_report_counts_it_by_day() {
    let o = owner(None);
    let conv = conversation(&o, None);
    let replies: Vec<Value> = (0..3)
        .map(|i| ask(&o, &conv, &format!("Câu hỏi {i}")))
        .collect();
    let (r1, r2, r3) = (id(&replies[0]), id(&replies[1]), id(&replies[2]));

    let first = rate(&o, &conv, r1, json!({"rating": 1}));
    assert_eq!(first.status, 200, "{}", first.text);
    assert_eq!(first.data()["message"]["feedback"]["rating"], 1);
    rate(
        &o,
        &conv,
        r2,
        json!({"rating": -1, "comment": "Thiếu liều lượng"}),
    );
    let changed = rate(
        &o,
        &conv,
        r1,
        json!({"rating": -1, "comment": "Đổi ý: sai"}),
    );
    assert_eq!(changed.data()["message"]["feedback"]["rating"], -1);
    rate(&o, &conv, r3, json!({"rating": 1}));

    let stored = history(&o, &conv);
    assert_eq!(
        stored[1]["feedback"]["comment"], "Đổi ý: sai",
        "the latest wins"
    );
    assert!(stored[0].get("feedback").is_none());

    let report = app().get(
        &format!("/api/v1/twins/{}/feedback", o.twin),
        Auth::Bearer(&o.key),
    );
    assert_eq!(report.status, 200, "{}", report.text);
    let r = report.data();
    let today = r["to"].as_str().unwrap();
    assert_eq!(
        r["days"],
        json!([{"date": today, "positive": 1, "negative": 2}])
    );
    assert_eq!(r["totals"], json!({"positive": 1, "negative": 2}));
    let comments: Vec<&str> = r["comments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["comment"].as_str().unwrap())
        .collect();
    assert_eq!(
        comments,
        ["Đổi ý: sai", "Thiếu liều lượng"],
        "newest first, one per reply"
    );
    assert_eq!(r["comments"][0]["messageId"], r1);
    let past = app().get(
        &format!(
            "/api/v1/twins/{}/feedback?from=2020-01-01&to=2020-01-31",
            o.twin
        ),
        Auth::Bearer(&o.key),
    );
    assert_eq!(past.data()["days"], json!([]));
    assert_eq!(past.data()["totals"], json!({"positive": 0, "negative": 0}));

    // What is refused.
    let question = id(&stored[0]);
    rate(&o, &conv, question, json!({"rating": 1})).assert_invalid("messageId");
    rate(&o, &conv, r1, json!({"rating": 0})).assert_invalid("rating");
    rate(
        &o,
        &conv,
        r1,
        json!({"rating": 1, "comment": "x".repeat(2001)}),
    )
    .assert_invalid("comment");
    rate(&o, &conv, "msg_nope", json!({"rating": 1})).assert_error(404, "NOT_FOUND");
    let read_only = app().key(&o.jwt, Scope::ReadOnly).secret;
    app()
        .post(
            &format!("/api/v1/conversations/{conv}/messages/{r1}/feedback"),
            Auth::Bearer(&read_only),
            json!({"rating": 1}),
        )
        .assert_error(403, "INSUFFICIENT_SCOPE");
    let stranger = owner(None);
    rate(&stranger, &conv, r1, json!({"rating": 1})).assert_error(404, "NOT_FOUND");
    app()
        .get(
            &format!("/api/v1/twins/{}/feedback", o.twin),
            Auth::Bearer(&stranger.key),
        )
        .assert_error(404, "NOT_FOUND");

    // A deleted conversation's ratings still count; their comments go with it.
    let deleted = app().delete(
        &format!("/api/v1/conversations/{conv}"),
        Auth::Bearer(&o.key),
    );
    assert_eq!(deleted.status, 200, "{}", deleted.text);
    let after = app().get(
        &format!("/api/v1/twins/{}/feedback", o.twin),
        Auth::Bearer(&o.key),
    );
    assert_eq!(
        after.data()["totals"],
        json!({"positive": 1, "negative": 2})
    );
    assert_eq!(after.data()["comments"], json!([]));
}

#[test]
fn an_export_round_trips_every_message_and_citation() {
    let o = owner(Some(
        "Bún bò Huế nấu với sả, mắm ruốc và giò heo. Cơm hến ăn với ruốc.",
    ));
    let conv = conversation(&o, Some("eu-export"));
    let cited = ask(&o, &conv, "Bún bò Huế nấu với gì?");
    assert!(
        !cited["citations"].as_array().unwrap().is_empty(),
        "{cited}"
    );
    ask(&o, &conv, "Còn cơm hến? [[suggest:2]]");
    rate(
        &o,
        &conv,
        id(&cited),
        json!({"rating": 1, "comment": "Rất đúng"}),
    );

    let r = app().get(
        &format!("/api/v1/conversations/{conv}/export"),
        Auth::Bearer(&o.key),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let export = r.data();
    assert_eq!(export["conversation"]["id"], conv.as_str());
    assert_eq!(export["conversation"]["messageCount"], 4);
    assert_eq!(
        export["messages"],
        json!(history(&o, &conv)),
        "every message, as the API shows it"
    );

    let md = app().get(
        &format!("/api/v1/conversations/{conv}/export?format=markdown"),
        Auth::Bearer(&o.key),
    );
    assert_eq!(md.status, 200);
    assert!(md
        .header("content-type")
        .unwrap()
        .starts_with("text/markdown"));
    assert!(md
        .header("content-disposition")
        .unwrap()
        .contains(&format!("{conv}.md")));
    for m in export["messages"].as_array().unwrap() {
        assert!(
            md.text.contains(m["content"].as_str().unwrap().trim_end()),
            "{}",
            m["content"]
        );
    }
    assert!(
        md.text.contains("Món Huế") && md.text.contains("Feedback: helpful — Rất đúng"),
        "{}",
        md.text
    );

    app()
        .get(
            &format!("/api/v1/conversations/{conv}/export?format=xml"),
            Auth::Bearer(&o.key),
        )
        .assert_invalid("format");
    let stranger = owner(None);
    app()
        .get(
            &format!("/api/v1/conversations/{conv}/export"),
            Auth::Bearer(&stranger.key),
        )
        .assert_error(404, "NOT_FOUND");
}

#[test]
fn erasing_an_end_user_removes_their_text_everywhere_and_keeps_the_usage_totals() {
    let o = owner(None);
    let (a, b) = (
        conversation(&o, Some("eu-erase")),
        conversation(&o, Some("eu-erase")),
    );
    let kept = conversation(&o, Some("eu-keep"));
    let secret = "Bí mật của tôi là công thức nước dùng";
    let reply = ask(&o, &a, secret);
    ask(&o, &b, "Câu hỏi thứ hai");
    ask(&o, &kept, "Câu hỏi của người khác");
    rate(
        &o,
        &a,
        id(&reply),
        json!({"rating": -1, "comment": "Nhận xét riêng tư"}),
    );
    let completion = app().chat_completion(
        &o.key,
        json!({"model": o.twin, "user": "eu-erase", "messages": [{"role": "user", "content": secret}]}),
    );
    assert_eq!(completion.status, 200, "{}", completion.text);
    let usage = |query: &str| app().get(&format!("/api/v1/usage?{query}"), Auth::Bearer(&o.jwt));
    let totals_before = usage("groupBy=day").body["meta"]["totals"].clone();
    let by_end_user = usage("groupBy=endUser");
    assert!(
        by_end_user.text.contains("eu-erase"),
        "{}",
        by_end_user.text
    );

    app()
        .delete("/api/v1/end-users/eu-erase", Auth::Bearer(&o.key))
        .assert_error(403, "FORBIDDEN");
    app()
        .delete("/api/v1/end-users/not%20ok", Auth::Bearer(&o.jwt))
        .assert_invalid("endUserId");
    let erased = app().delete("/api/v1/end-users/eu-erase", Auth::Bearer(&o.jwt));
    assert_eq!(erased.status, 200, "{}", erased.text);
    let counts = erased.data();
    assert_eq!(counts["conversationsDeleted"], 2, "{counts}");
    assert_eq!(counts["messagesDeleted"], 4);
    assert_eq!(counts["feedbackAnonymised"], 1);
    assert!(
        counts["usageRowsAnonymised"].as_i64().unwrap() >= 1,
        "{counts}"
    );

    // Nothing returns their text or names them.
    for conv in [&a, &b] {
        for path in ["", "/messages", "/export"] {
            app()
                .get(
                    &format!("/api/v1/conversations/{conv}{path}"),
                    Auth::Bearer(&o.key),
                )
                .assert_error(404, "NOT_FOUND");
        }
    }
    let listed = app().get("/api/v1/conversations?limit=100", Auth::Bearer(&o.key));
    assert!(
        !listed.text.contains("eu-erase") && listed.text.contains(&kept),
        "{}",
        listed.text
    );
    let report = app().get(
        &format!("/api/v1/twins/{}/feedback", o.twin),
        Auth::Bearer(&o.key),
    );
    assert_eq!(
        report.data()["totals"]["negative"],
        1,
        "the rating still counts"
    );
    assert!(
        !report.text.contains("Nhận xét riêng tư") && !report.text.contains(&a),
        "{}",
        report.text
    );
    assert!(!usage("groupBy=endUser").text.contains("eu-erase"));
    assert_eq!(
        usage("groupBy=day").body["meta"]["totals"],
        totals_before,
        "totals unchanged"
    );
    // The other end user keeps everything.
    assert_eq!(history(&o, &kept).len(), 2);
    // Erasing again finds nothing.
    let again = app().delete("/api/v1/end-users/eu-erase", Auth::Bearer(&o.jwt));
    assert_eq!(again.data()["conversationsDeleted"], 0);
}

#[test]
fn tools_reach_the_model_after_the_persona_and_its_calls_come_back() {
    let o = owner(None);
    let question = "Thời tiết ở Huế hôm nay thế nào?";
    let tools = json!([{"type": "function", "function": {"name": "weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}}}}}]);
    let r = app().chat_completion(
        &o.key,
        json!({"model": o.twin, "tools": tools, "tool_choice": {"type": "function", "function": {"name": "weather"}},
               "parallel_tool_calls": false, "messages": [{"role": "user", "content": question}]}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let choice = &r.body["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    assert!(choice["message"]["content"].is_null());
    let call = &choice["message"]["tool_calls"][0];
    assert_eq!(call["function"]["name"], "weather");
    let args: Value =
        serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(args, json!({"city": "nào", "days": 1}));
    let sent = &app().model_stats()["byQuestion"][question]["lastRequest"];
    assert!(sent["messages"][0]["content"]
        .as_str()
        .unwrap()
        .starts_with("Bạn là Trần Thị Lan"));
    assert_eq!(sent["tools"], tools);
    assert_eq!(sent["parallel_tool_calls"], false);
    assert_eq!(sent["tool_choice"]["function"]["name"], "weather");

    // A tool message without the call it answers is refused, naming it.
    let bad = app().chat_completion(
        &o.key,
        json!({"model": o.twin, "messages": [{"role": "user", "content": "x"}, {"role": "tool", "content": "{}"}]}),
    );
    assert_eq!(bad.status, 400);
    assert_eq!(bad.body["error"]["param"], "messages[1].tool_call_id");
}
