//! A twin's schemas, for the OpenAPI document (`http::openapi`); field limits from `twins::model`.

use serde_json::{json, Value};

#[allow(unused_imports)]
use crate::http::openapi::{list_of, ns, ntime, s, schema, text, time};
use crate::twins::model as tw;

/// Twins.
pub fn schemas() -> Value {
    json!({
    "Twin": { "type": "object",
        "required": ["id", "name", "slug", "headline", "description", "avatarUrl", "websiteUrl", "expertise", "language",
                     "greeting", "visibility", "model", "createdAt", "updatedAt"],
        "properties": { "id": s("string"), "name": s("string"), "slug": s("string"), "headline": s("string"),
            "description": s("string"), "avatarUrl": ns("string"), "websiteUrl": ns("string"),
            "expertise": { "type": "array", "items": s("string") }, "language": s("string"),
            "greeting": s("string"), "visibility": { "type": "string", "enum": ["public", "private"] },
            "model": ns("string"), "createdAt": time(), "updatedAt": time(),
            "systemPrompt": { "type": "string", "description": "Only for the twin's owner" } } },
    "TwinCreate": { "allOf": [schema("TwinUpdate"), { "required": ["name", "systemPrompt"] }] },
    "TwinUpdate": { "type": "object", "properties": {
        "name": text(tw::NAME, json!({})),
        "slug": text(tw::SLUG, json!({ "pattern": "^[a-z0-9]+(-[a-z0-9]+)*$" })),
        "headline": text(tw::HEADLINE, json!({})),
        "description": text(tw::DESCRIPTION, json!({})),
        "avatarUrl": text(tw::AVATAR_URL, json!({ "format": "uri" })),
        "websiteUrl": text(tw::WEBSITE_URL, json!({ "format": "uri" })),
        "expertise": { "type": "array", "maxItems": tw::EXPERTISE_ITEMS, "items": text(tw::EXPERTISE_ITEM, json!({})) },
        "language": text(tw::LANGUAGE, json!({})),
        "greeting": text(tw::GREETING, json!({})),
        "systemPrompt": text(tw::SYSTEM_PROMPT, json!({})),
        "visibility": { "type": "string", "enum": tw::VISIBILITIES, "default": "private" },
        "model": text(tw::MODEL, json!({})) } }
    })
}
