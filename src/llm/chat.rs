//! The upstream protocol: OpenAI-compatible Chat Completions, streamed. Builds the request
//! (persona, history trimmed to a token budget, the new message) and reads the chunks back.

use serde_json::{json, Value};

use crate::http::error::ApiError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Turn {
    pub role: String,
    pub content: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub total_tokens: i64,
}

impl Usage {
    /// The upstream's figures held to what is plausible: none negative, the prompt at most
    /// ×4 its estimate, the completion at most the output cap, and the total their sum (so at
    /// most estimate ×4 + cap). A faulty or hostile upstream cannot write a negative charge, or
    /// an absurd one, into an account's usage.
    pub fn clamped(self, prompt_estimate: i64, max_output_tokens: u64) -> Usage {
        let prompt_tokens = self
            .prompt_tokens
            .clamp(0, prompt_estimate.max(0).saturating_mul(4));
        let completion_tokens = self
            .completion_tokens
            .clamp(0, max_output_tokens.min(i64::MAX as u64) as i64);
        Usage {
            prompt_tokens,
            completion_tokens,
            total_tokens: prompt_tokens + completion_tokens,
        }
    }
}

/// A rough token count (about four characters a token), enough to budget history.
pub fn approx_tokens(text: &str) -> usize {
    text.chars().count().div_ceil(4) + 4
}

/// The most recent turns (given oldest first) that fit in `budget` tokens, oldest dropped
/// first. The new message and the persona are not counted against it.
pub fn trim_history(history: &[Turn], budget: usize) -> &[Turn] {
    let mut used = 0;
    let mut start = history.len();
    for (i, turn) in history.iter().enumerate().rev() {
        used += approx_tokens(&turn.content);
        if used > budget {
            break;
        }
        start = i;
    }
    &history[start..]
}

/// What bounds a request besides its messages: the output cap and the hashed end user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits<'a> {
    pub max_tokens: u64,
    pub user: &'a str,
}

/// The upstream request: the persona as the system message, then `turns` (`(role, text)`,
/// oldest first, ending with the new user message), streamed with usage, capped by `limits`.
pub fn request_body<'a>(
    model: &str,
    system_prompt: &str,
    turns: impl IntoIterator<Item = (&'a str, &'a str)>,
    limits: &Limits,
) -> Value {
    let mut messages = vec![json!({ "role": "system", "content": system_prompt })];
    messages.extend(
        turns
            .into_iter()
            .map(|(role, content)| json!({ "role": role, "content": content })),
    );
    json!({
        "model": model,
        "messages": messages,
        "stream": true,
        "stream_options": { "include_usage": true },
        "max_tokens": limits.max_tokens,
        "user": limits.user,
    })
}

#[derive(Debug, Clone, PartialEq)]
pub enum Chunk {
    Delta(String),
    /// `delta.tool_calls`, kept to OpenAI's fields (`tool_call_deltas`).
    ToolCalls(Value),
    Usage(Usage),
    /// `finish_reason` was set (`stop`, `length`, …).
    Finished(String),
    Done,
    Ignore,
}

/// Reads the `data:` of one upstream event.
pub fn parse_chunk(data: &str) -> Result<Vec<Chunk>, ApiError> {
    if data.trim() == "[DONE]" {
        return Ok(vec![Chunk::Done]);
    }
    let v: Value = serde_json::from_str(data)
        .map_err(|_| ApiError::Upstream("unparseable stream chunk".into()))?;
    if v.get("error").is_some_and(|e| !e.is_null()) {
        return Err(ApiError::Upstream("error event in stream".into()));
    }
    let mut out = Vec::new();
    if let Some(choice) = v["choices"].get(0) {
        if let Some(text) = choice["delta"]["content"]
            .as_str()
            .filter(|t| !t.is_empty())
        {
            out.push(Chunk::Delta(text.to_owned()));
        }
        if let Some(calls) = tool_call_deltas(&choice["delta"]["tool_calls"]) {
            out.push(Chunk::ToolCalls(calls));
        }
        if let Some(reason) = choice["finish_reason"].as_str() {
            out.push(Chunk::Finished(reason.to_owned()));
        }
    }
    if let Some(u) = v.get("usage").filter(|u| u.is_object()) {
        let n = |k: &str| u[k].as_i64().unwrap_or(0);
        out.push(Chunk::Usage(Usage {
            prompt_tokens: n("prompt_tokens"),
            completion_tokens: n("completion_tokens"),
            total_tokens: n("total_tokens"),
        }));
    }
    if out.is_empty() {
        out.push(Chunk::Ignore);
    }
    Ok(out)
}

/// The most tool calls, and argument bytes in all, a reply may carry (what a model can emit
/// in one reply is far less; this bounds what a faulty upstream can make us hold).
const MAX_TOOL_CALLS: usize = 128;
const MAX_TOOL_ARGUMENT_BYTES: usize = 1 << 20;

/// A streamed `delta.tool_calls`, with only OpenAI's fields (`index`, `id`, `type`,
/// `function.name`, `function.arguments`): what is passed on and accumulated.
pub fn tool_call_deltas(v: &Value) -> Option<Value> {
    let list = v.as_array().filter(|a| !a.is_empty())?;
    let kept: Vec<Value> = list
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let mut out = json!({ "index": d["index"].as_u64().unwrap_or(i as u64) });
            for k in ["id", "type"] {
                if let Some(s) = d[k].as_str() {
                    out[k] = json!(s);
                }
            }
            let mut function = serde_json::Map::new();
            for k in ["name", "arguments"] {
                if let Some(s) = d["function"][k].as_str() {
                    function.insert(k.into(), json!(s));
                }
            }
            if !function.is_empty() {
                out["function"] = Value::Object(function);
            }
            out
        })
        .collect();
    Some(Value::Array(kept))
}

/// A tool call the model made, put together from its deltas.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    pub arguments: String,
}

/// What a finished (or failed) generation produced.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Reply {
    pub content: String,
    /// The tools the model called (a request that offered `tools`).
    pub tool_calls: Vec<ToolCall>,
    pub usage: Option<Usage>,
    /// The upstream's `finish_reason`, once it gave one.
    pub finish_reason: Option<String>,
    pub done: bool,
}

impl Reply {
    pub fn apply(&mut self, chunk: &Chunk) {
        match chunk {
            Chunk::Delta(t) => self.content.push_str(t),
            Chunk::ToolCalls(deltas) => self.add_tool_calls(deltas),
            Chunk::Usage(u) => self.usage = Some(*u),
            Chunk::Finished(reason) => self.finish_reason = Some(reason.clone()),
            Chunk::Done => self.done = true,
            Chunk::Ignore => {}
        }
    }

    fn add_tool_calls(&mut self, deltas: &Value) {
        for d in deltas.as_array().into_iter().flatten() {
            let i = d["index"].as_u64().unwrap_or(0) as usize;
            let held: usize = self.tool_calls.iter().map(|c| c.arguments.len()).sum();
            if i >= MAX_TOOL_CALLS || held > MAX_TOOL_ARGUMENT_BYTES {
                continue;
            }
            if self.tool_calls.len() <= i {
                self.tool_calls.resize_with(i + 1, ToolCall::default);
            }
            let call = &mut self.tool_calls[i];
            if let Some(id) = d["id"].as_str() {
                call.id = id.to_owned();
            }
            let f = &d["function"];
            if let Some(name) = f["name"].as_str() {
                call.name.push_str(name);
            }
            if let Some(args) = f["arguments"].as_str() {
                call.arguments.push_str(args);
            }
        }
    }

    /// The calls in OpenAI's shape (`message.tool_calls`).
    pub fn tool_calls_json(&self) -> Value {
        self.tool_calls
            .iter()
            .map(|c| {
                json!({ "id": c.id, "type": "function",
                        "function": { "name": c.name, "arguments": c.arguments } })
            })
            .collect()
    }

    /// A stream that closed without `[DONE]` or a finish reason was cut short.
    pub fn is_complete(&self) -> bool {
        self.done || self.finish_reason.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reported_usage_is_clamped_to_what_is_plausible() {
        let u = |p, c, t| Usage {
            prompt_tokens: p,
            completion_tokens: c,
            total_tokens: t,
        };
        assert_eq!(u(10, 5, 15).clamped(10, 64), u(10, 5, 15));
        assert_eq!(u(-7, -1, -8).clamped(10, 64), u(0, 0, 0));
        assert_eq!(
            u(i64::MAX, i64::MAX, i64::MAX).clamped(10, 64),
            u(40, 64, 104)
        );
        assert_eq!(u(3, 4, 1_000_000).clamped(10, 64), u(3, 4, 7));
    }

    fn turn(role: &str, content: &str) -> Turn {
        Turn {
            role: role.into(),
            content: content.into(),
        }
    }

    #[test]
    fn tool_calls_are_put_together_from_their_deltas() {
        let mut reply = Reply::default();
        let chunks = [
            r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"get_weather","arguments":""}}]}}]}"#,
            r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"city\":"}}]}}]}"#,
            r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"arguments":"\"Huế\"}"},"x":1}]}}]}"#,
            r#"{"choices":[{"delta":{},"finish_reason":"tool_calls"}]}"#,
        ];
        for data in chunks {
            for chunk in parse_chunk(data).unwrap() {
                if let Chunk::ToolCalls(d) = &chunk {
                    assert!(d[0].get("x").is_none(), "only OpenAI's fields pass");
                }
                reply.apply(&chunk);
            }
        }
        assert_eq!(
            reply.tool_calls,
            vec![ToolCall {
                id: "call_1".into(),
                name: "get_weather".into(),
                arguments: r#"{"city":"Huế"}"#.into(),
            }]
        );
        assert_eq!(reply.finish_reason.as_deref(), Some("tool_calls"));
        assert_eq!(
            reply.tool_calls_json()[0]["function"]["arguments"],
            r#"{"city":"Huế"}"#
        );
        // An index out of bounds is dropped, not allocated.
        reply.apply(&Chunk::ToolCalls(json!([{"index": 1_000_000, "id": "x"}])));
        assert_eq!(reply.tool_calls.len(), 1);
    }

    #[test]
    fn history_is_trimmed_oldest_first() {
        let h = vec![
            turn("user", &"a".repeat(400)),
            turn("assistant", &"b".repeat(40)),
            turn("user", "c"),
        ];
        assert_eq!(trim_history(&h, 10_000).len(), 3);
        let kept = trim_history(&h, 30);
        assert_eq!(kept, &h[1..]);
        assert!(trim_history(&h, 0).is_empty());
    }

    #[test]
    fn request_has_persona_history_and_message_in_order() {
        let history = [turn("user", "hi"), turn("assistant", "hello")];
        let turns = history
            .iter()
            .map(|t| (t.role.as_str(), t.content.as_str()))
            .chain([("user", "Xin chào")]);
        let body = request_body(
            "m",
            "You are Hà.",
            turns,
            &Limits {
                max_tokens: 64,
                user: "hash",
            },
        );
        assert_eq!(
            (body["max_tokens"].as_u64(), body["user"].as_str()),
            (Some(64), Some("hash"))
        );
        let roles: Vec<&str> = body["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["role"].as_str().unwrap())
            .collect();
        assert_eq!(roles, ["system", "user", "assistant", "user"]);
        assert_eq!(body["messages"][3]["content"], "Xin chào");
        assert_eq!(body["stream"], true);
        assert_eq!(body["stream_options"]["include_usage"], true);
    }

    #[test]
    fn chunks_are_read() {
        let d = parse_chunk(r#"{"choices":[{"delta":{"content":"Chào"},"finish_reason":null}]}"#)
            .unwrap();
        assert_eq!(d, vec![Chunk::Delta("Chào".into())]);
        let f = parse_chunk(r#"{"choices":[{"delta":{},"finish_reason":"stop"}]}"#).unwrap();
        assert_eq!(f, vec![Chunk::Finished("stop".into())]);
        let u = parse_chunk(
            r#"{"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}"#,
        )
        .unwrap();
        assert_eq!(
            u,
            vec![Chunk::Usage(Usage {
                prompt_tokens: 1,
                completion_tokens: 2,
                total_tokens: 3
            })]
        );
        assert_eq!(parse_chunk("[DONE]").unwrap(), vec![Chunk::Done]);
        assert!(parse_chunk("{oops").is_err());
        assert!(parse_chunk(r#"{"error":{"message":"overloaded"}}"#).is_err());
    }

    #[test]
    fn reply_accumulates_and_knows_when_it_was_cut() {
        let mut r = Reply::default();
        r.apply(&Chunk::Delta("Xin ".into()));
        r.apply(&Chunk::Delta("chào".into()));
        assert_eq!((r.content.as_str(), r.is_complete()), ("Xin chào", false));
        r.apply(&Chunk::Done);
        assert!(r.is_complete());
    }
}
