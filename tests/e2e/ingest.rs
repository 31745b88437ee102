//! Knowledge from real files and pages (SPEC §17, docs/knowledge.md): uploads and URL imports
//! answered 202, processed by the ingest worker's queue consumer into `ready` documents whose
//! passages are exact substrings of the extracted text, PDF citations with their page, headings
//! kept as `section`; every way a document can fail, failing alone with its reason.

use crate::common::{eventually, Auth, Scope};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::time::Duration;

#[rustfmt::skip]
crate::common::app!(ingest; AuthAttemptsPerMinute = "1000", RateLimitFullAccessHourly = "100000", RateLimitFullAccessBurst = "100000", WebhookAllowHttpHosts = "127.0.0.1");

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/knowledge");

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{FIXTURES}/{name}")).unwrap()
}

struct Owner {
    jwt: String,
    twin: String,
}

fn owner() -> Owner {
    let jwt = app().user().jwt;
    let r = app().post(
        "/api/v1/twins",
        Auth::Bearer(&jwt),
        json!({"name": "Chuyên gia", "systemPrompt": "Bạn là chuyên gia.", "visibility": "private"}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let twin = r.data()["id"].as_str().unwrap().to_owned();
    Owner { jwt, twin }
}

/// `POST …/knowledge` as multipart/form-data: `parts` are `(name, filename, bytes)`.
fn upload(o: &Owner, parts: &[(&str, Option<&str>, &[u8])]) -> crate::common::Reply {
    const B: &str = "----twinexpert-test-boundary";
    let mut body = Vec::new();
    for (name, filename, bytes) in parts {
        body.extend(format!("--{B}\r\nContent-Disposition: form-data; name=\"{name}\"").bytes());
        if let Some(f) = filename {
            body.extend(
                format!("; filename=\"{f}\"\r\nContent-Type: application/octet-stream").bytes(),
            );
        }
        body.extend(b"\r\n\r\n");
        body.extend(*bytes);
        body.extend(b"\r\n");
    }
    body.extend(format!("--{B}--\r\n").bytes());
    let auth = format!("Bearer {}", o.jwt);
    let content_type = format!("multipart/form-data; boundary={B}");
    // An Idempotency-Key does not get in an upload's way (uploads are not deduplicated by it:
    // docs/knowledge.md).
    let key = format!("upload-{}", body.len());
    app().raw(
        "POST",
        &format!("/api/v1/twins/{}/knowledge", o.twin),
        &[
            ("Authorization", &auth),
            ("Content-Type", &content_type),
            ("Idempotency-Key", &key),
        ],
        &body,
    )
}

fn upload_file(o: &Owner, name: &str) -> Value {
    let r = upload(o, &[("file", Some(name), &fixture(name))]);
    assert_eq!(r.status, 202, "{}", r.text);
    r.data().clone()
}

/// The document once it is no longer `processing`, with its content.
fn settled(o: &Owner, id: &str) -> Value {
    eventually(&format!("{id} processed"), Duration::from_secs(60), || {
        let r = app().get(
            &format!("/api/v1/twins/{}/knowledge/{id}", o.twin),
            Auth::Bearer(&o.jwt),
        );
        assert_eq!(r.status, 200, "{}", r.text);
        (r.data()["status"] != "processing").then(|| r.data().clone())
    })
}

fn search(o: &Owner, query: &str) -> Vec<Value> {
    let r = app().post(
        &format!("/api/v1/twins/{}/knowledge/search", o.twin),
        Auth::Bearer(&o.jwt),
        json!({ "query": query }),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    r.data().as_array().unwrap().clone()
}

fn ready(o: &Owner, name: &str) -> Value {
    let accepted = upload_file(o, name);
    assert_eq!(accepted["status"], "processing", "{accepted}");
    assert_eq!(accepted["kind"], "file");
    let doc = settled(o, accepted["id"].as_str().unwrap());
    assert_eq!(doc["status"], "ready", "{name}: {doc}");
    assert!(doc["error"].is_null());
    assert!(doc["chunkCount"].as_u64().unwrap() >= 1, "{doc}");
    let content = doc["content"].as_str().unwrap();
    assert_eq!(
        doc["chars"].as_u64().unwrap(),
        content.chars().count() as u64
    );
    doc
}

/// Every passage search finds for `query` in `doc` is an exact substring of its content.
fn passages_of(o: &Owner, doc: &Value, query: &str) -> Vec<Value> {
    let content = doc["content"].as_str().unwrap();
    let found: Vec<Value> = search(o, query)
        .into_iter()
        .filter(|p| p["documentId"] == doc["id"])
        .collect();
    assert!(
        !found.is_empty(),
        "{query:?} found nothing in {}",
        doc["title"]
    );
    for p in &found {
        let text = p["text"].as_str().unwrap();
        assert!(content.contains(text), "{text:?} is not in the content");
    }
    found
}

#[test]
fn a_pdf_becomes_ready_and_a_question_cites_its_page() {
    let o = owner();
    let doc = ready(&o, "runner-guide.pdf");
    assert_eq!(
        (doc["format"].as_str(), doc["pages"].as_u64()),
        (Some("pdf"), Some(3))
    );
    assert_eq!(doc["title"], "runner-guide");
    let content = doc["content"].as_str().unwrap();
    // Vietnamese with its marks, English, and the table's rows.
    for text in [
        "cháo yến mạch với chuối",
        "Chocolate milk",
        "Marathon trên 3 giờ 60 đến 90 gram",
    ] {
        assert!(content.contains(text), "{text:?} missing from {content:?}");
    }
    // Typed without diacritics, the question still finds page 3's table; page 2 in English.
    let table = passages_of(
        &o,
        &doc,
        "nap bao nhieu gram tinh bot moi gio khi chay marathon",
    );
    assert_eq!(table[0]["page"], 3, "{table:?}");
    let recovery = passages_of(&o, &doc, "what should I eat after a long run");
    assert_eq!(recovery[0]["page"], 2, "{recovery:?}");

    // A turn cites it with its page.
    let key = app().key(&o.jwt, Scope::FullAccess).secret;
    let conv = app().post(
        "/api/v1/conversations",
        Auth::Bearer(&key),
        json!({"twinId": o.twin}),
    );
    let conv = conv.data()["id"].as_str().unwrap().to_owned();
    let r = app().post(
        &format!("/api/v1/conversations/{conv}/messages"),
        Auth::Bearer(&key),
        json!({"content": "Chạy marathon cần nạp bao nhiêu gram tinh bột mỗi giờ?"}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let citation = &r.data()["message"]["citations"][0];
    assert_eq!(citation["documentId"], doc["id"], "{citation}");
    assert_eq!(citation["page"], 3, "{citation}");
    assert!(content.contains(citation["quote"].as_str().unwrap()));

    // The twin's row counts it, and the original is kept in R2.
    let rows = app().d1_rows(&format!(
        "SELECT knowledge_docs, knowledge_chars FROM twins WHERE id = '{}'",
        o.twin
    ));
    assert_eq!(rows[0]["knowledge_docs"], 1);
    assert_eq!(rows[0]["knowledge_chars"], doc["chars"]);
    let id = doc["id"].as_str().unwrap();
    let original = format!("{}/{id}", o.twin);
    assert!(app().r2_has(ORIGINALS, &original));

    // Deleted, it is never retrieved again and its original is gone; so are a deleted twin's.
    let r = app().delete(
        &format!("/api/v1/twins/{}/knowledge/{id}", o.twin),
        Auth::Bearer(&o.jwt),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(search(&o, "chocolate milk").is_empty());
    assert!(!app().r2_has(ORIGINALS, &original));
    let other = ready(&o, "finance-notes.md");
    let original = format!("{}/{}", o.twin, other["id"].as_str().unwrap());
    assert!(app().r2_has(ORIGINALS, &original));
    let r = app().delete(&format!("/api/v1/twins/{}", o.twin), Auth::Bearer(&o.jwt));
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(!app().r2_has(ORIGINALS, &original));
}

const ORIGINALS: &str = "twinexpert-originals";

#[test]
fn docx_html_and_markdown_keep_their_headings_as_sections() {
    let o = owner();
    let docx = ready(&o, "sleep-handbook.docx");
    assert_eq!(docx["format"], "docx");
    let coffee = passages_of(&o, &docx, "ly ca phe cuoi cung nen uong truoc may gio");
    assert_eq!(
        coffee[0]["section"],
        "Sổ tay chăm sóc giấc ngủ › Cà phê và giấc ngủ"
    );
    assert!(coffee[0]["text"]
        .as_str()
        .unwrap()
        .starts_with("Cà phê và giấc ngủ"));
    assert!(coffee[0].get("page").is_none());

    let md = ready(&o, "finance-notes.md");
    let fund = passages_of(&o, &md, "quy khan cap nen bang bao nhieu thang");
    assert_eq!(
        fund[0]["section"],
        "Ghi chú tài chính cá nhân › Quỹ khẩn cấp"
    );

    // An HTML upload is read like a page: its navigation, sidebar and footer are dropped.
    let html = ready(&o, "balcony-herbs.html");
    let content = html["content"].as_str().unwrap();
    assert!(content.contains("xơ dừa và phân trùn quế theo tỉ lệ 5:3:2"));
    for noise in [
        "giảm giá 50%",
        "Đăng nhập",
        "Khuyến mãi phân bón",
        "Mọi quyền được bảo lưu",
    ] {
        assert!(!content.contains(noise), "{noise:?} kept in {content:?}");
    }
    let heat = passages_of(&o, &html, "ngay nang nong tren 35 do");
    assert_eq!(heat[0]["section"], "Tưới nước › Mùa nắng nóng");
}

/// A local web server: `/article` is the HTML fixture, `/hang` never answers, `/away`
/// redirects to a private address, `/big` is 6 MB.
fn web_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                reader.read_line(&mut line).unwrap_or(0);
                let path = line.split(' ').nth(1).unwrap_or("/").to_owned();
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                        break;
                    }
                }
                let mut out = stream;
                let (status, extra, body): (&str, String, Vec<u8>) = match path.as_str() {
                    "/article" => (
                        "200 OK",
                        "Content-Type: text/html; charset=utf-8\r\n".into(),
                        fixture("balcony-herbs.html"),
                    ),
                    "/hang" => {
                        std::thread::sleep(Duration::from_secs(30));
                        return;
                    }
                    "/away" => (
                        "302 Found",
                        "Location: http://10.0.0.1/secret\r\n".into(),
                        Vec::new(),
                    ),
                    "/big" => (
                        "200 OK",
                        "Content-Type: text/plain\r\n".into(),
                        vec![b'a'; 6 << 20],
                    ),
                    _ => ("404 Not Found", String::new(), Vec::new()),
                };
                let head = format!(
                    "HTTP/1.1 {status}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = out.write_all(head.as_bytes());
                let _ = out.write_all(&body);
            });
        }
    });
    format!("http://127.0.0.1:{port}")
}

fn import(o: &Owner, body: Value) -> crate::common::Reply {
    app().post(
        &format!("/api/v1/twins/{}/knowledge", o.twin),
        Auth::Bearer(&o.jwt),
        body,
    )
}

#[test]
fn a_web_page_is_imported_cited_with_its_url_and_refreshed() {
    let o = owner();
    let site = web_server();
    let r = import(&o, json!({ "url": format!("{site}/article") }));
    assert_eq!(r.status, 202, "{}", r.text);
    assert_eq!(
        (r.data()["kind"].as_str(), r.data()["status"].as_str()),
        (Some("url"), Some("processing"))
    );
    let id = r.data()["id"].as_str().unwrap().to_owned();
    let doc = settled(&o, &id);
    assert_eq!(doc["status"], "ready", "{doc}");
    // Titled by the page, since the owner gave none; its navigation and footer are not kept.
    assert_eq!(doc["title"], "Trồng rau thơm trên ban công");
    let content = doc["content"].as_str().unwrap();
    assert!(content.contains("Tưới vào buổi sáng sớm"), "{content:?}");
    for noise in [
        "Cửa hàng hạt giống",
        "Bài viết phổ biến",
        "ads@vuonnha.example",
    ] {
        assert!(!content.contains(noise), "{noise:?} kept in {content:?}");
    }
    assert_eq!(doc["sourceUrl"], format!("{site}/article"));
    let water = passages_of(&o, &doc, "tuoi rau vao buoi nao");
    assert_eq!(water[0]["sourceUrl"], format!("{site}/article"));

    let again = app().post(
        &format!("/api/v1/twins/{}/knowledge/{id}/refresh", o.twin),
        Auth::Bearer(&o.jwt),
        json!({}),
    );
    assert_eq!(again.status, 202, "{}", again.text);
    assert_eq!(again.data()["status"], "processing");
    let refreshed = settled(&o, &id);
    assert_eq!(refreshed["status"], "ready");
    assert_eq!(refreshed["chunkCount"], doc["chunkCount"]);
    // Its passages were replaced, not added to.
    assert_eq!(
        passages_of(&o, &refreshed, "tuoi rau vao buoi nao").len(),
        water.len()
    );

    // Only an imported page can be refreshed.
    let file = upload_file(&o, "finance-notes.md");
    let refused = app().post(
        &format!(
            "/api/v1/twins/{}/knowledge/{}/refresh",
            o.twin,
            file["id"].as_str().unwrap()
        ),
        Auth::Bearer(&o.jwt),
        json!({}),
    );
    refused.assert_error(409, "CONFLICT");
}

#[test]
fn every_bad_document_fails_alone_with_its_reason() {
    let o = owner();
    let failed = |accepted: Value| {
        let doc = settled(&o, accepted["id"].as_str().unwrap());
        assert_eq!(doc["status"], "failed", "{doc}");
        assert_eq!(
            (doc["chars"].as_u64(), doc["chunkCount"].as_u64()),
            (Some(0), Some(0))
        );
        doc["error"]["code"].as_str().unwrap().to_owned()
    };
    assert_eq!(failed(upload_file(&o, "encrypted.pdf")), "ENCRYPTED_PDF");
    assert_eq!(failed(upload_file(&o, "scanned.pdf")), "SCANNED_PDF");
    // A Windows program named .pdf is refused as it arrives (never parsed).
    let exe = upload_file(&o, "installer.pdf");
    assert_eq!(
        (exe["status"].as_str(), exe["error"]["code"].as_str()),
        (Some("failed"), Some("UNSUPPORTED_TYPE"))
    );
    assert!(exe["error"]["message"]
        .as_str()
        .unwrap()
        .contains("Windows executable"));
    let big = vec![b'a'; 11 << 20];
    let r = upload(&o, &[("file", Some("big.txt"), &big)]);
    assert_eq!(r.status, 202, "{}", r.text);
    assert_eq!(r.data()["error"]["code"], "TOO_LARGE", "{}", r.text);

    let site = web_server();
    let started = std::time::Instant::now();
    let hang = import(&o, json!({ "url": format!("{site}/hang") }));
    assert_eq!(hang.status, 202, "{}", hang.text);
    let away = import(&o, json!({ "url": format!("{site}/away") }));
    let huge = import(&o, json!({ "url": format!("{site}/big") }));
    assert_eq!(failed(away.data().clone()), "FETCH_FAILED");
    assert_eq!(failed(huge.data().clone()), "TOO_LARGE");
    let hung = settled(&o, hang.data()["id"].as_str().unwrap());
    assert_eq!(hung["error"]["code"], "FETCH_FAILED", "{hung}");
    assert!(
        hung["error"]["message"].as_str().unwrap().contains("10 s"),
        "{hung}"
    );
    assert!(started.elapsed() >= Duration::from_secs(10));

    // Nothing of them is searchable, the twin counts no characters, and the consumer still
    // works: a good document after them becomes ready.
    assert!(search(&o, "chocolate milk marathon").is_empty());
    ready(&o, "runner-guide.pdf");
    let list = app().get(
        &format!("/api/v1/twins/{}/knowledge?limit=20", o.twin),
        Auth::Bearer(&o.jwt),
    );
    assert_eq!(list.data().as_array().unwrap().len(), 8);
}

#[test]
fn bad_requests_are_refused_before_anything_is_stored() {
    let o = owner();
    import(&o, json!({ "url": "http://10.1.2.3/x" })).assert_invalid("url");
    import(&o, json!({ "url": "https://localhost/x" })).assert_invalid("url");
    import(&o, json!({ "url": "ftp://example.com/x" })).assert_invalid("url");
    upload(&o, &[("title", None, b"no file")]).assert_invalid("file");
    upload(
        &o,
        &[
            ("file", Some("a.md"), b"# A"),
            ("title", None, "x".repeat(201).as_bytes()),
        ],
    )
    .assert_invalid("title");
    // Another owner's twin is not found; an API key is refused as for every knowledge route.
    let stranger = app().user().jwt;
    let r = app().get(
        &format!("/api/v1/twins/{}/knowledge", o.twin),
        Auth::Bearer(&stranger),
    );
    r.assert_error(404, "NOT_FOUND");
    let key = app().key(&o.jwt, Scope::FullAccess).secret;
    let r = app().post(
        &format!("/api/v1/twins/{}/knowledge/search", o.twin),
        Auth::Bearer(&key),
        json!({"query": "x"}),
    );
    r.assert_error(403, "FORBIDDEN");
    let list = app().get(
        &format!("/api/v1/twins/{}/knowledge", o.twin),
        Auth::Bearer(&o.jwt),
    );
    assert_eq!(list.data().as_array().unwrap().len(), 0, "{}", list.text);
}

/// Retrieval quality over real uploads (bench/knowledge.mjs recall): every document of several
/// formats is processed, and the passage holding each answer is among the five retrieved.
#[test]
fn real_documents_are_recalled_in_the_top_five_for_ninety_five_percent_of_questions() {
    let jwt = app().user().jwt;
    let out = std::process::Command::new(crate::common::root().join("node_modules/.bin/node"))
        .arg(crate::common::root().join("bench/knowledge.mjs"))
        .args(["recall", &app().base, &jwt])
        .output()
        .expect("spawn node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{stdout}");
    let result: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    let questions = result["questions"].as_u64().unwrap();
    assert!(
        questions >= 60 && result["documents"].as_u64().unwrap() >= 20,
        "{result}"
    );
    assert!(
        result["withoutDiacritics"].as_u64().unwrap() * 3 >= questions,
        "{result}"
    );
    assert!(
        result["formats"].as_object().unwrap().len() >= 5,
        "{result}"
    );
    assert_eq!(result["notSubstrings"], 0, "{result}");
    assert!(result["recallAt5"].as_f64().unwrap() >= 0.95, "{stdout}");
}
