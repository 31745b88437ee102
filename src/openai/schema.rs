//! The OpenAI-compatible shapes, for the OpenAPI document (`http::openapi`); field limits from `openai::model`.

use serde_json::{json, Value};

use crate::http::error::ERROR_CODES;
#[allow(unused_imports)]
use crate::http::openapi::{list_of, ns, ntime, s, schema, text, time};
use crate::spend::model as spend;

/// The OpenAI-compatible shapes.
pub fn schemas() -> Value {
    json!({
    "OpenAIErrorBody": { "type": "object", "required": ["error"], "properties": { "error": { "type": "object",
        "required": ["message", "type", "code", "param"],
        "properties": { "message": s("string"),
            "type": { "type": "string", "enum": ["invalid_request_error", "authentication_error", "permission_error", "not_found_error", "rate_limit_error", "api_error"] },
            "code": { "type": "string", "enum": ERROR_CODES }, "param": ns("string") } } } },
    "ChatCompletionRequest": { "type": "object", "required": ["model", "messages"],
        "properties": { "model": { "type": "string", "description": "A twin id" },
            "messages": { "type": "array", "minItems": 1, "items": { "type": "object", "required": ["role"],
                "properties": { "role": { "type": "string", "enum": ["system", "user", "assistant", "developer", "tool"] },
                    "content": { "description": "Required but for an assistant message with `tool_calls` (null there)",
                        "oneOf": [s("string"), { "type": "null" }, { "type": "array", "items": { "type": "object",
                        "required": ["type", "text"], "properties": { "type": { "const": "text" }, "text": s("string") } } }] },
                    "tool_calls": { "type": "array", "items": schema("ToolCall"), "description": "An assistant message: the calls the model made" },
                    "tool_call_id": { "type": "string", "description": "A tool message: the call it answers" } } } },
            "tools": { "type": "array", "maxItems": 128, "items": { "type": "object", "required": ["type", "function"],
                "properties": { "type": { "const": "function" }, "function": { "type": "object", "required": ["name"],
                    "properties": { "name": { "type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$" }, "description": s("string"),
                        "parameters": { "type": "object" }, "strict": s("boolean") } } } },
                "description": "Passed through to the model after the twin's persona and sources" },
            "tool_choice": { "oneOf": [{ "type": "string", "enum": ["none", "auto", "required"] },
                { "type": "object", "required": ["type", "function"], "properties": { "type": { "const": "function" },
                    "function": { "type": "object", "required": ["name"], "properties": { "name": s("string") } } } }] },
            "parallel_tool_calls": s("boolean"),
            "response_format": { "type": "object", "required": ["type"], "properties": {
                "type": { "type": "string", "enum": ["text", "json_object", "json_schema"] }, "json_schema": { "type": "object" } } },
            "stream": s("boolean"), "stream_options": { "type": "object", "properties": { "include_usage": s("boolean") } },
            "max_tokens": { "type": "integer", "minimum": 1 }, "max_completion_tokens": { "type": "integer", "minimum": 1 },
            "temperature": { "type": "number", "minimum": 0, "maximum": 2 }, "top_p": { "type": "number", "minimum": 0, "maximum": 2 },
            "stop": { "oneOf": [s("string"), { "type": "array", "maxItems": 4, "items": s("string") }] },
            "user": text(spend::END_USER_ID, json!({ "pattern": spend::end_user_pattern(), "description": "Your end user (usage groups by it; the provider sees only a hash)" })) } },
    "ChatCompletion": { "type": "object", "required": ["id", "object", "created", "model", "choices", "usage"],
        "properties": { "id": s("string"), "object": { "const": "chat.completion" }, "created": s("integer"), "model": s("string"),
            "choices": { "type": "array", "items": { "type": "object", "required": ["index", "message", "finish_reason"],
                "properties": { "index": s("integer"), "finish_reason": { "type": "string", "enum": ["stop", "length", "tool_calls", "content_filter"] },
                    "message": { "type": "object", "required": ["role", "content"], "properties": { "role": { "const": "assistant" },
                        "content": ns("string"), "tool_calls": { "type": "array", "items": schema("ToolCall") } } } } } },
            "usage": { "type": "object", "required": ["prompt_tokens", "completion_tokens", "total_tokens"],
                "properties": { "prompt_tokens": s("integer"), "completion_tokens": s("integer"), "total_tokens": s("integer") } },
            "twin_citations": { "type": "array", "items": schema("Citation"), "description": "TwinExpert extension: the knowledge sources the reply cites" } } },
    "ToolCall": { "type": "object", "required": ["id", "type", "function"],
        "properties": { "id": s("string"), "type": { "const": "function" }, "function": { "type": "object",
            "required": ["name", "arguments"], "properties": { "name": s("string"), "arguments": { "type": "string", "description": "JSON text, as the model wrote it" } } } } },
    "Model": { "type": "object", "required": ["id", "object", "created", "owned_by"],
        "properties": { "id": s("string"), "object": { "const": "model" }, "created": s("integer"), "owned_by": s("string") } },
    "ModelList": { "type": "object", "required": ["object", "data"],
        "properties": { "object": { "const": "list" }, "data": list_of("Model") } }
    })
}
