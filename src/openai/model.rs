//! The OpenAI-compatible surface (docs/openai.md): a Chat Completions request read the way
//! OpenAI's SDKs send it, and the response, chunk, model and error shapes their parsers expect.

use serde_json::{json, Map, Value};

use crate::http::error::ApiError;
use crate::knowledge::model::Citation;
use crate::llm::chat::{self, Reply, Usage};
use crate::spend::model as spend;

/// A caller's Chat Completions request, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatRequest {
    /// The twin's id.
    pub model: String,
    pub messages: Vec<ChatMessage>,
    pub stream: bool,
    pub include_usage: bool,
    /// Asked for; the caller's cap is applied to it.
    pub max_tokens: Option<u64>,
    /// Passed through, checked: `temperature`, `top_p`, `stop`, and the tool-calling fields
    /// (`tools`, `tool_choice`, `parallel_tool_calls`, `response_format`).
    pub passed: Map<String, Value>,
    /// The end user (`user`).
    pub user: Option<String>,
}

/// One message of the conversation the caller sends.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatMessage {
    /// `system`, `user`, `assistant` or `tool` (`developer` is read as `system`).
    pub role: String,
    pub text: String,
    /// What the upstream needs besides the text: an assistant's `tool_calls`, a tool result's
    /// `tool_call_id`.
    pub extra: Map<String, Value>,
}

fn bad(param: &str, reason: &str) -> ApiError {
    ApiError::field(param, reason)
}

/// Text of a message's `content`: a string, or an array of `{type: "text", text}` parts.
fn content_text(i: usize, content: &Value) -> Result<String, ApiError> {
    let param = format!("messages[{i}].content");
    match content {
        Value::String(s) => Ok(s.clone()),
        Value::Array(parts) => parts
            .iter()
            .map(|p| match (p["type"].as_str(), p["text"].as_str()) {
                (Some("text"), Some(t)) => Ok(t),
                _ => Err(bad(
                    &param,
                    "only text parts ({\"type\": \"text\", \"text\": …}) are supported",
                )),
            })
            .collect::<Result<Vec<&str>, _>>()
            .map(|t| t.concat()),
        _ => Err(bad(&param, "must be a string or an array of text parts")),
    }
}

/// A tool's or a called function's name, as OpenAI allows it.
fn is_function_name(v: &Value) -> bool {
    v.as_str().is_some_and(|n| {
        (1..=64).contains(&n.len())
            && n.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    })
}

/// An id the caller echoes back (a tool call's): short, printable.
fn is_call_id(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|id| (1..=100).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_graphic()))
}

/// An assistant message's `tool_calls`, as the model returned them.
fn tool_calls(i: usize, calls: &Value) -> Result<Value, ApiError> {
    let param = format!("messages[{i}].tool_calls");
    let ok = calls.as_array().is_some_and(|a| {
        !a.is_empty()
            && a.len() <= 128
            && a.iter().all(|c| {
                is_call_id(&c["id"])
                    && c["type"] == "function"
                    && is_function_name(&c["function"]["name"])
                    && c["function"]["arguments"].is_string()
            })
    });
    if !ok {
        return Err(bad(
            &param,
            "must be the tool calls the model returned: [{id, type: \"function\", function: {name, arguments}}]",
        ));
    }
    Ok(calls.clone())
}

/// `messages`: at least one from the user; a `tool` message answers a call by its id.
fn messages(body: &Map<String, Value>) -> Result<Vec<ChatMessage>, ApiError> {
    let list = body
        .get("messages")
        .and_then(Value::as_array)
        .filter(|m| !m.is_empty() && m.len() <= 500)
        .ok_or_else(|| bad("messages", "must be a non-empty array of messages"))?;
    let mut messages = Vec::with_capacity(list.len());
    let mut chars = 0;
    for (i, m) in list.iter().enumerate() {
        let role = match m["role"].as_str() {
            Some(r @ ("system" | "user" | "assistant" | "tool")) => r,
            Some("developer") => "system",
            _ => {
                return Err(bad(
                    &format!("messages[{i}].role"),
                    "must be system, user, assistant or tool",
                ))
            }
        };
        let mut extra = Map::new();
        let calls = m.get("tool_calls").filter(|c| !c.is_null());
        match (role, calls) {
            ("assistant", Some(calls)) => {
                extra.insert("tool_calls".into(), tool_calls(i, calls)?);
            }
            (_, Some(_)) => {
                return Err(bad(
                    &format!("messages[{i}].tool_calls"),
                    "belong to assistant messages",
                ))
            }
            _ => {}
        }
        if role == "tool" {
            let id = &m["tool_call_id"];
            if !is_call_id(id) {
                return Err(bad(
                    &format!("messages[{i}].tool_call_id"),
                    "is required: the id of the tool call this message answers",
                ));
            }
            extra.insert("tool_call_id".into(), id.clone());
        }
        // An assistant message that only calls tools has no content.
        let text = match &m["content"] {
            Value::Null if extra.contains_key("tool_calls") => String::new(),
            content => content_text(i, content)?,
        };
        chars += text.chars().count();
        messages.push(ChatMessage {
            role: role.to_owned(),
            text,
            extra,
        });
    }
    if chars > 200_000 {
        return Err(bad("messages", "are longer than 200 000 characters in all"));
    }
    if !messages.iter().any(|m| m.role == "user") {
        return Err(bad("messages", "must include a user message"));
    }
    Ok(messages)
}

/// `max_completion_tokens`, else `max_tokens`.
fn max_tokens(body: &Map<String, Value>) -> Result<Option<u64>, ApiError> {
    let uint = |name: &str| -> Result<Option<u64>, ApiError> {
        match body.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_u64()
                .filter(|n| *n >= 1)
                .map(Some)
                .ok_or_else(|| bad(name, "must be a positive integer")),
        }
    };
    Ok(uint("max_completion_tokens")?.or(uint("max_tokens")?))
}

/// `temperature`, `top_p` and `stop`, and the tool-calling fields, checked, to pass through.
fn passed(body: &Map<String, Value>) -> Result<Map<String, Value>, ApiError> {
    let mut passed = Map::new();
    for name in [
        "temperature",
        "top_p",
        "stop",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "response_format",
    ] {
        if let Some(v) = body.get(name).filter(|v| !v.is_null()) {
            let (ok, rule) = match name {
                "stop" => (
                    v.is_string()
                        || v.as_array()
                            .is_some_and(|a| a.len() <= 4 && a.iter().all(Value::is_string)),
                    "must be a string or at most 4 strings",
                ),
                "tools" => (
                    v.as_array().is_some_and(|a| {
                        a.len() <= 128
                            && a.iter().all(|t| {
                                let f = &t["function"];
                                t["type"] == "function"
                                    && is_function_name(&f["name"])
                                    && (f["description"].is_null() || f["description"].is_string())
                                    && (f["parameters"].is_null() || f["parameters"].is_object())
                            })
                    }),
                    "must be at most 128 tools of {type: \"function\", function: {name, description?, parameters?}}",
                ),
                "tool_choice" => (
                    matches!(v.as_str(), Some("none" | "auto" | "required"))
                        || (v["type"] == "function" && is_function_name(&v["function"]["name"])),
                    "must be none, auto, required or {type: \"function\", function: {name}}",
                ),
                "parallel_tool_calls" => (v.is_boolean(), "must be a boolean"),
                "response_format" => (
                    match v["type"].as_str() {
                        Some("text" | "json_object") => true,
                        Some("json_schema") => v["json_schema"].is_object(),
                        _ => false,
                    },
                    "must be {type: text | json_object} or {type: json_schema, json_schema: {…}}",
                ),
                _ => (
                    v.as_f64().is_some_and(|x| (0.0..=2.0).contains(&x)),
                    "is out of range",
                ),
            };
            if !ok {
                return Err(bad(name, rule));
            }
            passed.insert(name.to_owned(), v.clone());
        }
    }
    Ok(passed)
}

impl ChatRequest {
    pub fn parse(body: &Map<String, Value>) -> Result<ChatRequest, ApiError> {
        let model = body
            .get("model")
            .and_then(Value::as_str)
            .filter(|m| !m.is_empty() && m.len() <= 100)
            .ok_or_else(|| bad("model", "is required: the id of a twin"))?
            .to_owned();
        let messages = messages(body)?;
        let max_tokens = max_tokens(body)?;
        let user = match body.get("user") {
            None | Some(Value::Null) => None,
            Some(Value::String(u)) if spend::is_end_user_id(u) => Some(u.clone()),
            Some(_) => return Err(bad("user", spend::END_USER_RULE)),
        };
        Ok(ChatRequest {
            model,
            messages,
            stream: body.get("stream").and_then(Value::as_bool).unwrap_or(false),
            include_usage: body
                .get("stream_options")
                .is_some_and(|o| o["include_usage"] == true),
            max_tokens,
            passed: passed(body)?,
            user,
        })
    }

    /// The text retrieval searches for: the last user message.
    pub fn last_user_text(&self) -> &str {
        self.messages
            .iter()
            .rev()
            .find(|m| m.role == "user")
            .map_or("", |m| m.text.as_str())
    }

    /// The upstream request: the twin's persona first, then the caller's messages; the reply
    /// capped at `cap` tokens whatever the caller asked.
    pub fn upstream_body(
        &self,
        upstream_model: &str,
        persona: &str,
        cap: u64,
        user_hash: &str,
    ) -> Value {
        let limits = chat::Limits {
            max_tokens: self.max_tokens.map_or(cap, |n| n.min(cap)),
            user: user_hash,
        };
        let turns = self
            .messages
            .iter()
            .map(|m| (m.role.as_str(), m.text.as_str()));
        let mut body = chat::request_body(upstream_model, persona, turns, &limits);
        // The persona is message 0; the caller's follow, each with what it carries besides
        // its text (a tool-calling assistant's content is null, as OpenAI sends it).
        for (i, m) in self.messages.iter().enumerate() {
            let sent = &mut body["messages"][i + 1];
            for (k, v) in &m.extra {
                sent[k] = v.clone();
            }
            if m.text.is_empty() && m.extra.contains_key("tool_calls") {
                sent["content"] = Value::Null;
            }
        }
        for (k, v) in &self.passed {
            body[k] = v.clone();
        }
        body
    }
}

/// Why a reply ended, as OpenAI names it.
pub fn finish_reason(reply: &Reply) -> &str {
    match reply.finish_reason.as_deref() {
        Some(r @ ("length" | "tool_calls" | "content_filter")) => r,
        _ if !reply.tool_calls.is_empty() => "tool_calls",
        _ => "stop",
    }
}

pub fn usage_json(u: Usage) -> Value {
    json!({ "prompt_tokens": u.prompt_tokens, "completion_tokens": u.completion_tokens, "total_tokens": u.total_tokens })
}

/// The non-streamed answer.
/// The whole answer; `twin_citations` are the knowledge sources the reply cites (our
/// extension: SDKs keep unknown fields).
pub fn completion(
    id: &str,
    created: i64,
    model: &str,
    reply: &Reply,
    usage: Usage,
    citations: &[Citation],
) -> Value {
    let mut message = json!({ "role": "assistant", "content": reply.content });
    if !reply.tool_calls.is_empty() {
        message["tool_calls"] = reply.tool_calls_json();
        if reply.content.is_empty() {
            message["content"] = Value::Null;
        }
    }
    json!({
        "id": id, "object": "chat.completion", "created": created, "model": model,
        "choices": [{ "index": 0, "message": message, "finish_reason": finish_reason(reply) }],
        "usage": usage_json(usage),
        "twin_citations": citations,
    })
}

/// The chunk that ends the choice: its `finish_reason` and the reply's `twin_citations`.
pub fn last_chunk(
    id: &str,
    created: i64,
    model: &str,
    reply: &Reply,
    citations: &[Citation],
) -> Value {
    let mut c = chunk(id, created, model, json!({}), Some(finish_reason(reply)));
    c["twin_citations"] = json!(citations);
    c
}

/// One streamed chunk with one choice.
pub fn chunk(id: &str, created: i64, model: &str, delta: Value, finish: Option<&str>) -> Value {
    json!({
        "id": id, "object": "chat.completion.chunk", "created": created, "model": model,
        "choices": [{ "index": 0, "delta": delta, "finish_reason": finish }],
    })
}

/// The extra chunk `stream_options.include_usage` asks for: no choices, the usage.
pub fn usage_chunk(id: &str, created: i64, model: &str, usage: Usage) -> Value {
    json!({
        "id": id, "object": "chat.completion.chunk", "created": created, "model": model,
        "choices": [], "usage": usage_json(usage),
    })
}

/// A `data:` line; the stream never has `event:` lines (openai-node would take them for
/// something other than chunks).
pub fn data_line(data: &str) -> String {
    format!("data: {data}\n\n")
}

pub const DONE: &str = "data: [DONE]\n\n";

pub fn model(id: &str, created: i64) -> Value {
    json!({ "id": id, "object": "model", "created": created, "owned_by": "twinexpert" })
}

/// OpenAI's error shape, with the same HTTP status: `type` from the status, `code` this API's
/// error code, `param` the first invalid field.
pub fn error_body(err: &ApiError) -> Value {
    let kind = match err.status() {
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        429 => "rate_limit_error",
        s if s >= 500 => "api_error",
        _ => "invalid_request_error",
    };
    let param = match err {
        ApiError::Validation(fields) => fields.keys().next().cloned(),
        _ => None,
    };
    json!({ "error": { "message": err.message(), "type": kind, "code": err.code(), "param": param } })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: Value) -> Result<ChatRequest, ApiError> {
        ChatRequest::parse(v.as_object().unwrap())
    }

    #[test]
    fn reads_what_the_sdks_send() {
        let r = parse(json!({
            "model": "twn_1", "stream": true, "stream_options": {"include_usage": true},
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": [{"type": "text", "text": "Xin "}, {"type": "text", "text": "chào"}]}
            ],
            "max_completion_tokens": 5000, "temperature": 0.2, "user": "u-1", "n": 3
        }))
        .unwrap();
        assert_eq!(
            (r.messages[1].role.as_str(), r.messages[1].text.as_str()),
            ("user", "Xin chào")
        );
        assert!(r.stream && r.include_usage);
        assert_eq!(r.user.as_deref(), Some("u-1"));
        let body = r.upstream_body("gpt", "You are Hà.", 1024, "hash");
        assert_eq!(body["max_tokens"], 1024, "capped");
        assert_eq!(body["messages"][0]["content"], "You are Hà.");
        assert_eq!(body["messages"][1]["role"], "system");
        assert_eq!(body["temperature"], 0.2);
        assert!(body.get("n").is_none(), "other fields are ignored");
        assert_eq!(body["user"], "hash");
    }

    #[test]
    fn refuses_what_it_cannot_honour_naming_the_param() {
        let param = |v: Value| match parse(v).unwrap_err() {
            ApiError::Validation(f) => f.keys().next().unwrap().clone(),
            e => panic!("{e:?}"),
        };
        let user = |c: Value| json!({"model": "t", "messages": [{"role": "user", "content": c}]});
        assert_eq!(
            param(json!({"messages": [{"role": "user", "content": "hi"}]})),
            "model"
        );
        assert_eq!(param(json!({"model": "t", "messages": []})), "messages");
        assert_eq!(
            param(user(json!([{"type": "image_url", "image_url": {}}]))),
            "messages[0].content"
        );
        assert_eq!(
            param(json!({"model": "t", "messages": [{"role": "function", "content": "x"}]})),
            "messages[0].role"
        );
        assert_eq!(
            param(json!({"model": "t", "messages": [{"role": "tool", "content": "x"}]})),
            "messages[0].tool_call_id"
        );
        assert_eq!(
            param(
                json!({"model": "t", "messages": [{"role": "user", "content": "x", "tool_calls": []}]})
            ),
            "messages[0].tool_calls"
        );
        let mut tools = user(json!("hi"));
        tools["tools"] = json!([{"type": "function", "function": {"name": "bad name"}}]);
        assert_eq!(param(tools.clone()), "tools");
        tools["tools"] = json!([{"type": "function", "function": {"name": "ok"}}]);
        tools["tool_choice"] = json!("sometimes");
        assert_eq!(param(tools.clone()), "tool_choice");
        tools["tool_choice"] = json!("auto");
        tools["response_format"] = json!({"type": "yaml"});
        assert_eq!(param(tools.clone()), "response_format");
        tools["response_format"] = json!({"type": "json_object"});
        tools["parallel_tool_calls"] = json!("yes");
        assert_eq!(param(tools), "parallel_tool_calls");
        let mut body = user(json!("hi"));
        body["max_tokens"] = json!(0);
        assert_eq!(param(body.clone()), "max_tokens");
        body["max_tokens"] = json!(10);
        body["temperature"] = json!(9);
        assert_eq!(param(body.clone()), "temperature");
        body["temperature"] = json!(1);
        body["user"] = json!("not ok!");
        assert_eq!(param(body), "user");
    }

    #[test]
    fn a_tool_call_round_trip_reaches_the_upstream_after_the_persona() {
        let tools = json!([{"type": "function", "function": {
            "name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]);
        let call = json!([{"id": "call_1", "type": "function",
                           "function": {"name": "get_weather", "arguments": "{\"city\":\"Huế\"}"}}]);
        let r = parse(json!({
            "model": "twn_1", "tools": tools, "tool_choice": "auto", "parallel_tool_calls": false,
            "response_format": {"type": "text"},
            "messages": [
                {"role": "user", "content": "Thời tiết ở Huế?"},
                {"role": "assistant", "content": null, "tool_calls": call},
                {"role": "tool", "tool_call_id": "call_1", "content": "{\"temp\": 31}"}
            ]
        }))
        .unwrap();
        assert_eq!(r.last_user_text(), "Thời tiết ở Huế?");
        let body = r.upstream_body("gpt", "You are Hà.", 1024, "hash");
        let sent = &body["messages"];
        assert_eq!(sent[0]["content"], "You are Hà.", "the persona comes first");
        assert_eq!(sent[2]["tool_calls"], call);
        assert!(sent[2]["content"].is_null());
        assert_eq!(sent[3]["role"], "tool");
        assert_eq!(sent[3]["tool_call_id"], "call_1");
        assert_eq!(body["tools"], tools);
        assert_eq!(body["tool_choice"], "auto");
        assert_eq!(body["parallel_tool_calls"], false);
        assert_eq!(body["response_format"]["type"], "text");

        let reply = Reply {
            tool_calls: vec![chat::ToolCall {
                id: "call_2".into(),
                name: "get_weather".into(),
                arguments: "{}".into(),
            }],
            ..Reply::default()
        };
        let u = Usage::default();
        let c = completion("chatcmpl-1", 7, "twn_1", &reply, u, &[]);
        assert_eq!(c["choices"][0]["finish_reason"], "tool_calls");
        assert!(c["choices"][0]["message"]["content"].is_null());
        assert_eq!(c["choices"][0]["message"]["tool_calls"][0]["id"], "call_2");
    }

    #[test]
    fn shapes_match_openai() {
        let reply = Reply {
            content: "Chào".into(),
            usage: None,
            finish_reason: Some("length".into()),
            done: true,
            ..Reply::default()
        };
        let u = Usage {
            prompt_tokens: 3,
            completion_tokens: 1,
            total_tokens: 4,
        };
        let c = completion("chatcmpl-1", 7, "twn_1", &reply, u, &[]);
        assert_eq!(c["choices"][0]["finish_reason"], "length");
        assert_eq!(c["twin_citations"], json!([]));
        let last = last_chunk("i", 7, "m", &reply, &[]);
        assert_eq!(last["choices"][0]["finish_reason"], "length");
        assert_eq!(last["twin_citations"], json!([]));
        assert_eq!(c["choices"][0]["message"]["content"], "Chào");
        assert_eq!(c["usage"]["total_tokens"], 4);
        assert_eq!(usage_chunk("i", 7, "m", u)["choices"], json!([]));
        assert!(data_line("{}").starts_with("data: ") && !data_line("{}").contains("event:"));
        let e = error_body(&ApiError::field("model", "is required"));
        assert_eq!(e["error"]["type"], "invalid_request_error");
        assert_eq!(e["error"]["param"], "model");
        assert_eq!(
            error_body(&ApiError::InvalidApiKey)["error"]["type"],
            "authentication_error"
        );
        assert_eq!(
            error_body(&ApiError::UpstreamTimeout)["error"]["code"],
            "UPSTREAM_TIMEOUT"
        );
    }
}
