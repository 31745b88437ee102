//! Knowledge and citations (docs/knowledge.md): owner-only documents, retrieval per turn with
//! numbered sources, citations that are exact quotes in the stream, in history and in the
//! OpenAI-compatible answer; hostile queries, isolation between twins, deletion.

use crate::common::{eventually, Auth, Scope};
use serde_json::{json, Value};
use std::time::Duration;

const MAX_DOCS: usize = 30;

#[rustfmt::skip]
crate::common::app!(AuthAttemptsPerMinute = "1000", RateLimitFullAccessHourly = "100000", RateLimitFullAccessBurst = "100000", MaxConcurrentGenerations = "50", MaxKnowledgeDocsPerTwin = "30");

const BREAKFAST: &str = "Bữa sáng nên có đủ đạm để giữ no lâu. Trứng luộc và sữa chua là \
    nguồn đạm dễ chuẩn bị.\n\nNgười đái tháo đường nên ăn yến mạch thay vì bánh mì trắng.";
const SLEEP: &str = "Sleep hygiene starts with a fixed wake-up time. Keep the bedroom dark \
    and cool, and avoid screens for an hour before bed.";
const RUNNING: &str = "Chạy bộ buổi sáng giúp tim khỏe. Hãy khởi động năm phút trước khi chạy.";

struct Owner {
    jwt: String,
    key: String,
    twin: String,
}

fn twin(jwt: &str, name: &str, visibility: &str) -> String {
    let r = app().post(
        "/api/v1/twins",
        Auth::Bearer(jwt),
        json!({"name": name, "systemPrompt": format!("Bạn là {name}."), "visibility": visibility}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    r.data()["id"].as_str().unwrap().to_owned()
}

fn owner() -> Owner {
    let jwt = app().user().jwt;
    let key = app().key(&jwt, Scope::FullAccess).secret;
    let twin = twin(&jwt, "Bác sĩ Hà", "private");
    Owner { jwt, key, twin }
}

fn add_doc(jwt: &str, twin: &str, title: &str, content: &str) -> Value {
    let r = app().post(
        &format!("/api/v1/twins/{twin}/knowledge"),
        Auth::Bearer(jwt),
        json!({"title": title, "content": content, "sourceUrl": "https://ha.example/notes"}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    r.data().clone()
}

fn conversation(key: &str, twin: &str) -> String {
    let r = app().post(
        "/api/v1/conversations",
        Auth::Bearer(key),
        json!({ "twinId": twin }),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    r.data()["id"].as_str().unwrap().to_owned()
}

/// Sends `content` and returns the stored reply.
fn ask(key: &str, conv: &str, content: &str) -> Value {
    let r = app().post(
        &format!("/api/v1/conversations/{conv}/messages"),
        Auth::Bearer(key),
        json!({ "content": content }),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    r.data()["message"].clone()
}

/// The system prompt the model was given for `question`.
fn system_prompt_for(question: &str) -> String {
    let stats = app().model_stats();
    let req = &stats["byQuestion"][question]["lastRequest"];
    req["messages"][0]["content"]
        .as_str()
        .unwrap_or_else(|| panic!("the model never saw {question:?}: {stats}"))
        .to_owned()
}

fn cited_docs(message: &Value) -> Vec<String> {
    message["citations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["documentId"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn the_owner_adds_lists_and_deletes_documents_and_nobody_else_can() {
    let o = owner();
    let base = format!("/api/v1/twins/{}/knowledge", o.twin);
    let doc = add_doc(&o.jwt, &o.twin, "Bữa sáng", BREAKFAST);
    assert_eq!(doc["twinId"], o.twin.as_str());
    assert_eq!(doc["chars"], BREAKFAST.chars().count());
    assert!(doc["chunkCount"].as_u64().unwrap() >= 1);
    assert_eq!(doc["sourceUrl"], "https://ha.example/notes");
    assert!(doc["id"].as_str().unwrap().starts_with("doc_"));

    let list = app().get(&base, Auth::Bearer(&o.jwt));
    assert_eq!(list.status, 200, "{}", list.text);
    assert_eq!(list.data()[0]["id"], doc["id"]);
    assert!(list.data()[0].get("content").is_none());
    assert_eq!(list.body["meta"]["pagination"]["total"], 1);

    // Another user: 404 on every route, even for a public twin; an API key: 403.
    let stranger = app().user().jwt;
    let public = twin(&o.jwt, "Hà công khai", "public");
    let public_base = format!("/api/v1/twins/{public}/knowledge");
    for path in [&base, &public_base] {
        app()
            .get(path, Auth::Bearer(&stranger))
            .assert_error(404, "NOT_FOUND");
        app()
            .post(
                path,
                Auth::Bearer(&stranger),
                json!({"title": "x", "content": "y"}),
            )
            .assert_error(404, "NOT_FOUND");
    }
    let doc_path = format!("{base}/{}", doc["id"].as_str().unwrap());
    app()
        .delete(&doc_path, Auth::Bearer(&stranger))
        .assert_error(404, "NOT_FOUND");
    app()
        .get(&base, Auth::Bearer(&o.key))
        .assert_error(403, "FORBIDDEN");
    app()
        .post(
            &base,
            Auth::Bearer(&o.key),
            json!({"title": "x", "content": "y"}),
        )
        .assert_error(403, "FORBIDDEN");

    // Validation names every bad field.
    let bad = app().post(
        &base,
        Auth::Bearer(&o.jwt),
        json!({"title": "", "content": "x".repeat(100_001), "sourceUrl": "javascript:alert(1)"}),
    );
    bad.assert_error(400, "VALIDATION_ERROR");
    for field in ["title", "content", "sourceUrl"] {
        assert!(
            bad.body["details"]["fields"].get(field).is_some(),
            "{}",
            bad.text
        );
    }

    // The per-twin limit, and deleting frees a slot.
    for i in 1..MAX_DOCS {
        add_doc(&o.jwt, &o.twin, &format!("Ghi chú {i}"), RUNNING);
    }
    app()
        .post(
            &base,
            Auth::Bearer(&o.jwt),
            json!({"title": "one more", "content": SLEEP}),
        )
        .assert_error(409, "CONFLICT");
    // The documents live in the twin's object; the twin's row in D1 keeps only their number
    // (a turn asks the object for passages only when it is above zero).
    let counted = || {
        app().d1_rows(&format!(
            "SELECT knowledge_docs AS n FROM twins WHERE id = '{}'",
            o.twin
        ))[0]["n"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(counted(), MAX_DOCS as u64);
    let id = doc["id"].as_str().unwrap();
    let del = app().delete(&doc_path, Auth::Bearer(&o.jwt));
    assert_eq!(del.status, 200, "{}", del.text);
    assert_eq!(del.data(), &json!({"id": id, "deleted": true}));
    assert_eq!(counted(), MAX_DOCS as u64 - 1);
    let listed = app().get(&format!("{base}?limit=100"), Auth::Bearer(&o.jwt));
    assert_eq!(listed.body["meta"]["pagination"]["total"], MAX_DOCS - 1);
    assert!(listed
        .data()
        .as_array()
        .unwrap()
        .iter()
        .all(|d| d["id"] != id));
    app()
        .delete(&doc_path, Auth::Bearer(&o.jwt))
        .assert_error(404, "NOT_FOUND");
    add_doc(&o.jwt, &o.twin, "Giấc ngủ", SLEEP);
}

#[test]
fn a_question_without_diacritics_cites_the_passage_in_stream_history_and_plain_reply() {
    let o = owner();
    let breakfast = add_doc(&o.jwt, &o.twin, "Bữa sáng", BREAKFAST);
    add_doc(&o.jwt, &o.twin, "Sleep", SLEEP);
    add_doc(&o.jwt, &o.twin, "Chạy bộ", RUNNING);
    let conv = conversation(&o.key, &o.twin);

    let question = format!("Nguoi dai thao duong nen an gi vao bua sang? {}", o.twin);
    let mut stream = app().open_stream(
        &format!("/api/v1/conversations/{conv}/messages/stream"),
        Auth::Bearer(&o.key),
        json!({ "content": question }),
    );
    let events = stream.read_until(|e| e.event == "complete" || e.event == "error");
    let complete = events.last().unwrap();
    assert_eq!(complete.event, "complete", "{:?}", events);
    let message = &complete.data["message"];
    assert_eq!(cited_docs(message), vec![breakfast["id"].as_str().unwrap()]);
    let c = &message["citations"][0];
    assert_eq!(c["index"], 1);
    assert_eq!(c["title"], "Bữa sáng");
    assert_eq!(c["sourceUrl"], "https://ha.example/notes");
    let quote = c["quote"].as_str().unwrap();
    assert!(
        BREAKFAST.contains(quote) && quote.contains("đái tháo đường"),
        "{quote}"
    );
    assert!(message["content"].as_str().unwrap().contains("[1]"));

    // The model got the persona first, then the numbered sources.
    let system = system_prompt_for(&question);
    assert!(
        system.starts_with("Bạn là Bác sĩ Hà.\n\nSources:\n[1] Bữa sáng: "),
        "{system}"
    );

    // History holds the same citations as `complete`.
    let history = app().get(
        &format!("/api/v1/conversations/{conv}/messages"),
        Auth::Bearer(&o.key),
    );
    let stored = history.data().as_array().unwrap();
    assert_eq!(stored[1]["citations"], message["citations"]);
    assert_eq!(stored[0]["citations"], json!([]));

    // A plain (non-streamed) turn in English.
    let reply = ask(
        &o.key,
        &conv,
        "How do I fix my sleep and the bedroom at night?",
    );
    assert_eq!(cited_docs(&reply).len(), 1);
    assert_eq!(reply["citations"][0]["title"], "Sleep");
}

#[test]
fn only_sources_that_exist_and_are_mentioned_become_citations() {
    let o = owner();
    add_doc(&o.jwt, &o.twin, "Bữa sáng", BREAKFAST);
    add_doc(&o.jwt, &o.twin, "Chạy bộ", RUNNING);
    let conv = conversation(&o.key, &o.twin);
    // "buổi sáng" / "bữa sáng" share "sáng": both documents are retrieved.
    let question = format!("sáng nên làm gì? [[cite:2,9]] {}", o.twin);
    let reply = ask(&o.key, &conv, &question);
    assert!(system_prompt_for(&question).contains("\n[2] "));
    let citations = reply["citations"].as_array().unwrap();
    assert_eq!(citations.len(), 1, "{reply}");
    assert_eq!(citations[0]["index"], 2);
    // A model that cites nothing: no citations.
    let silent = ask(
        &o.key,
        &conv,
        &format!("sáng nên làm gì? [[cite:]] {}", o.twin),
    );
    assert_eq!(silent["citations"], json!([]));
}

#[test]
fn hostile_queries_are_only_words_and_never_fail() {
    let o = owner();
    add_doc(&o.jwt, &o.twin, "Bữa sáng", BREAKFAST);
    let conv = conversation(&o.key, &o.twin);
    let long = "đạm ".repeat(7_999) + "end";
    let hostile = [
        "\"",
        "\"unbalanced quote",
        "trứng AND sữa OR NOT đạm",
        "NEAR(trứng sữa, 2)",
        "trứng*",
        "-trứng",
        "body:trứng",
        "{body}: trứng",
        "^trứng",
        "'; DROP TABLE knowledge_fts; --",
        "🙂🥚🍳",
        "()",
        long.as_str(),
    ];
    for q in hostile {
        let r = app().post(
            &format!("/api/v1/conversations/{conv}/messages"),
            Auth::Bearer(&o.key),
            json!({ "content": q }),
        );
        assert_eq!(r.status, 201, "{q:.60}: {}", r.text);
    }
    // "NOT đạm" did not exclude the passage: words only, joined with OR.
    // …and the index is still whole after them: the passage is found as before.
    let reply = ask(&o.key, &conv, "trứng NOT đạm");
    assert_eq!(reply["citations"][0]["title"], "Bữa sáng");
}

#[test]
fn a_twins_documents_never_reach_another_twin_and_deleted_ones_are_never_cited() {
    let o = owner();
    let doc = add_doc(
        &o.jwt,
        &o.twin,
        "Zebrafish",
        "Zebrafish regrow their fins in weeks.",
    );
    let other = twin(&o.jwt, "Bác sĩ Minh", "private");
    let conv_other = conversation(&o.key, &other);
    let question = format!("How do zebrafish regrow fins? {other}");
    let reply = ask(&o.key, &conv_other, &question);
    assert_eq!(reply["citations"], json!([]));
    // A twin without matching documents gets its persona exactly, no sources (then only the
    // request for follow-up questions).
    assert_eq!(
        system_prompt_for(&question),
        format!(
            "Bạn là Bác sĩ Minh.{}",
            twinexpert::conversations::suggestions::INSTRUCTION
        )
    );

    let conv = conversation(&o.key, &o.twin);
    let before = ask(&o.key, &conv, &format!("zebrafish fins? {}", o.twin));
    assert_eq!(cited_docs(&before), vec![doc["id"].as_str().unwrap()]);
    let del = app().delete(
        &format!(
            "/api/v1/twins/{}/knowledge/{}",
            o.twin,
            doc["id"].as_str().unwrap()
        ),
        Auth::Bearer(&o.jwt),
    );
    assert_eq!(del.status, 200, "{}", del.text);
    let question = format!("zebrafish fins again? {}", o.twin);
    let after = ask(&o.key, &conv, &question);
    assert_eq!(after["citations"], json!([]));
    assert!(!system_prompt_for(&question).contains("Zebrafish regrow"));
    // The earlier reply keeps the citation it was given.
    let history = app().get(
        &format!("/api/v1/conversations/{conv}/messages"),
        Auth::Bearer(&o.key),
    );
    assert_eq!(history.data()[1]["citations"], before["citations"]);
}

#[test]
fn the_openai_endpoint_returns_twin_citations() {
    let o = owner();
    let doc = add_doc(&o.jwt, &o.twin, "Bữa sáng", BREAKFAST);
    let body = |stream: bool| {
        json!({"model": o.twin, "stream": stream,
               "messages": [{"role": "user", "content": "an trung luoc bua sang co tot khong?"}]})
    };
    let r = app().post(
        "/api/v1/chat/completions",
        Auth::Bearer(&o.key),
        body(false),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["twin_citations"][0]["documentId"], doc["id"]);
    assert!(BREAKFAST.contains(r.body["twin_citations"][0]["quote"].as_str().unwrap()));

    let raw = app().raw(
        "POST",
        "/api/v1/chat/completions",
        &[
            ("Authorization", &format!("Bearer {}", o.key)),
            ("Content-Type", "application/json"),
        ],
        body(true).to_string().as_bytes(),
    );
    let chunks: Vec<Value> = raw
        .text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str(d).ok())
        .collect();
    let last = chunks
        .iter()
        .find(|c| c["choices"][0]["finish_reason"].is_string())
        .unwrap_or_else(|| panic!("no finish chunk: {}", raw.text));
    assert_eq!(last["twin_citations"][0]["documentId"], doc["id"]);
    assert!(
        chunks
            .iter()
            .filter(|c| c.get("twin_citations").is_some())
            .count()
            == 1
    );
}

#[test]
fn the_bench_corpus_is_answered_from_the_right_document_at_least_nine_times_in_ten() {
    let jwt = app().user().jwt;
    let key = app().key(&jwt, Scope::FullAccess).secret;
    let out = std::process::Command::new(crate::common::root().join("node_modules/.bin/node"))
        .arg(crate::common::root().join("bench/knowledge.mjs"))
        .args(["quality", &app().base, &jwt, &key])
        .output()
        .expect("spawn node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let result: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert!(
        result["questions"].as_u64().unwrap() >= 20 && result["documents"].as_u64().unwrap() >= 20
    );
    println!("{stdout}");
    assert!(result["score"].as_f64().unwrap() >= 0.9, "{stdout}");
}

/// Cells (SPEC §14): a twin's documents live in its own object. What a twin had in D1 before
/// (the previous release's tables) is carried into its object on first use, found and cited as
/// before; deleting the twin purges its knowledge everywhere.
#[test]
fn knowledge_from_before_cells_is_carried_into_the_twins_object_and_purged_with_the_twin() {
    let o = owner();
    let (doc, text) = (
        format!("doc_legacy_{}", &o.twin[4..]),
        "Quả bơ chín giúp bữa sáng no lâu.",
    );
    // As the previous release left them: the document, its passage, its index entry.
    app().d1(&format!(
        "INSERT INTO knowledge_documents (id, twin_id, title, source_url, chars, chunk_count, \
           created_at) VALUES ('{doc}', '{twin}', 'Trái cây', NULL, 33, 1, '2026-11-01T00:00:00.000Z'); \
         INSERT INTO knowledge_passages (document_id, twin_id, seq, text) VALUES ('{doc}', '{twin}', 0, '{text}'); \
         INSERT INTO knowledge_fts (rowid, body) SELECT id, 'trái cây\n{folded}' FROM knowledge_passages \
           WHERE document_id = '{doc}'; \
         UPDATE twins SET knowledge_docs = 1 WHERE id = '{twin}'",
        twin = o.twin,
        folded = text.to_lowercase(),
    ));
    let conv = conversation(&o.key, &o.twin);
    let reply = ask(&o.key, &conv, "Qua bo chin an sang duoc khong?");
    let cited = &reply["citations"][0];
    assert_eq!(cited["documentId"], doc.as_str(), "{reply}");
    assert_eq!(cited["quote"], text);
    let listed = app().get(
        &format!("/api/v1/twins/{}/knowledge", o.twin),
        Auth::Bearer(&o.jwt),
    );
    assert_eq!(listed.data()[0]["id"], doc.as_str(), "{}", listed.text);
    assert_eq!(listed.data()[0]["title"], "Trái cây");

    // A new document joins the carried one, once (the copy is not made again).
    add_doc(&o.jwt, &o.twin, "Bữa sáng", BREAKFAST);
    let listed = app().get(
        &format!("/api/v1/twins/{}/knowledge", o.twin),
        Auth::Bearer(&o.jwt),
    );
    assert_eq!(listed.body["meta"]["pagination"]["total"], 2);

    let deleted = app().delete(&format!("/api/v1/twins/{}", o.twin), Auth::Bearer(&o.jwt));
    assert_eq!(deleted.status, 200, "{}", deleted.text);
    eventually(
        "the twin's rows in the old tables to be purged",
        Duration::from_secs(10),
        || {
            let left = app().d1_rows(&format!(
                "SELECT COUNT(*) AS n FROM knowledge_passages WHERE twin_id = '{}'",
                o.twin
            ));
            (left[0]["n"] == 0).then_some(())
        },
    );
}
