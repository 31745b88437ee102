//! A small OpenAI-compatible Chat Completions server for local development and tests.
//!
//! Replies are deterministic: the persona named in the system prompt answers in the language
//! of the question (Vietnamese in, Vietnamese out). Knobs, as flags (server-wide) or as
//! markers in the last user message (per request):
//!
//! | marker          | flag            | effect                                                   |
//! |-----------------|-----------------|----------------------------------------------------------|
//! | `[[pace:MS]]`   | `--pace-ms MS`  | sleep MS between streamed events                         |
//! | `[[split:N]]`   | `--split N`     | write the SSE body N bytes at a time (splits UTF-8 chars) |
//! | `[[words:N]]`   |                 | reply with N words                                       |
//! | `[[fail:CODE]]` |                 | answer HTTP CODE with an OpenAI-style error              |
//! | `[[cut:N]]`     |                 | drop the connection after N content deltas               |
//! | `[[stall:N]]`   |                 | go silent after N content deltas (0: before any byte)    |
//! | `[[longline:N]]`|                 | send one SSE line of N bytes after the first chunk        |
//! | `[[cite:1,3]]`  |                 | cite these source numbers (default: `[1]` when given any)  |
//! | `[[usage:N]]`   |                 | report N for every usage figure (a faulty upstream)       |
//! | `[[suggest:N]]` |                 | offer N follow-up questions (default 2; 9: malformed)     |
//!
//! Given numbered sources (a system prompt with a `Sources:` section of `[n] title: text`
//! lines), the reply cites source `[1]` — the best-ranked passage — by number and title.
//! Asked for follow-up questions (a system prompt that mentions `<suggestions>`), the reply
//! ends with `<suggestions>["…", "…"]</suggestions>`, as a real model asked to would write it.
//! Offered `tools` (and not `tool_choice: "none"`), a question is answered with a call of the
//! first tool (or the one `tool_choice` names), its string arguments filled with the question's
//! last word; once the conversation ends with the tool's result, the reply quotes it. With
//! `response_format: {type: "json_object"}` the reply is a JSON object.
//! `--api-key K` makes it require `Authorization: Bearer K`. `max_tokens` in a request caps the
//! reply at that many pieces, which then ends with `finish_reason: "length"`.
//!
//! It notices when a client closes a streamed reply's connection (between pieces it checks
//! the socket, every 10 ms while pacing) and stops writing. `GET /stats` reports what it saw,
//! so tests can check what reached the model: `{"completions": N, "closedByClient": N,
//! "lastClosedAtMs": ms|null, "lastRequest": <body>|null,
//! "byQuestion": {text: {"count": n, "lastRequest": <body>}}}`.

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What the server has seen, for `GET /stats`.
#[derive(Default)]
struct Stats {
    completions: u64,
    closed_by_client: u64,
    last_closed_at_ms: Option<u64>,
    last_request: Option<Value>,
    /// Per last user message: how many completions, and the last request body — so a test
    /// can check the calls for its own question.
    by_question: Vec<(String, u64, Value)>,
}

static STATS: Mutex<Stats> = Mutex::new(Stats {
    completions: 0,
    closed_by_client: 0,
    last_closed_at_ms: None,
    last_request: None,
    by_question: Vec::new(),
});

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn stats_json() -> Value {
    let s = STATS.lock().unwrap_or_else(|e| e.into_inner());
    json!({
        "completions": s.completions,
        "closedByClient": s.closed_by_client,
        "lastClosedAtMs": s.last_closed_at_ms,
        "lastRequest": s.last_request,
        "byQuestion": s.by_question.iter()
            .map(|(q, n, last)| (q.clone(), json!({ "count": n, "lastRequest": last })))
            .collect::<serde_json::Map<String, Value>>(),
    })
}

/// True once the client has closed its side: a non-blocking peek reads end-of-stream.
fn client_gone(stream: &TcpStream) -> bool {
    if stream.set_nonblocking(true).is_err() {
        return false;
    }
    let mut byte = [0u8; 1];
    let gone = match stream.peek(&mut byte) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
    };
    let _ = stream.set_nonblocking(false);
    gone
}

/// Sleeps `pace`, checking every 10 ms whether the client left; true if it did.
fn pace_or_gone(stream: &TcpStream, pace: Duration) -> bool {
    let until = std::time::Instant::now() + pace;
    loop {
        if client_gone(stream) {
            let mut s = STATS.lock().unwrap_or_else(|e| e.into_inner());
            s.closed_by_client += 1;
            s.last_closed_at_ms = Some(unix_ms());
            return true;
        }
        let left = until.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return false;
        }
        std::thread::sleep(left.min(Duration::from_millis(10)));
    }
}

#[derive(Clone, Default)]
struct Config {
    pace_ms: u64,
    split: usize,
    api_key: Option<String>,
}

fn main() {
    let mut host = "127.0.0.1".to_owned();
    let mut port = 8788u16;
    let mut config = Config::default();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || {
            args.next()
                .unwrap_or_else(|| usage(&format!("{flag} needs a value")))
        };
        match flag.as_str() {
            "--host" => host = value(),
            "--port" => port = value().parse().unwrap_or_else(|_| usage("bad --port")),
            "--pace-ms" => {
                config.pace_ms = value().parse().unwrap_or_else(|_| usage("bad --pace-ms"))
            }
            "--split" => config.split = value().parse().unwrap_or_else(|_| usage("bad --split")),
            "--api-key" => config.api_key = Some(value()),
            _ => usage(&format!("unknown flag {flag}")),
        }
    }
    let listener =
        TcpListener::bind((host.as_str(), port)).unwrap_or_else(|e| usage(&format!("bind: {e}")));
    let addr = listener.local_addr().expect("local addr");
    // The first line on stdout is how test harnesses learn the port (with --port 0).
    println!("model-server listening on http://{addr}");
    std::io::stdout().flush().ok();
    for stream in listener.incoming().flatten() {
        let config = config.clone();
        std::thread::spawn(move || {
            let _ = serve(stream, &config);
        });
    }
}

fn usage(msg: &str) -> ! {
    eprintln!("model-server: {msg}\nusage: model-server [--host H] [--port P] [--pace-ms MS] [--split N] [--api-key K]");
    std::process::exit(2)
}

struct HttpRequest {
    method: String,
    path: String,
    authorization: Option<String>,
    body: Vec<u8>,
}

fn read_request(stream: &TcpStream) -> std::io::Result<HttpRequest> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_owned();
    let path = parts.next().unwrap_or_default().to_owned();
    let (mut length, mut authorization) = (0usize, None);
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header == "\r\n" || header == "\n" {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            let value = value.trim().to_owned();
            match name.trim().to_ascii_lowercase().as_str() {
                "content-length" => length = value.parse().unwrap_or(0),
                "authorization" => authorization = Some(value),
                _ => {}
            }
        }
    }
    let mut body = vec![0; length.min(8 << 20)];
    reader.read_exact(&mut body)?;
    Ok(HttpRequest {
        method,
        path,
        authorization,
        body,
    })
}

fn respond(stream: &mut TcpStream, status: u16, body: &Value) -> std::io::Result<()> {
    let text = body.to_string();
    write!(
        stream,
        "HTTP/1.1 {status} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
        reason(status),
        text.len()
    )
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Error",
    }
}

fn error_body(message: &str, kind: &str) -> Value {
    json!({ "error": { "message": message, "type": kind, "code": null } })
}

fn serve(mut stream: TcpStream, config: &Config) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let req = read_request(&stream)?;
    match (req.method.as_str(), req.path.as_str()) {
        ("GET", "/health") => respond(&mut stream, 200, &json!({ "status": "ok" })),
        ("GET", "/stats") => respond(&mut stream, 200, &stats_json()),
        ("GET", "/v1/models") => respond(
            &mut stream,
            200,
            &json!({ "object": "list", "data": [{ "id": "twin-local-1", "object": "model", "owned_by": "twinexpert" }] }),
        ),
        ("POST", "/v1/chat/completions") => {
            if let Some(key) = &config.api_key {
                if req.authorization.as_deref() != Some(&format!("Bearer {key}")) {
                    return respond(
                        &mut stream,
                        401,
                        &error_body("Incorrect API key provided", "invalid_request_error"),
                    );
                }
            }
            match serde_json::from_slice::<Value>(&req.body) {
                Ok(body) => {
                    {
                        let mut s = STATS.lock().unwrap_or_else(|e| e.into_inner());
                        s.completions += 1;
                        s.last_request = Some(body.clone());
                        let question = body["messages"]
                            .as_array()
                            .and_then(|m| m.iter().rev().find(|m| m["role"] == "user"))
                            .and_then(|m| m["content"].as_str())
                            .unwrap_or_default()
                            .to_owned();
                        match s.by_question.iter_mut().find(|(q, _, _)| *q == question) {
                            Some((_, n, last)) => {
                                *n += 1;
                                *last = body.clone();
                            }
                            None => s.by_question.push((question, 1, body.clone())),
                        }
                    }
                    chat(&mut stream, config, &body)
                }
                Err(_) => respond(
                    &mut stream,
                    400,
                    &error_body("We could not parse the JSON body", "invalid_request_error"),
                ),
            }
        }
        _ => respond(
            &mut stream,
            404,
            &error_body("Unknown endpoint", "invalid_request_error"),
        ),
    }
}

/// The call a request offering `tools` gets for a question: `(id, name, arguments)`.
fn tool_call(body: &Value, last: &Value, question: &str) -> Option<(String, String, String)> {
    let tools = body["tools"].as_array().filter(|t| !t.is_empty())?;
    if last["role"] != "user" || body["tool_choice"] == "none" {
        return None;
    }
    let chosen = body["tool_choice"]["function"]["name"].as_str();
    let tool = tools
        .iter()
        .find(|t| chosen.is_none_or(|name| t["function"]["name"] == name))?;
    let word: String = strip_knobs(question)
        .split_whitespace()
        .last()
        .unwrap_or("")
        .trim_matches(|c: char| !c.is_alphanumeric())
        .to_owned();
    let mut arguments = serde_json::Map::new();
    if let Some(properties) = tool["function"]["parameters"]["properties"].as_object() {
        for (name, schema) in properties {
            let value = match schema["type"].as_str() {
                Some("integer" | "number") => json!(1),
                Some("boolean") => json!(true),
                _ => json!(word),
            };
            arguments.insert(name.clone(), value);
        }
    }
    Some((
        format!("call_{:012x}", fnv(question.as_bytes()) & 0xffff_ffff_ffff),
        tool["function"]["name"]
            .as_str()
            .unwrap_or("tool")
            .to_owned(),
        Value::Object(arguments).to_string(),
    ))
}

/// The `<suggestions>` block a model asked for follow-up questions ends with: `n` of them
/// (9: a malformed block, as a careless model might write).
fn suggestions(question: &str, n: u64) -> String {
    if n == 0 {
        return String::new();
    }
    if n == 9 {
        return "\n\n<suggestions>\n- What next?\n- Why?".into();
    }
    let vi = is_vietnamese(question);
    let bank: &[&str] = if vi {
        &[
            "Bạn có thể cho một ví dụ không?",
            "Tôi nên bắt đầu từ đâu?",
            "Sai lầm nào hay gặp nhất?",
            "Mất bao lâu để thấy kết quả?",
            "Có tài liệu nào nên đọc không?",
        ]
    } else {
        &[
            "Can you give an example?",
            "Where should I start?",
            "What is the most common mistake?",
            "How long until I see results?",
            "What should I read next?",
        ]
    };
    let picked: Vec<&str> = bank.iter().copied().cycle().take(n as usize).collect();
    format!("\n\n<suggestions>{}</suggestions>", json!(picked))
}

/// A knob from `[[name:value]]` in the text.
fn knob(text: &str, name: &str) -> Option<u64> {
    let start = text.find(&format!("[[{name}:"))? + name.len() + 3;
    let end = start + text[start..].find("]]")?;
    text[start..end].trim().parse().ok()
}

/// `[[cite:1,3]]`: the source numbers to cite instead of `[1]`.
fn cite_knob(text: &str) -> Option<Vec<u64>> {
    let start = text.find("[[cite:")? + 7;
    let end = start + text[start..].find("]]")?;
    Some(
        text[start..end]
            .split(',')
            .filter_map(|n| n.trim().parse().ok())
            .collect(),
    )
}

/// The `[n] title: text` sources of a system prompt, as `(n, title)`.
fn sources(system: &str) -> Vec<(u64, String)> {
    let Some(i) = system.rfind("\n\nSources:\n") else {
        return Vec::new();
    };
    system[i..]
        .lines()
        .filter_map(|line| {
            let rest = line.strip_prefix('[')?;
            let (n, rest) = rest.split_once("] ")?;
            let (title, _) = rest.split_once(": ")?;
            Some((n.parse().ok()?, title.to_owned()))
        })
        .collect()
}

/// The sentence that cites `cite` (numbers) among `sources`.
fn citing(sources: &[(u64, String)], cite: &[u64], vietnamese: bool) -> String {
    let refs: Vec<String> = cite
        .iter()
        .map(|n| {
            let title = sources.iter().find(|(m, _)| m == n).map_or("?", |(_, t)| t);
            format!("“{title}” [{n}]")
        })
        .collect();
    if refs.is_empty() {
        return String::new();
    }
    if vietnamese {
        format!(" Theo tài liệu {}.", refs.join(", "))
    } else {
        format!(" According to {}.", refs.join(", "))
    }
}

fn strip_knobs(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("[[") {
        out.push_str(&rest[..i]);
        match rest[i..].find("]]") {
            Some(j) => rest = &rest[i + j + 2..],
            None => {
                rest = &rest[i..];
                break;
            }
        }
    }
    out.push_str(rest);
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A reply worked out from a request, before it is written.
struct Answer {
    question: String,
    pieces: Vec<String>,
    /// A tool call instead of text: `(id, name, arguments)`.
    tool_call: Option<(String, String, String)>,
    finish: &'static str,
    usage: Value,
    id: String,
    model: String,
    created: u64,
}

/// The deterministic reply to a Chat Completions body: `Err((status, error body))` when the
/// request has no user message or asks for a failure (`[[fail:CODE]]`).
fn answer(body: &Value) -> Result<Answer, (u16, Value)> {
    let messages = body["messages"].as_array().cloned().unwrap_or_default();
    let Some(question) = messages
        .iter()
        .rev()
        .find(|m| m["role"] == "user")
        .and_then(|m| m["content"].as_str())
    else {
        let e = error_body(
            "messages must include a user message",
            "invalid_request_error",
        );
        return Err((400, e));
    };
    if let Some(code) = knob(question, "fail") {
        let code = code.clamp(400, 599) as u16;
        return Err((code, error_body("Injected failure", "server_error")));
    }
    let system = messages
        .iter()
        .find(|m| m["role"] == "system")
        .and_then(|m| m["content"].as_str())
        .unwrap_or("");
    let words = knob(question, "words").map(|n| n as usize);
    let last = messages.last().cloned().unwrap_or_default();
    let tool_call = tool_call(body, &last, question);
    let mut reply = if tool_call.is_some() {
        String::new()
    } else if last["role"] == "tool" {
        let result = last["content"].as_str().unwrap_or("");
        if is_vietnamese(question) {
            format!("Theo kết quả tra cứu: {result}")
        } else {
            format!("According to the tool: {result}")
        }
    } else {
        compose_reply(system, &strip_knobs(question), words)
    };
    let given = sources(system);
    if !given.is_empty() && words.is_none() && tool_call.is_none() {
        let cite = cite_knob(question).unwrap_or_else(|| vec![1]);
        reply.push_str(&citing(&given, &cite, is_vietnamese(question)));
    }
    if body["response_format"]["type"] == "json_object" && tool_call.is_none() {
        reply = json!({ "answer": reply }).to_string();
    }
    if system.contains("<suggestions>") && tool_call.is_none() {
        reply.push_str(&suggestions(
            question,
            knob(question, "suggest").unwrap_or(2),
        ));
    }
    let mut pieces = match &tool_call {
        // The arguments, streamed in pieces as a model streams them.
        Some((_, _, arguments)) => pieces(arguments),
        None => pieces(&reply),
    };
    // `max_tokens` caps the reply (a piece counts as a token here) and ends it with "length".
    let finish = match body["max_tokens"].as_u64().map(|n| n as usize) {
        Some(n) if n < pieces.len() => {
            pieces.truncate(n);
            "length"
        }
        _ if tool_call.is_some() => "tool_calls",
        _ => "stop",
    };
    let prompt_tokens: usize = messages
        .iter()
        .filter_map(|m| m["content"].as_str())
        .map(approx_tokens)
        .sum();
    let usage = match knob(question, "usage") {
        Some(n) => json!({ "prompt_tokens": n, "completion_tokens": n, "total_tokens": n }),
        None => json!({
            "prompt_tokens": prompt_tokens,
            "completion_tokens": pieces.len(),
            "total_tokens": prompt_tokens + pieces.len(),
        }),
    };
    Ok(Answer {
        usage,
        id: format!("chatcmpl-{:016x}", fnv(question.as_bytes())),
        model: body["model"].as_str().unwrap_or("twin-local-1").to_owned(),
        created: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
        question: question.to_owned(),
        pieces,
        tool_call,
        finish,
    })
}

fn chat(stream: &mut TcpStream, config: &Config, body: &Value) -> std::io::Result<()> {
    let a = match answer(body) {
        Ok(a) => a,
        Err((status, error)) => return respond(stream, status, &error),
    };
    if body["stream"] != true {
        let reply: String = a.pieces.concat();
        let message = match &a.tool_call {
            Some((id, name, _)) => json!({ "role": "assistant", "content": null, "tool_calls": [
                { "id": id, "type": "function", "function": { "name": name, "arguments": reply } }] }),
            None => json!({ "role": "assistant", "content": reply }),
        };
        return respond(
            stream,
            200,
            &json!({
                "id": a.id, "object": "chat.completion", "created": a.created, "model": a.model,
                "choices": [{ "index": 0, "message": message, "finish_reason": a.finish }],
                "usage": a.usage,
            }),
        );
    }
    let include_usage = body["stream_options"]["include_usage"] == true;
    stream_answer(stream, config, &a, include_usage)
}

/// Writes `a` as an SSE stream, paced and broken as the knobs say.
fn stream_answer(
    stream: &mut TcpStream,
    config: &Config,
    a: &Answer,
    include_usage: bool,
) -> std::io::Result<()> {
    let question = &a.question;
    let pace = Duration::from_millis(knob(question, "pace").unwrap_or(config.pace_ms));
    let split = knob(question, "split").map_or(config.split, |n| n as usize);
    let cut = knob(question, "cut").map(|n| n as usize);
    let stall = knob(question, "stall").map(|n| n as usize);
    if stall == Some(0) {
        std::thread::sleep(Duration::from_secs(300));
        return Ok(());
    }
    write!(
        stream,
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )?;
    let chunk = |delta: Value, finish: Value| {
        json!({ "id": a.id, "object": "chat.completion.chunk", "created": a.created, "model": a.model,
                "choices": [{ "index": 0, "delta": delta, "finish_reason": finish }] })
    };
    let mut out = SseWriter { stream, split };
    let first = match &a.tool_call {
        Some((id, name, _)) => json!({ "role": "assistant", "content": null, "tool_calls": [
            { "index": 0, "id": id, "type": "function", "function": { "name": name, "arguments": "" } }] }),
        None => json!({ "role": "assistant", "content": "" }),
    };
    out.event(&chunk(first, Value::Null).to_string())?;
    if let Some(n) = knob(question, "longline") {
        out.event(&"x".repeat(n as usize))?;
    }
    for (n, piece) in a.pieces.iter().enumerate() {
        if cut == Some(n) {
            return stream_shutdown(out.stream);
        }
        if stall == Some(n) {
            std::thread::sleep(Duration::from_secs(300));
            return Ok(());
        }
        if pace_or_gone(out.stream, pace) {
            return Ok(());
        }
        let delta = match a.tool_call {
            Some(_) => {
                json!({ "tool_calls": [{ "index": 0, "function": { "arguments": piece } }] })
            }
            None => json!({ "content": piece }),
        };
        out.event(&chunk(delta, Value::Null).to_string())?;
    }
    out.event(&chunk(json!({}), json!(a.finish)).to_string())?;
    if include_usage {
        let usage_chunk = json!({ "id": a.id, "object": "chat.completion.chunk", "created": a.created,
                                  "model": a.model, "choices": [], "usage": a.usage });
        out.event(&usage_chunk.to_string())?;
    }
    out.event("[DONE]")?;
    out.stream.write_all(b"0\r\n\r\n")?;
    out.stream.flush()
}

fn stream_shutdown(stream: &mut TcpStream) -> std::io::Result<()> {
    stream.flush()?;
    stream.shutdown(std::net::Shutdown::Both)
}

/// Writes SSE events as HTTP chunks, `split` bytes at a time when set, so a reader sees
/// events and UTF-8 characters cut at arbitrary byte boundaries.
struct SseWriter<'a> {
    stream: &'a mut TcpStream,
    split: usize,
}

impl SseWriter<'_> {
    fn event(&mut self, data: &str) -> std::io::Result<()> {
        let bytes = format!("data: {data}\n\n").into_bytes();
        let size = if self.split == 0 {
            bytes.len()
        } else {
            self.split
        };
        for part in bytes.chunks(size) {
            write!(self.stream, "{:x}\r\n", part.len())?;
            self.stream.write_all(part)?;
            self.stream.write_all(b"\r\n")?;
            self.stream.flush()?;
        }
        Ok(())
    }
}

fn approx_tokens(text: &str) -> usize {
    text.chars().count().div_ceil(4)
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Vietnamese is recognised by its own letters (ă â đ ê ô ơ ư and the tone-marked
/// vowels), which English does not use, or by a few common words.
fn is_vietnamese(text: &str) -> bool {
    // Short greetings ("Xin chào!") may carry none of the letters below.
    const WORDS: &[&str] = &[
        "xin", "chào", "bạn", "tôi", "không", "của", "và", "là", "gì", "cảm", "ơn",
    ];
    let letters = text.chars().any(|c| {
        matches!(
            c,
            'ă' | 'Ă' | 'â' | 'Â' | 'đ' | 'Đ' | 'ê' | 'Ê' | 'ô' | 'Ô' | 'ơ' | 'Ơ' | 'ư' | 'Ư'
        ) || ('\u{1EA0}'..='\u{1EF9}').contains(&c)
    });
    letters
        || text
            .split(|c: char| !c.is_alphanumeric())
            .any(|w| WORDS.contains(&w.to_lowercase().as_str()))
}

/// The persona's name: what follows "You are" / "Bạn là" up to the first comma or period.
fn persona_name(system: &str) -> String {
    for marker in ["You are ", "you are ", "Bạn là ", "bạn là "] {
        if let Some(i) = system.find(marker) {
            let rest = &system[i + marker.len()..];
            let end = rest.find([',', '.', '\n', ';']).unwrap_or(rest.len());
            let name = rest[..end].trim();
            if !name.is_empty() {
                return name.to_owned();
            }
        }
    }
    "Your twin".to_owned()
}

const EN: &[&str] = &[
    "Start from what you can measure today, then change one thing at a time.",
    "In my experience the simplest plan that you will actually follow beats the perfect one.",
    "Write down the trade-offs before you decide; it makes the choice honest.",
    "Look at the last three times this went wrong and you will see the pattern.",
    "Ask who depends on the answer and what they need from it.",
    "Small, steady steps compound faster than occasional heroic efforts.",
    "Check the assumption that everyone agrees on; that is usually where the risk hides.",
    "Keep a short feedback loop so you learn within days, not months.",
];

const VI: &[&str] = &[
    "Hãy bắt đầu từ những gì bạn đo được hôm nay, rồi thay đổi từng việc một.",
    "Theo kinh nghiệm của tôi, kế hoạch đơn giản mà bạn thực sự làm theo tốt hơn kế hoạch hoàn hảo.",
    "Hãy viết ra những đánh đổi trước khi quyết định; điều đó giúp lựa chọn trung thực hơn.",
    "Nhìn lại ba lần gần nhất mọi việc không ổn, bạn sẽ thấy quy luật.",
    "Hãy hỏi ai phụ thuộc vào câu trả lời và họ cần gì từ nó.",
    "Những bước nhỏ và đều đặn tích lũy nhanh hơn những nỗ lực lớn thỉnh thoảng.",
    "Kiểm tra giả định mà ai cũng đồng ý; rủi ro thường ẩn ở đó.",
    "Giữ vòng phản hồi ngắn để bạn học được sau vài ngày, không phải vài tháng.",
];

fn compose_reply(system: &str, question: &str, words: Option<usize>) -> String {
    let name = persona_name(system);
    let topic: String = question.chars().take(60).collect();
    let vietnamese = is_vietnamese(question);
    let h = fnv(question.as_bytes()) as usize;
    let bank = if vietnamese { VI } else { EN };
    let body: Vec<&str> = (0..3).map(|i| bank[(h + i * 3) % bank.len()]).collect();
    let text = if vietnamese {
        format!(
            "Chào bạn, tôi là {name}. Bạn hỏi: “{topic}”. {} Chúc bạn thành công! 🙂",
            body.join(" ")
        )
    } else {
        format!(
            "Hi, {name} here. You asked: “{topic}”. {} Good luck! 🙂",
            body.join(" ")
        )
    };
    match words {
        Some(n) => {
            let all: Vec<&str> = text.split_whitespace().collect();
            (0..n.max(1))
                .map(|i| all[i % all.len()])
                .collect::<Vec<_>>()
                .join(" ")
        }
        None => text,
    }
}

/// Splits a reply into streamed pieces: each word with the space before it, so that the
/// concatenation of pieces is exactly the reply.
fn pieces(reply: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (i, word) in reply.split(' ').enumerate() {
        out.push(if i == 0 {
            word.to_owned()
        } else {
            format!(" {word}")
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_in_the_language_of_the_question() {
        let sys = "You are Dr. Minh Tran, a cardiologist.";
        let vi = compose_reply(sys, "Tôi nên ăn gì để tốt cho tim?", None);
        assert!(vi.starts_with("Chào bạn, tôi là Dr"));
        assert!(is_vietnamese(&vi));
        let en = compose_reply(sys, "What should I eat for a healthy heart?", None);
        assert!(en.starts_with("Hi, Dr"));
        assert!(!is_vietnamese(&en));
        assert!(is_vietnamese("Xin chào!"));
        assert!(!is_vietnamese("A café in Paris?"));
    }

    #[test]
    fn deterministic_and_pieces_concatenate_exactly() {
        let a = compose_reply("You are Lan, a coach.", "How do I start?", None);
        assert_eq!(
            a,
            compose_reply("You are Lan, a coach.", "How do I start?", None)
        );
        assert_eq!(pieces(&a).concat(), a);
        assert!(a.contains("Lan"));
    }

    #[test]
    fn knobs_are_read_and_stripped() {
        let q = "hello [[pace:20]] world [[cut:3]]";
        assert_eq!(knob(q, "pace"), Some(20));
        assert_eq!(knob(q, "cut"), Some(3));
        assert_eq!(knob(q, "stall"), None);
        assert_eq!(strip_knobs(q), "hello world");
        assert_eq!(
            compose_reply("", "x [[words:5]]", Some(5))
                .split(' ')
                .count(),
            5
        );
    }

    #[test]
    fn sources_are_read_and_cited_by_number_and_title() {
        let system =
            "You are Hà.\n\nSources:\n[1] Bữa sáng: Trứng.\n[2] Nước: Uống: nhiều.\n\nAnswer…";
        assert_eq!(
            sources(system),
            vec![(1, "Bữa sáng".to_owned()), (2, "Nước".to_owned())]
        );
        assert!(sources("You are Hà.").is_empty());
        assert_eq!(cite_knob("x [[cite:2, 9]] y"), Some(vec![2, 9]));
        assert_eq!(
            citing(&sources(system), &[2, 9], false),
            " According to “Nước” [2], “?” [9]."
        );
    }

    #[test]
    fn persona_names() {
        assert_eq!(
            persona_name("Bạn là Nguyễn Thu Hà, chuyên gia."),
            "Nguyễn Thu Hà"
        );
        assert_eq!(persona_name("no persona"), "Your twin");
    }
}
