//! The schemas of webhook endpoints and deliveries, for the OpenAPI document (`http::openapi`).

use serde_json::{json, Value};

#[allow(unused_imports)]
use crate::http::openapi::{list_of, ns, ntime, s, schema, text, time};
use crate::webhooks::model as wh;

/// Webhook endpoints, deliveries and the body a receiver gets.
pub fn schemas() -> Value {
    let events = json!({ "type": "array", "minItems": 1, "uniqueItems": true,
        "items": { "type": "string", "enum": wh::EVENTS } });
    json!({
    "WebhookEndpoint": { "type": "object", "required": ["id", "url", "events", "description", "enabled", "createdAt"],
        "properties": { "id": s("string"), "url": { "type": "string", "format": "uri" }, "events": events.clone(),
            "description": ns("string"),
            "enabled": { "type": "boolean", "description": "false once disabled by you, or after 5 days of failing every delivery" },
            "createdAt": time(),
            "secret": { "type": "string", "description": "whsec_…: the signing secret, only in the answer that created or rotated it" } } },
    "WebhookInput": { "type": "object", "required": ["url", "events"], "additionalProperties": false,
        "properties": { "url": { "type": "string", "format": "uri", "maxLength": wh::MAX_URL,
                "description": "https, to a public host (http://127.0.0.1:PORT only where WEBHOOK_ALLOW_HTTP_HOSTS allows it)" },
            "events": events.clone(), "description": { "type": "string", "maxLength": wh::MAX_DESCRIPTION } } },
    "WebhookUpdate": { "type": "object", "additionalProperties": false,
        "properties": { "url": { "type": "string", "format": "uri", "maxLength": wh::MAX_URL }, "events": events,
            "description": { "type": "string", "maxLength": wh::MAX_DESCRIPTION }, "enabled": s("boolean") } },
    "WebhookDelivery": { "type": "object", "required": ["id", "webhookId", "eventId", "eventType", "status", "attempts"],
        "properties": { "id": s("string"), "webhookId": s("string"),
            "eventId": { "type": "string", "description": "The webhook-id header: the same on every attempt" },
            "eventType": s("string"),
            "status": { "type": "string", "enum": ["pending", "sending", "succeeded", "failed"] },
            "attempts": s("integer"), "responseCode": { "type": ["integer", "null"], "description": "The last attempt's HTTP status" },
            "lastError": ns("string"), "nextAttemptAt": ntime(), "createdAt": time(), "updatedAt": time() } },
    "WebhookEvent": { "type": "object", "required": ["type", "timestamp", "data"],
        "description": "The body of a delivery, signed in webhook-signature (Standard Webhooks)",
        "properties": { "type": { "type": "string", "enum": wh::EVENTS }, "timestamp": time(), "data": s("object") } }
    })
}
