//! The schemas of conversations, messages and usage, for the OpenAPI document (`http::openapi`); field limits from `conversations::model`.

use serde_json::{json, Value};

use crate::conversations::model as conv;
#[allow(unused_imports)]
use crate::http::openapi::{list_of, ns, ntime, s, schema, text, time};
use crate::spend::model as spend;

/// Conversations, messages and usage.
pub fn schemas() -> Value {
    json!({
    "Conversation": { "type": "object",
        "required": ["id", "twinId", "title", "endUserId", "messageCount", "createdAt", "updatedAt", "lastMessageAt"],
        "properties": { "id": s("string"), "twinId": s("string"), "title": s("string"),
            "endUserId": { "type": ["string", "null"], "description": "Your app's own user, if you passed one (usage can be grouped by it)" },
            "messageCount": s("integer"), "createdAt": time(), "updatedAt": time(), "lastMessageAt": ntime() } },
    "ConversationTitle": { "type": "object", "properties": {
        "title": text(conv::TITLE, json!({ "default": conv::DEFAULT_TITLE })) } },
    "ConversationCreate": { "allOf": [schema("ConversationTitle"), { "type": "object", "required": ["twinId"],
        "properties": { "twinId": s("string"),
            "endUserId": text(spend::END_USER_ID, json!({ "pattern": spend::end_user_pattern(), "description": "Your app's own user id: stored, filterable, grouped in usage, sent to the model provider only as a hash" })) } }] },
    "ConversationRename": { "type": "object", "required": ["title"],
        "properties": { "title": text(conv::TITLE, json!({})) } },
    "Usage": { "type": "object", "required": ["promptTokens", "completionTokens", "totalTokens"],
        "properties": { "promptTokens": s("integer"), "completionTokens": s("integer"), "totalTokens": s("integer"),
            "estimated": { "type": "boolean", "description": "Present and true when the model reported no usage (cancelled, cut, interrupted): counted at about 4 characters a token" } } },
    "Message": { "type": "object",
        "required": ["id", "conversationId", "role", "content", "status", "model", "usage", "latencyMs", "createdAt"],
        "properties": { "id": s("string"), "conversationId": s("string"),
            "role": { "type": "string", "enum": ["user", "assistant"] }, "content": s("string"),
            "status": { "type": "string", "enum": ["completed", "generating", "cancelled", "incomplete", "failed"],
                "description": "`generating`: the reply is being written and `content` holds what has arrived; `cancelled`: stopped by a cancel; `incomplete`: cut short by the model or a restart, `content` holds what arrived; `failed`: nothing arrived" },
            "model": ns("string"), "usage": { "oneOf": [schema("Usage"), { "type": "null" }] },
            "latencyMs": ns("integer"), "citations": { "type": "array", "items": schema("Citation"),
                "description": "The twin's knowledge sources this reply cites as [n]; [] when none" },
            "suggestions": { "type": "array", "maxItems": crate::conversations::suggestions::MAX, "items": s("string"),
                "description": "A completed reply: up to 3 short follow-up questions the twin offers next (from the same model call, never part of `content`); absent when it offers none" },
            "feedback": schema("Feedback"),
            "createdAt": time() } },
    "Feedback": { "type": "object", "required": ["rating", "updatedAt"],
        "description": "The latest rating of this reply; absent when none",
        "properties": { "rating": { "type": "integer", "enum": [1, -1] }, "comment": s("string"), "updatedAt": time() } },
    "FeedbackInput": { "type": "object", "required": ["rating"],
        "properties": { "rating": { "type": "integer", "enum": [1, -1], "description": "1: helpful; -1: not helpful. A later rating of the same reply replaces it" },
            "comment": text(crate::feedback::model::COMMENT, json!({})) } },
    "FeedbackReport": { "type": "object", "required": ["twinId", "from", "to", "days", "totals", "comments"],
        "properties": { "twinId": s("string"), "from": { "type": "string", "format": "date" }, "to": { "type": "string", "format": "date" },
            "days": { "type": "array", "description": "Days with ratings (a rating counts on the day it was last given)",
                "items": { "type": "object", "required": ["date", "positive", "negative"],
                    "properties": { "date": { "type": "string", "format": "date" }, "positive": s("integer"), "negative": s("integer") } } },
            "totals": { "type": "object", "required": ["positive", "negative"], "properties": { "positive": s("integer"), "negative": s("integer") } },
            "comments": { "type": "array", "description": "The latest 20 comments in the range, newest first",
                "items": { "type": "object", "required": ["messageId", "conversationId", "rating", "comment", "createdAt"],
                    "properties": { "messageId": s("string"), "conversationId": ns("string"), "rating": { "type": "integer", "enum": [1, -1] },
                        "comment": s("string"), "createdAt": time() } } } } },
    "ConversationExport": { "type": "object", "required": ["conversation", "messages"],
        "properties": { "conversation": schema("Conversation"), "messages": list_of("Message") } },
    "EndUserErasure": { "type": "object",
        "required": ["endUserId", "conversationsDeleted", "messagesDeleted", "feedbackAnonymised", "usageRowsAnonymised", "webhookDeliveriesDeleted"],
        "properties": { "endUserId": s("string"), "conversationsDeleted": s("integer"), "messagesDeleted": s("integer"),
            "feedbackAnonymised": { "type": "integer", "description": "Ratings kept in the twins' reports without comment, end user or conversation" },
            "usageRowsAnonymised": { "type": "integer", "description": "Usage rows no longer attributed to the end user (totals unchanged)" },
            "webhookDeliveriesDeleted": s("integer") } },
    "UsageRow": { "type": "object",
        "description": "One group; only its grouping field (`day`, `apiKeyId`, `twinId` or `endUserId`, null for none) is present. `meta.totals` holds the sums.",
        "required": ["requests", "promptTokens", "completionTokens", "totalTokens", "estimatedTokens"],
        "properties": { "day": { "type": "string", "format": "date" }, "apiKeyId": ns("string"), "twinId": s("string"),
            "endUserId": ns("string"), "requests": s("integer"), "promptTokens": s("integer"),
            "completionTokens": s("integer"), "totalTokens": s("integer"), "estimatedTokens": s("integer") } },
    "CancelResult": { "type": "object", "required": ["message"], "properties": { "message": schema("Message") } },
    "MessageInput": { "type": "object", "required": ["content"],
        "properties": { "content": text(conv::CONTENT, json!({})),
            "background": { "type": "boolean", "default": false,
                "description": "POST …/messages only: answer 202 at once with the reply `generating`; its end is a webhook event (docs/webhooks.md)" } } },
    "Exchange": { "type": "object", "required": ["userMessage", "message", "usage"],
        "properties": { "userMessage": schema("Message"), "message": schema("Message"),
            "usage": { "oneOf": [schema("Usage"), { "type": "null" }] } } }
    })
}
