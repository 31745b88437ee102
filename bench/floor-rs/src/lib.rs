//! The floor (`bench/floor/worker.js`) in Rust, line for line: a keyed read is one Durable
//! Object call that counts ∥ one D1 read; a streamed turn adds the conversation's object, which
//! stores the question and returns the model's bytes as they come. No key, envelope, headers,
//! log line or validation. Built and exported as the API is (`build_one`, `.ci/entry.mjs`: the
//! objects are `DurableObject`s reached over RPC), so beside the JS floor it measures what the
//! stack itself adds to the same work.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use serde_json::json;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use worker::js_sys::Promise;
use worker::{
    durable_object, event, Env, Fetch, Headers, Method, Request, RequestInit, Response,
    ResponseBody, SqlStorage, State,
};

#[wasm_bindgen]
extern "C" {
    type CounterStub;
    #[wasm_bindgen(method)]
    fn count(this: &CounterStub) -> Promise;
}

/// Exact per-key counting in the one instance's memory, written at most once a second (as the
/// limits object and the JS floor count).
#[durable_object]
pub struct Counter {
    state: State,
    n: Rc<Cell<Option<i64>>>,
    saving: Rc<Cell<bool>>,
}

impl worker::DurableObject for Counter {
    fn new(state: State, _env: Env) -> Self {
        Counter {
            state,
            n: Rc::default(),
            saving: Rc::default(),
        }
    }

    async fn fetch(&self, _req: Request) -> worker::Result<Response> {
        Response::error("RPC only", 404)
    }
}

#[wasm_bindgen]
impl Counter {
    /// Synchronous, as the JS floor's `count` is: no future, no microtask on the object's side.
    pub fn count(&self) -> Result<f64, JsValue> {
        let sql = self.state.storage().sql();
        let n = match self.n.get() {
            Some(n) => n + 1,
            None => {
                sql.exec(
                    "CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY, v INTEGER NOT NULL)",
                    None,
                )?;
                let rows: Vec<serde_json::Value> = sql
                    .exec("SELECT v FROM kv WHERE k = 'n'", None)?
                    .to_array()?;
                rows.first().and_then(|r| r["v"].as_i64()).unwrap_or(0) + 1
            }
        };
        self.n.set(Some(n));
        if !self.saving.replace(true) {
            let (saving, count) = (self.saving.clone(), self.n.clone());
            wasm_bindgen_futures::spawn_local(async move {
                worker::Delay::from(Duration::from_millis(1000)).await;
                saving.set(false);
                save(&sql, count.get().unwrap_or(0));
            });
        }
        Ok(n as f64)
    }
}

fn save(sql: &SqlStorage, n: i64) {
    let _ = sql.exec(
        "INSERT OR REPLACE INTO kv (k, v) VALUES ('n', ?)",
        vec![(n as f64).into()],
    );
}

/// A conversation: stores the question, then streams the model's answer straight through.
#[durable_object]
pub struct Turn {
    state: State,
    env: Env,
}

impl worker::DurableObject for Turn {
    fn new(state: State, env: Env) -> Self {
        Turn { state, env }
    }

    async fn fetch(&self, mut req: Request) -> worker::Result<Response> {
        let asked: serde_json::Value = req.json().await?;
        let sql = self.state.storage().sql();
        sql.exec(
            "CREATE TABLE IF NOT EXISTS messages (id INTEGER PRIMARY KEY, content TEXT NOT NULL)",
            None,
        )?;
        let content = asked["content"].as_str().unwrap_or_default();
        sql.exec(
            "INSERT INTO messages (content) VALUES (?)",
            vec![content.into()],
        )?;
        let body = json!({
            "model": "twin-local-1",
            "stream": true,
            "messages": [
                { "role": "system", "content": asked["prompt"] },
                { "role": "user", "content": content },
            ],
        });
        let headers = Headers::new();
        headers.set("content-type", "application/json")?;
        let key = self.env.var("UPSTREAM_API_KEY")?.to_string();
        headers.set("authorization", &format!("Bearer {key}"))?;
        let mut init = RequestInit::new();
        init.with_method(Method::Post)
            .with_headers(headers)
            .with_body(Some(body.to_string().into()));
        let base = self.env.var("UPSTREAM_BASE_URL")?.to_string();
        let upstream = Request::new_with_init(&format!("{base}/chat/completions"), &init)?;
        let answer = Fetch::Request(upstream).send().await?;
        let stream: worker::web_sys::Response = answer.into();
        let out = Headers::new();
        out.set("content-type", "text/event-stream")?;
        Ok(Response::from_body(match stream.body() {
            Some(s) => ResponseBody::Stream(s),
            None => ResponseBody::Empty,
        })?
        .with_headers(out))
    }
}

fn counted(env: &Env) -> worker::Result<Promise> {
    let stub: CounterStub = env
        .durable_object("COUNTER")?
        .get_by_name("key")?
        .into_rpc();
    Ok(stub.count())
}

/// The twin's row as JSON text, from one `JSON.stringify` (as the API's store reads rows: far
/// fewer calls across the boundary than workers-rs walking the object field by field).
async fn twin(env: &Env, id: &str) -> worker::Result<String> {
    let stmt = env
        .d1("DB")?
        .prepare("SELECT * FROM twins WHERE id = ?")
        .bind(&[id.into()])?;
    let row = JsFuture::from(stmt.inner().first(None)?).await?;
    Ok(worker::js_sys::JSON::stringify(&row)?.into())
}

const LOOPBACK: [&str; 3] = ["127.0.0.1", "localhost", "[::1]"];

#[event(fetch)]
async fn fetch(
    req: worker::worker_sys::web_sys::Request,
    env: Env,
    _ctx: worker::Context,
) -> worker::Result<Response> {
    let url = worker::Url::parse(&req.url())?;
    // No auth at all: it answers only on this machine, and only when bench/run started it.
    let local = env
        .var("BENCH_FLOOR")
        .map(|v| v.to_string())
        .unwrap_or_default()
        == "local";
    if !LOOPBACK.contains(&url.host_str().unwrap_or_default()) || !local {
        return Response::error("bench-floor-rs runs only under bench/run on 127.0.0.1", 403);
    }
    let path = url.path();
    let id = &path[path.rfind('/').map_or(0, |i| i + 1)..];
    if path.starts_with("/twins/") {
        let (n, row) = futures::join!(JsFuture::from(counted(&env)?), twin(&env, id));
        // The row's text as it came: neither parsed nor written again.
        let body = format!(r#"{{"n":{},"twin":{}}}"#, n?.as_f64().unwrap_or(0.0), row?);
        let headers = Headers::new();
        headers.set("content-type", "application/json")?;
        return Ok(Response::from_bytes(body.into_bytes())?.with_headers(headers));
    }
    if path.starts_with("/turns/") {
        let twin_id = url
            .query_pairs()
            .find(|(k, _)| k == "twin")
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default();
        // The runtime's request as it is: `worker::Request::from` would read `request.cf`.
        let (n, asked, row) = futures::join!(
            JsFuture::from(counted(&env)?),
            JsFuture::from(req.text()?),
            twin(&env, &twin_id)
        );
        n?;
        let asked: serde_json::Value =
            serde_json::from_str(&asked?.as_string().unwrap_or_default())?;
        let row: serde_json::Value = serde_json::from_str(&row?)?;
        let mut init = RequestInit::new();
        let body = json!({ "prompt": row["system_prompt"], "content": asked["content"] });
        init.with_method(Method::Post)
            .with_body(Some(body.to_string().into()));
        let conversation = env.durable_object("TURN")?.get_by_name(id)?;
        return conversation
            .fetch_with_request(Request::new_with_init("http://turn/", &init)?)
            .await;
    }
    Response::from_json(&json!({ "floor": "rs" }))
}
