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
    /// `(role, text)`, roles `system` / `user` / `assistant`.
    pub messages: Vec<(String, String)>,
    pub stream: bool,
    pub include_usage: bool,
    /// Asked for; the caller's cap is applied to it.
    pub max_tokens: Option<u64>,
    /// Passed through: `temperature`, `top_p`, `stop`.
    pub sampling: Map<String, Value>,
    /// The end user (`user`).
    pub user: Option<String>,
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

/// `messages`: `(role, text)` with `developer` read as `system`, at least one from the user.
fn messages(body: &Map<String, Value>) -> Result<Vec<(String, String)>, ApiError> {
    let list = body
        .get("messages")
        .and_then(Value::as_array)
        .filter(|m| !m.is_empty() && m.len() <= 500)
        .ok_or_else(|| bad("messages", "must be a non-empty array of messages"))?;
    let mut messages = Vec::with_capacity(list.len());
    let mut chars = 0;
    for (i, m) in list.iter().enumerate() {
        let role = match m["role"].as_str() {
            Some(r @ ("system" | "user" | "assistant")) => r,
            Some("developer") => "system",
            _ => {
                return Err(bad(
                    &format!("messages[{i}].role"),
                    "must be system, user or assistant",
                ))
            }
        };
        let text = content_text(i, &m["content"])?;
        chars += text.chars().count();
        messages.push((role.to_owned(), text));
    }
    if chars > 200_000 {
        return Err(bad("messages", "are longer than 200 000 characters in all"));
    }
    if !messages.iter().any(|(r, _)| r == "user") {
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

/// `temperature`, `top_p` and `stop`, checked, to pass through.
fn sampling(body: &Map<String, Value>) -> Result<Map<String, Value>, ApiError> {
    let mut sampling = Map::new();
    for name in ["temperature", "top_p", "stop"] {
        if let Some(v) = body.get(name).filter(|v| !v.is_null()) {
            let ok = match name {
                "stop" => {
                    v.is_string()
                        || v.as_array()
                            .is_some_and(|a| a.len() <= 4 && a.iter().all(Value::is_string))
                }
                _ => v.as_f64().is_some_and(|x| (0.0..=2.0).contains(&x)),
            };
            if !ok {
                return Err(bad(name, "is out of range"));
            }
            sampling.insert(name.to_owned(), v.clone());
        }
    }
    Ok(sampling)
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
            sampling: sampling(body)?,
            user,
        })
    }

    /// The text retrieval searches for: the last user message.
    pub fn last_user_text(&self) -> &str {
        self.messages
            .iter()
            .rev()
            .find(|(role, _)| role == "user")
            .map_or("", |(_, text)| text.as_str())
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
        let turns = self.messages.iter().map(|(r, c)| (r.as_str(), c.as_str()));
        let mut body = chat::request_body(upstream_model, persona, turns, &limits);
        for (k, v) in &self.sampling {
            body[k] = v.clone();
        }
        body
    }
}

/// `stop` or `length`, as OpenAI names why a reply ended.
pub fn finish_reason(reply: &Reply) -> &str {
    match reply.finish_reason.as_deref() {
        Some("length") => "length",
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
    json!({
        "id": id, "object": "chat.completion", "created": created, "model": model,
        "choices": [{ "index": 0, "message": { "role": "assistant", "content": reply.content },
                      "finish_reason": finish_reason(reply) }],
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
        assert_eq!(r.messages[1], ("user".to_owned(), "Xin chào".to_owned()));
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
            param(json!({"model": "t", "messages": [{"role": "tool", "content": "x"}]})),
            "messages[0].role"
        );
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
    fn shapes_match_openai() {
        let reply = Reply {
            content: "Chào".into(),
            usage: None,
            finish_reason: Some("length".into()),
            done: true,
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
