//! The schemas of accounts, sessions and API keys, for the OpenAPI document (`http::openapi`); field limits from `auth::model`.

use serde_json::{json, Value};

use crate::auth::model as auth;
#[allow(unused_imports)]
use crate::http::openapi::{list_of, ns, ntime, s, schema, text, time};

/// Accounts, sessions and API keys.
pub fn schemas() -> Value {
    json!({
    "User": { "type": "object", "required": ["id", "email", "name", "createdAt"],
        "properties": { "id": s("string"), "email": s("string"), "name": s("string"), "createdAt": time() } },
    "Session": { "type": "object", "required": ["user", "token", "expiresIn"],
        "properties": { "user": schema("User"), "token": s("string"), "expiresIn": s("integer") } },
    "Me": { "allOf": [schema("User"), { "type": "object", "required": ["allowedModels"], "properties": { "apiKey": {
        "type": "object", "required": ["id", "name", "scope"],
        "properties": { "id": s("string"), "name": s("string"), "scope": schema("Scope") } },
        "allowedModels": { "type": "array", "items": s("string"), "description": "The models a twin may be set to (the operator's ALLOWED_MODELS)" } } }] },
    "RegisterInput": { "type": "object", "required": ["email", "password", "name"],
        "properties": { "email": { "type": "string", "format": "email" },
                        "password": text(auth::PASSWORD, json!({})),
                        "name": text(auth::USER_NAME, json!({})) } },
    "LoginInput": { "type": "object", "required": ["email", "password"],
        "properties": { "email": s("string"), "password": s("string") } },
    "Scope": { "type": "string", "enum": ["read_only", "full_access"] },
    "ClientTokenInput": { "type": "object", "required": ["twinId", "endUserId"],
        "properties": { "twinId": s("string"),
            "endUserId": text(crate::spend::model::END_USER_ID, json!({ "pattern": crate::spend::model::end_user_pattern(), "description": "Your user the token acts for: its conversations are this end user's" })),
            "expiresInSeconds": { "type": "integer", "minimum": crate::auth::client_token::MIN_TTL_SECS, "maximum": crate::auth::client_token::MAX_TTL_SECS, "default": crate::auth::client_token::DEFAULT_TTL_SECS },
            "conversationId": { "type": "string", "description": "Limit the token to this one conversation (of this twin and end user)" } } },
    "ClientToken": { "type": "object", "required": ["token", "expiresAt", "twinId", "endUserId", "conversationId"],
        "properties": { "token": { "type": "string", "description": "`tect_…`: send it as `Authorization: Bearer`. Shown only here" },
            "expiresAt": time(), "twinId": s("string"), "endUserId": s("string"), "conversationId": ns("string") } },
    "ApiKeyInput": { "type": "object", "required": ["name"],
        "properties": { "name": text(auth::KEY_NAME, json!({})),
                        "scope": { "$ref": "#/components/schemas/Scope", "default": "read_only" },
                        "expiresInDays": { "type": "integer", "minimum": 1, "maximum": auth::MAX_EXPIRES_IN_DAYS } } },
    "ApiKey": { "type": "object",
        "required": ["id", "name", "scope", "prefix", "createdAt", "expiresAt", "lastUsedAt", "revokedAt", "endUserLimits"],
        "properties": { "id": s("string"), "name": s("string"), "scope": schema("Scope"), "prefix": s("string"),
                        "createdAt": time(), "expiresAt": ntime(), "lastUsedAt": ntime(), "revokedAt": ntime(),
                        "endUserLimits": { "oneOf": [schema("EndUserLimits"), { "type": "null" }] } } },
    "EndUserLimits": { "type": "object", "description": "Enforced per end user of this key (a conversation's endUserId, a completion's user); 429 END_USER_LIMIT_EXCEEDED past them",
        "properties": { "messagesPerHour": { "type": "integer", "minimum": 1, "maximum": crate::spend::model::MAX_MESSAGES_PER_HOUR },
                        "tokensPerDay": { "type": "integer", "minimum": 1, "maximum": crate::spend::model::MAX_TOKENS_PER_DAY } } },
    "ApiKeyUpdate": { "type": "object", "required": ["endUserLimits"],
        "properties": { "endUserLimits": { "oneOf": [schema("EndUserLimits"), { "type": "null" }] } } },
    "ApiKeyCreated": { "allOf": [schema("ApiKey"), { "type": "object", "required": ["key"],
        "properties": { "key": { "type": "string", "pattern": "^te_[0-9A-Za-z]{36}$" } } }] }
    })
}
