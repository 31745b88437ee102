//! Twins and conversations: routes, validation, pagination,
//! and tenant isolation — another user never sees or touches what is not theirs.

use crate::common::{Auth, Scope};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};

#[rustfmt::skip]
crate::common::app!(AuthAttemptsPerMinute = "1000", RateLimitFullAccessBurst = "1000", RateLimitFullAccessHourly = "10000");

/// A marker no other test uses, so searches return only this test's twins.
fn marker() -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "zq{}x{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

fn twin(jwt: &str, name: &str, visibility: &str) -> Value {
    let r = app().post(
        "/api/v1/twins",
        Auth::Bearer(jwt),
        json!({"name": name, "systemPrompt": format!("You are {name}."), "visibility": visibility,
               "headline": "Expert", "expertise": ["testing"]}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    r.data().clone()
}

fn conversation(auth: Auth, twin_id: &str) -> Value {
    let r = app().post(
        "/api/v1/conversations",
        auth,
        json!({"twinId": twin_id, "title": "Chat"}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    r.data().clone()
}

#[test]
fn owner_creates_updates_and_deletes_a_twin() {
    let jwt = app().user().jwt;
    let m = marker();
    let created = app().post(
        "/api/v1/twins",
        Auth::Bearer(&jwt),
        json!({"name": format!("Chuyên gia Hà {m}"), "systemPrompt": "Bạn là Hà.", "expertise": ["dinh dưỡng"],
               "avatarUrl": "https://cdn.example/ha.png", "language": "vi", "visibility": "public"}),
    );
    assert_eq!(created.status, 201, "{}", created.text);
    let t = created.data();
    assert_eq!(t["slug"], format!("chuyen-gia-ha-{m}"));
    assert_eq!(t["systemPrompt"], "Bạn là Hà.");
    assert_eq!(t["expertise"], json!(["dinh dưỡng"]));
    assert_eq!(t["visibility"], "public");
    assert!(t["websiteUrl"].is_null(), "{t}");
    let id = t["id"].as_str().unwrap();

    let dup = app().post(
        "/api/v1/twins",
        Auth::Bearer(&jwt),
        json!({"name": format!("Chuyên gia Hà {m}"), "systemPrompt": "x"}),
    );
    dup.assert_error(409, "CONFLICT");

    let patched = app().patch(
        &format!("/api/v1/twins/{id}"),
        Auth::Bearer(&jwt),
        json!({"headline": "Mới", "visibility": "private", "websiteUrl": "https://ha.example/vi"}),
    );
    assert_eq!(patched.status, 200, "{}", patched.text);
    assert_eq!(patched.data()["headline"], "Mới");
    assert_eq!(patched.data()["websiteUrl"], "https://ha.example/vi");
    let read = app().get(&format!("/api/v1/twins/{id}"), Auth::Bearer(&jwt));
    assert_eq!(read.data()["websiteUrl"], "https://ha.example/vi");
    assert_eq!(patched.data()["name"], t["name"]);
    assert_eq!(patched.data()["visibility"], "private");

    let deleted = app().delete(&format!("/api/v1/twins/{id}"), Auth::Bearer(&jwt));
    assert_eq!(deleted.data(), &json!({"id": id, "deleted": true}));
    app()
        .get(&format!("/api/v1/twins/{id}"), Auth::Bearer(&jwt))
        .assert_error(404, "NOT_FOUND");
}

#[test]
fn twin_validation_names_every_field_and_management_is_session_only() {
    let jwt = app().user().jwt;
    let r = app().post(
        "/api/v1/twins",
        Auth::Bearer(&jwt),
        json!({"name": "", "avatarUrl": "ftp://x", "websiteUrl": "not a url", "visibility": "hidden", "expertise": "cardio"}),
    );
    r.assert_error(400, "VALIDATION_ERROR");
    let f = r.body["details"]["fields"].as_object().unwrap();
    for field in [
        "name",
        "systemPrompt",
        "avatarUrl",
        "websiteUrl",
        "visibility",
        "expertise",
    ] {
        assert!(f.contains_key(field), "{field}: {f:?}");
    }
    let key = app().key(&jwt, Scope::FullAccess).secret;
    app()
        .post(
            "/api/v1/twins",
            Auth::Bearer(&key),
            json!({"name": "x", "systemPrompt": "y"}),
        )
        .assert_error(403, "FORBIDDEN");
}

#[test]
fn search_matches_name_headline_and_expertise_case_insensitively_and_literally() {
    let jwt = app().user().jwt;
    let m = marker();
    twin(&jwt, &format!("Alpha {m}"), "public");
    let r = app().post(
        "/api/v1/twins",
        Auth::Bearer(&jwt),
        json!({"name": "Beta", "headline": format!("Sells at 50% {m}"), "systemPrompt": "x", "visibility": "public",
               "slug": format!("beta-{m}")}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let search = |q: &str| app().get(&format!("/api/v1/twins?q={q}"), Auth::Bearer(&jwt));
    let r = search(&m.to_uppercase());
    assert_eq!(r.body["meta"]["pagination"]["total"], 2, "{}", r.text);
    assert_eq!(
        search(&format!("50%25%20{m}")).body["meta"]["pagination"]["total"],
        1
    );
    // `%` and `_` are literal, not wildcards.
    assert_eq!(
        search(&format!("5_%25%20{m}")).body["meta"]["pagination"]["total"],
        0
    );
    assert_eq!(search("%25").status, 200);
    // The longest allowed query (200 characters, multi-byte) is an ordinary search, not a 500.
    assert_eq!(search(&"ữ".repeat(200)).status, 200);
    search(&"a".repeat(201)).assert_error(400, "VALIDATION_ERROR");
    assert_eq!(search(&m).data().as_array().unwrap().len(), 2);
}

#[test]
fn pagination_edges() {
    let jwt = app().user().jwt;
    let m = marker();
    for i in 0..5 {
        twin(&jwt, &format!("Pager {i} {m}"), "public");
    }
    let page = |query: &str| app().get(&format!("/api/v1/twins?q={m}&{query}"), Auth::Bearer(&jwt));
    let r = page("page=1&limit=2");
    assert_eq!(r.data().as_array().unwrap().len(), 2);
    // nextCursor: the page's last item, to go on with startingAfter.
    assert_eq!(
        r.body["meta"]["pagination"],
        json!({"page": 1, "limit": 2, "total": 5, "totalPages": 3, "hasMore": true,
               "nextCursor": r.data()[1]["id"]})
    );
    let last = page("page=3&limit=2");
    assert_eq!(last.data().as_array().unwrap().len(), 1);
    assert_eq!(last.body["meta"]["pagination"]["hasMore"], false);
    assert!(last.body["meta"]["pagination"]["nextCursor"].is_null());
    let past = page("page=9&limit=2");
    assert_eq!(past.status, 200);
    assert_eq!(past.data(), &json!([]));
    assert_eq!(past.body["meta"]["pagination"]["total"], 5);
    assert_eq!(page("limit=1").data().as_array().unwrap().len(), 1);
    assert_eq!(page("limit=100").data().as_array().unwrap().len(), 5);
    // Pages do not overlap and cover everything.
    let mut seen: Vec<String> = (1..=3)
        .flat_map(|p| {
            page(&format!("page={p}&limit=2"))
                .data()
                .as_array()
                .unwrap()
                .clone()
        })
        .map(|t| t["id"].as_str().unwrap().to_owned())
        .collect();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 5);
    for bad in ["limit=0", "limit=101", "page=0", "page=-1", "limit=abc"] {
        page(bad).assert_error(400, "VALIDATION_ERROR");
    }
    let none = app().get(
        "/api/v1/twins?q=nothing-matches-this-at-all",
        Auth::Bearer(&jwt),
    );
    assert_eq!(none.body["meta"]["pagination"]["totalPages"], 0);
}

#[test]
fn conversations_from_either_route_are_the_same_object() {
    let jwt = app().user().jwt;
    let key = app().key(&jwt, Scope::FullAccess).secret;
    let t = twin(&jwt, &format!("Conv {}", marker()), "private");
    let tid = t["id"].as_str().unwrap();
    let a = app().post(
        "/api/v1/conversations",
        Auth::Bearer(&key),
        json!({"twinId": tid, "title": "API Chat Session"}),
    );
    let b = app().post(
        &format!("/api/v1/twins/{tid}"),
        Auth::Bearer(&key),
        json!({"title": "API Chat Session"}),
    );
    assert_eq!((a.status, b.status), (201, 201), "{} {}", a.text, b.text);
    let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(a.data()), keys(b.data()));
    assert_eq!(a.data()["twinId"], tid);
    assert_eq!(b.data()["title"], "API Chat Session");
    assert_eq!(a.data()["messageCount"], 0);
    assert!(a.data()["lastMessageAt"].is_null());
    let untitled = app().send(
        "POST",
        &format!("/api/v1/twins/{tid}"),
        Auth::Bearer(&key),
        None,
    );
    assert_eq!(untitled.status, 201, "{}", untitled.text);
    assert_eq!(untitled.data()["title"], "New conversation");
    app()
        .post(
            "/api/v1/conversations",
            Auth::Bearer(&key),
            json!({"title": 5}),
        )
        .assert_error(400, "VALIDATION_ERROR");
    app()
        .post(
            "/api/v1/conversations",
            Auth::Bearer(&key),
            json!({"twinId": "twn_missing"}),
        )
        .assert_error(404, "NOT_FOUND");
}

#[test]
fn conversations_list_by_activity_filter_rename_delete() {
    let jwt = app().user().jwt;
    let t1 = twin(&jwt, &format!("One {}", marker()), "private");
    let t2 = twin(&jwt, &format!("Two {}", marker()), "private");
    let auth = Auth::Bearer(&jwt);
    let c1 = conversation(auth, t1["id"].as_str().unwrap());
    let c2 = conversation(auth, t2["id"].as_str().unwrap());
    let c3 = conversation(auth, t1["id"].as_str().unwrap());
    let ids = |r: &crate::common::Reply| {
        r.data()
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].clone())
            .collect::<Vec<_>>()
    };

    let list = app().get("/api/v1/conversations", auth);
    assert_eq!(
        ids(&list),
        vec![c3["id"].clone(), c2["id"].clone(), c1["id"].clone()]
    );
    assert_eq!(list.body["meta"]["pagination"]["total"], 3);

    std::thread::sleep(std::time::Duration::from_millis(5)); // a later millisecond than creation
    let c1_path = format!("/api/v1/conversations/{}", c1["id"].as_str().unwrap());
    let renamed = app().patch(&c1_path, auth, json!({"title": "Tiêu đề mới"}));
    assert_eq!(renamed.data()["title"], "Tiêu đề mới");
    assert_eq!(ids(&app().get("/api/v1/conversations", auth))[0], c1["id"]);

    let filtered = app().get(
        &format!(
            "/api/v1/conversations?twinId={}",
            t2["id"].as_str().unwrap()
        ),
        auth,
    );
    assert_eq!(ids(&filtered), vec![c2["id"].clone()]);
    app()
        .patch(&c1_path, auth, json!({"title": ""}))
        .assert_error(400, "VALIDATION_ERROR");
    app()
        .patch(&c1_path, auth, json!({"title": "x".repeat(201)}))
        .assert_error(400, "VALIDATION_ERROR");

    let history = app().get(&format!("{c1_path}/messages"), auth);
    assert_eq!(history.data(), &json!([]));
    assert_eq!(history.body["meta"]["pagination"]["total"], 0);

    assert_eq!(
        app().delete(&c1_path, auth).data(),
        &json!({"id": c1["id"], "deleted": true})
    );
    app().get(&c1_path, auth).assert_error(404, "NOT_FOUND");
    app()
        .get(&format!("{c1_path}/messages"), auth)
        .assert_error(404, "NOT_FOUND");
}

#[test]
fn read_only_keys_read_but_cannot_write_and_scope_comes_before_validation() {
    let jwt = app().user().jwt;
    let t = twin(&jwt, &format!("Scope {}", marker()), "private");
    let reader = app().key(&jwt, Scope::ReadOnly).secret;
    assert_eq!(
        app().get("/api/v1/twins", Auth::Bearer(&reader)).status,
        200
    );
    assert_eq!(
        app()
            .get("/api/v1/conversations", Auth::XApiKey(&reader))
            .status,
        200
    );
    let r = app().post(
        "/api/v1/conversations",
        Auth::Bearer(&reader),
        json!({"twinId": t["id"]}),
    );
    r.assert_error(403, "INSUFFICIENT_SCOPE");
    assert_eq!(
        r.body["details"],
        json!({"required": "full_access", "granted": "read_only"})
    );
    // Invalid body, but the missing scope answers first.
    let r = app().post(
        &format!("/api/v1/twins/{}", t["id"].as_str().unwrap()),
        Auth::Bearer(&reader),
        json!({"title": 5}),
    );
    r.assert_error(403, "INSUFFICIENT_SCOPE");
}

#[test]
fn cross_tenant_matrix_everything_of_alice_is_404_for_bob() {
    let alice = app().user().jwt;
    let alice_key = app().key(&alice, Scope::FullAccess).secret;
    let m = marker();
    let private = twin(&alice, &format!("Secret {m}"), "private");
    let public = twin(&alice, &format!("Open {m}"), "public");
    let pid = private["id"].as_str().unwrap().to_owned();
    let conv = conversation(Auth::Bearer(&alice_key), public["id"].as_str().unwrap());
    let cid = conv["id"].as_str().unwrap().to_owned();

    let bob = app().user().jwt;
    let bob_key = app().key(&bob, Scope::FullAccess).secret;
    for auth in [
        Auth::Bearer(&bob),
        Auth::Bearer(&bob_key),
        Auth::XApiKey(&bob_key),
    ] {
        // Alice's private twin does not exist for Bob: not listed, not counted, not reachable.
        let list = app().get(&format!("/api/v1/twins?q={m}"), auth);
        let names: Vec<&str> = list
            .data()
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, vec![format!("Open {m}")]);
        assert_eq!(list.body["meta"]["pagination"]["total"], 1);
        assert!(
            !list.text.contains("systemPrompt"),
            "Bob must not see Alice's prompts"
        );
        app()
            .get(&format!("/api/v1/twins/{pid}"), auth)
            .assert_error(404, "NOT_FOUND");
        app()
            .post(&format!("/api/v1/twins/{pid}"), auth, json!({}))
            .assert_error(404, "NOT_FOUND");
        app()
            .post("/api/v1/conversations", auth, json!({"twinId": pid}))
            .assert_error(404, "NOT_FOUND");

        // Alice's conversation does not exist for Bob either.
        let c = format!("/api/v1/conversations/{cid}");
        app().get(&c, auth).assert_error(404, "NOT_FOUND");
        app()
            .patch(&c, auth, json!({"title": "mine now"}))
            .assert_error(404, "NOT_FOUND");
        app()
            .get(&format!("{c}/messages"), auth)
            .assert_error(404, "NOT_FOUND");
        app().delete(&c, auth).assert_error(404, "NOT_FOUND");
        let bobs = app().get("/api/v1/conversations", auth);
        assert!(!bobs.text.contains(&cid));
    }
    // Twin management on Alice's twins: 404 for Bob's session (a key is refused before that).
    for id in [&pid, public["id"].as_str().unwrap()] {
        app()
            .patch(
                &format!("/api/v1/twins/{id}"),
                Auth::Bearer(&bob),
                json!({"name": "taken"}),
            )
            .assert_error(404, "NOT_FOUND");
        app()
            .delete(&format!("/api/v1/twins/{id}"), Auth::Bearer(&bob))
            .assert_error(404, "NOT_FOUND");
    }
    // And nothing Bob tried changed anything of Alice's.
    let still = app().get(
        &format!("/api/v1/conversations/{cid}"),
        Auth::Bearer(&alice_key),
    );
    assert_eq!(still.data()["title"], "Chat");
    let mine = app().get(&format!("/api/v1/twins/{pid}"), Auth::Bearer(&alice));
    assert_eq!(mine.data()["name"], format!("Secret {m}"));
    assert_eq!(mine.data()["systemPrompt"], format!("You are Secret {m}."));
}

/// The ids of every item of the list at `path` (its own query included), walked with cursors
/// in `limit`-sized pages: forwards with `startingAfter`, or backwards from the end with
/// `endingBefore`. Each page's `nextCursor` is the id to pass on.
fn walk(path: &str, auth: Auth, limit: usize, backwards: bool) -> Vec<String> {
    let sep = if path.contains('?') { '&' } else { '?' };
    let (param, mut cursor) = if backwards {
        // The last item, from the numbered page that holds it.
        let all = app().get(&format!("{path}{sep}limit=100"), auth);
        let last = all.data().as_array().unwrap().last().unwrap()["id"].clone();
        ("endingBefore", last.as_str().unwrap().to_owned())
    } else {
        let first = app().get(&format!("{path}{sep}limit={limit}"), auth);
        let p = &first.body["meta"]["pagination"];
        assert_eq!(p["page"], 1, "{}", first.text);
        let mut ids = ids_of(&first);
        if p["hasMore"] == false {
            assert!(p["nextCursor"].is_null());
            return ids;
        }
        let next = p["nextCursor"].as_str().unwrap().to_owned();
        assert_eq!(Some(&next), ids.last());
        ids.extend(walk_from(path, sep, auth, limit, "startingAfter", next));
        return ids;
    };
    let mut ids = walk_from(path, sep, auth, limit, param, cursor.clone());
    ids.push(std::mem::take(&mut cursor));
    ids
}

fn ids_of(r: &crate::common::Reply) -> Vec<String> {
    r.data()
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect()
}

fn walk_from(
    path: &str,
    sep: char,
    auth: Auth,
    limit: usize,
    param: &str,
    mut cursor: String,
) -> Vec<String> {
    let mut pages: Vec<Vec<String>> = Vec::new();
    loop {
        let r = app().get(&format!("{path}{sep}limit={limit}&{param}={cursor}"), auth);
        assert_eq!(r.status, 200, "{}", r.text);
        let p = &r.body["meta"]["pagination"];
        assert!(
            p.get("page").is_none() && p.get("totalPages").is_none(),
            "{p}"
        );
        let ids = ids_of(&r);
        assert!(ids.len() <= limit);
        pages.push(ids.clone());
        if p["hasMore"] == false {
            assert!(p["nextCursor"].is_null(), "{p}");
            break;
        }
        cursor = p["nextCursor"].as_str().unwrap().to_owned();
        // The far end of the page in the cursor's direction.
        let far = if param == "endingBefore" {
            ids.first()
        } else {
            ids.last()
        };
        assert_eq!(Some(&cursor), far);
    }
    if param == "endingBefore" {
        pages.reverse();
    }
    pages.concat()
}

#[test]
fn every_list_pages_with_cursors_both_ways_and_the_same_order_as_numbered_pages() {
    let u = app().user();
    let key = app().key(&u.jwt, Scope::FullAccess).secret;
    let m = marker();
    let twins: Vec<String> = (0..5)
        .map(|i| {
            twin(&u.jwt, &format!("Cursor {m} {i}"), "private")["id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    for t in &twins[..3] {
        conversation(Auth::Bearer(&key), t);
        conversation(Auth::Bearer(&key), t);
    }
    let conv = conversation(Auth::Bearer(&key), &twins[0])["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for q in ["Một", "Hai", "Ba"] {
        let r = app().post(
            &format!("/api/v1/conversations/{conv}/messages"),
            Auth::Bearer(&key),
            json!({ "content": format!("{q} [[words:2]]") }),
        );
        assert_eq!(r.status, 201, "{}", r.text);
    }
    for i in 0..5 {
        let r = app().post(
            &format!("/api/v1/twins/{}/knowledge", twins[0]),
            Auth::Bearer(&u.jwt),
            json!({"title": format!("Doc {i}"), "content": format!("Ghi chú số {i}.")}),
        );
        assert_eq!(r.status, 201, "{}", r.text);
    }
    let lists = [
        (format!("/api/v1/twins?q={m}"), Auth::Bearer(&key), 5),
        ("/api/v1/conversations".to_owned(), Auth::Bearer(&key), 7),
        (
            format!("/api/v1/conversations?twinId={}", twins[0]),
            Auth::Bearer(&key),
            3,
        ),
        (
            format!("/api/v1/conversations/{conv}/messages"),
            Auth::Bearer(&key),
            6,
        ),
        (
            format!("/api/v1/twins/{}/knowledge", twins[0]),
            Auth::Bearer(&u.jwt),
            5,
        ),
    ];
    for (path, auth, n) in lists {
        let sep = if path.contains('?') { '&' } else { '?' };
        let numbered = ids_of(&app().get(&format!("{path}{sep}limit=100"), auth));
        assert_eq!(numbered.len(), n, "{path}");
        for limit in [1, 2, 3] {
            assert_eq!(
                walk(&path, auth, limit, false),
                numbered,
                "{path} forwards by {limit}"
            );
            assert_eq!(
                walk(&path, auth, limit, true),
                numbered,
                "{path} backwards by {limit}"
            );
        }
        // A cursor that is no item of this list, and both cursors at once, are refused.
        let other = if path.contains("/knowledge") {
            &conv
        } else {
            "doc_nope"
        };
        let r = app().get(&format!("{path}{sep}startingAfter={other}"), auth);
        r.assert_error(400, "VALIDATION_ERROR");
        assert!(
            r.body["details"]["fields"]["startingAfter"].is_string(),
            "{path}: {}",
            r.text
        );
        let r = app().get(&format!("{path}{sep}startingAfter=a&endingBefore=b"), auth);
        assert!(
            r.body["details"]["fields"]["endingBefore"].is_string(),
            "{path}: {}",
            r.text
        );
    }
    // Another user's conversation id is no cursor of this user's list.
    let stranger = app().user();
    let r = app().get(
        &format!("/api/v1/conversations?startingAfter={conv}"),
        Auth::Bearer(&stranger.jwt),
    );
    r.assert_error(400, "VALIDATION_ERROR");
}
