//! The OpenAPI 3.1 document, built from the route table. Every route's operation comes from an
//! exhaustive `match` on `RouteId`, so a route cannot be added without its specification.

use serde_json::{json, Map, Value};

use crate::auth::credentials::Scope;
use crate::http::routes::{Access, RouteId, Shape, BASE, ROUTES};
use crate::http::validate::Chars;

use crate::http::error::ERROR_CODES;

struct Op {
    summary: &'static str,
    tag: &'static str,
    body: Option<Value>,
    status: u16,
    /// The `data` schema of the success envelope; `None` for the SSE stream.
    data: Option<Value>,
    paginated: bool,
    query: Vec<Value>,
}

pub fn schema(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

pub fn list_of(name: &str) -> Value {
    json!({ "type": "array", "items": schema(name) })
}

fn op(summary: &'static str, tag: &'static str, status: u16, data: Value) -> Op {
    Op {
        summary,
        tag,
        body: None,
        status,
        data: Some(data),
        paginated: false,
        query: vec![],
    }
}

impl Op {
    fn body(mut self, body: Value) -> Self {
        self.body = Some(body);
        self
    }

    fn paginated(mut self, extra: Vec<Value>) -> Self {
        self.paginated = true;
        self.query = vec![
            json!({ "name": "page", "in": "query", "schema": { "type": "integer", "minimum": 1, "maximum": i64::MAX, "default": 1, "description": "A page past the end is an empty page; one skipping more than 10 000 existing rows is refused (400)" } }),
            json!({ "name": "limit", "in": "query", "schema": { "type": "integer", "minimum": 1, "maximum": 100, "default": 20 } }),
            json!({ "name": "startingAfter", "in": "query", "schema": { "type": "string", "pattern": "^[A-Za-z0-9_-]{1,128}$", "description": "A cursor: the items after this id, in the list's order (meta.pagination.nextCursor of the page before); wins over page. An id that is no item of the list is refused (400)" } }),
            json!({ "name": "endingBefore", "in": "query", "schema": { "type": "string", "pattern": "^[A-Za-z0-9_-]{1,128}$", "description": "A cursor: the items just before this id, in the list's order; not with startingAfter" } }),
        ];
        self.query.extend(extra);
        self
    }
}

fn spec(id: RouteId) -> Op {
    use RouteId::*;
    let deleted = json!({ "type": "object", "required": ["id", "deleted"],
        "properties": { "id": { "type": "string" }, "deleted": { "const": true } } });
    match id {
        Health => op("Service health", "Meta", 200, schema("Health")),
        OpenApi => Op { data: None, ..op("This OpenAPI document", "Meta", 200, json!({})) },
        Register => op("Create an account", "Accounts", 201, schema("Session")).body(schema("RegisterInput")),
        Login => op("Log in for a session token (JWT)", "Accounts", 200, schema("Session")).body(schema("LoginInput")),
        Me => op("The caller: user, and the API key used if any", "Accounts", 200, schema("Me")),
        CreateApiKey => {
            op("Create an API key (the plaintext key is shown only here)", "API keys", 201, schema("ApiKeyCreated"))
                .body(schema("ApiKeyInput"))
        }
        ListApiKeys => op("List your API keys", "API keys", 200, list_of("ApiKey")),
        RevokeApiKey => op("Revoke an API key, effective at once (its client tokens stop with it)", "API keys", 200, schema("ApiKey")),
        UpdateApiKey => op("Set (or clear with null) the key's limits per end user: messages per hour, tokens per day", "API keys", 200, schema("ApiKey"))
            .body(schema("ApiKeyUpdate")),
        CreateClientToken => op("Mint a short-lived client token for one twin and one end user, for a browser or a mobile app (call it from your server with a full_access key)", "API keys", 201, schema("ClientToken"))
            .body(schema("ClientTokenInput")),
        ListTwins => op("List twins you can access", "Twins", 200, list_of("Twin")).paginated(vec![json!({
            "name": "q", "in": "query", "description": "Filter by name, headline or expertise (case-insensitive)",
            "schema": { "type": "string", "maxLength": 200 }
        })]),
        CreateTwin => op("Create a twin", "Twins", 201, schema("Twin")).body(schema("TwinCreate")),
        GetTwin => op("Get a twin", "Twins", 200, schema("Twin")),
        StartConversationWithTwin => {
            op("Start a conversation with this twin", "Conversations", 201, schema("Conversation"))
                .body(schema("ConversationTitle"))
        }
        UpdateTwin => op("Update your twin", "Twins", 200, schema("Twin")).body(schema("TwinUpdate")),
        DeleteTwin => op("Delete your twin", "Twins", 200, deleted.clone()),
        AddKnowledge => op("Add a document to your twin's knowledge: JSON text (201, ready), or a file (multipart/form-data) or a web page ({url}) answered 202 processing", "Knowledge", 201, schema("Document"))
            .body(json!({ "oneOf": [schema("DocumentInput"), schema("UrlImport")] })),
        GetKnowledge => op("A document, with its status and the text its passages were cut from", "Knowledge", 200, schema("DocumentWithContent")),
        RefreshKnowledge => op("Fetch an imported page again (202: processing until it is re-indexed)", "Knowledge", 202, schema("Document")),
        SearchKnowledge => op("The passages a turn would be given for a question, best first (at most 5)", "Knowledge", 200, list_of("Passage"))
            .body(schema("KnowledgeSearch")),
        ListKnowledge => op("List your twin's documents (without their content), newest first", "Knowledge", 200, list_of("Document")).paginated(vec![]),
        DeleteKnowledge => op("Remove a document: it is never retrieved or cited again", "Knowledge", 200, deleted),
        CreateConversation => {
            op("Start a conversation", "Conversations", 201, schema("Conversation")).body(schema("ConversationCreate"))
        }
        ListConversations => op("List your conversations, newest activity first", "Conversations", 200, list_of("Conversation"))
            .paginated(vec![
                json!({ "name": "twinId", "in": "query", "schema": { "type": "string" } }),
                json!({ "name": "endUserId", "in": "query", "schema": { "type": "string" } }),
            ]),
        GetConversation => op("Get a conversation", "Conversations", 200, schema("Conversation")),
        UpdateConversation => {
            op("Rename a conversation", "Conversations", 200, schema("Conversation")).body(schema("ConversationRename"))
        }
        DeleteConversation => op("Delete a conversation and its messages", "Conversations", 200, deleted),
        ListMessages => op("Message history, oldest first", "Messages", 200, list_of("Message")).paginated(vec![]),
        SendMessage => op("Send a message; answers once the twin's whole reply is stored", "Messages", 201, schema("Exchange"))
            .body(schema("MessageInput")),
        StreamMessage => Op { data: None, ..op("Send a message and stream the reply (Server-Sent Events)", "Messages", 200, json!({})) }
            .body(schema("MessageInput")),
        ResumeMessageStream => Op { data: None, query: vec![
                json!({ "name": "after", "in": "query", "description": "Send only the events with an id above this one (`Last-Event-ID` wins when both are sent)",
                        "schema": { "type": "integer", "minimum": 0 } }),
                json!({ "name": "Last-Event-ID", "in": "header", "description": "What a reconnecting EventSource sends: the last event id it saw",
                        "schema": { "type": "string", "pattern": "^[0-9]+$" } }),
            ], ..op("Resume (or replay) a reply's event stream after an event id", "Messages", 200, json!({})) },
        Usage => Op {
            query: vec![
                json!({ "name": "from", "in": "query", "description": "First UTC day (YYYY-MM-DD); default: 29 days before `to`", "schema": { "type": "string", "format": "date" } }),
                json!({ "name": "to", "in": "query", "description": "Last UTC day, inclusive; default: today. At most 366 days in all", "schema": { "type": "string", "format": "date" } }),
                json!({ "name": "groupBy", "in": "query", "schema": { "type": "string", "enum": ["day", "apiKey", "twin", "endUser"], "default": "day" } }),
            ],
            ..op("Token usage: the account's with a session, only the calling key's own with an API key", "Usage", 200, list_of("UsageRow"))
        },
        ChatCompletions => op("OpenAI-compatible Chat Completions: model = a twin id; `stream: true` answers `data:` chunks then `data: [DONE]`", "OpenAI-compatible", 200, schema("ChatCompletion"))
            .body(schema("ChatCompletionRequest")),
        ListModels => op("OpenAI-compatible: the twins you can use, as models", "OpenAI-compatible", 200, schema("ModelList")),
        GetModel => op("OpenAI-compatible: one twin as a model", "OpenAI-compatible", 200, schema("Model")),
        CancelMessage => op("Cancel a reply being generated; a finished one is returned as it is", "Messages", 200, schema("CancelResult")),
        RateMessage => op("Rate a reply of the twin (1 or -1, with an optional comment); the latest rating wins", "Messages", 200, schema("CancelResult"))
            .body(schema("FeedbackInput")),
        ExportConversation => Op {
            query: vec![json!({ "name": "format", "in": "query", "schema": { "type": "string", "enum": ["json", "markdown"], "default": "json" } })],
            ..op("The whole conversation: every message with its citations, suggestions and feedback (JSON, or a Markdown file)", "Conversations", 200, schema("ConversationExport"))
        },
        TwinFeedback => Op {
            query: vec![
                json!({ "name": "from", "in": "query", "description": "First UTC day (YYYY-MM-DD); default: 29 days before `to`", "schema": { "type": "string", "format": "date" } }),
                json!({ "name": "to", "in": "query", "description": "Last UTC day, inclusive; default: today. At most 366 days in all", "schema": { "type": "string", "format": "date" } }),
            ],
            ..op("Your twin's feedback: ratings by day and the latest comments", "Twins", 200, schema("FeedbackReport"))
        },
        EraseEndUser => op("Erase an end user: their conversations and messages everywhere; their usage stays in the totals, no longer attributed to them", "Usage", 200, schema("EndUserErasure")),
        ListWebhooks => op("List your webhook endpoints", "Webhooks", 200, list_of("WebhookEndpoint")),
        CreateWebhook => op("Create a webhook endpoint (its signing secret is shown only here)", "Webhooks", 201, schema("WebhookEndpoint"))
            .body(schema("WebhookInput")),
        GetWebhook => op("Get a webhook endpoint", "Webhooks", 200, schema("WebhookEndpoint")),
        UpdateWebhook => op("Change an endpoint's URL, events or description, or enable/disable it", "Webhooks", 200, schema("WebhookEndpoint"))
            .body(schema("WebhookUpdate")),
        DeleteWebhook => op("Delete a webhook endpoint and its delivery log", "Webhooks", 200, deleted),
        RotateWebhookSecret => op("Replace an endpoint's signing secret (the old one stops at once; the new one is shown only here)", "Webhooks", 200, schema("WebhookEndpoint")),
        ListWebhookDeliveries => Op {
            query: vec![json!({ "name": "limit", "in": "query", "schema": { "type": "integer", "minimum": 1, "maximum": 100, "default": 20 } })],
            ..op("An endpoint's deliveries, newest first: status, attempts, last response code, next try", "Webhooks", 200, list_of("WebhookDelivery"))
        },
        RedeliverWebhook => op("Send a delivery again now (one more attempt, same webhook-id)", "Webhooks", 202, schema("WebhookDelivery")),
    }
}

/// One Server-Sent Event as OpenAPI 3.1 tools read it: `{event, data, id}`, `data` being JSON.
fn stream_event() -> Value {
    let variant = |event: &str, payload: &str| {
        json!({
            "type": "object",
            "required": ["event", "data", "id"],
            "properties": {
                "event": { "const": event },
                "data": { "type": "string", "contentMediaType": "application/json", "contentSchema": schema(payload) },
                "id": { "type": "string", "pattern": "^[1-9][0-9]*$" }
            }
        })
    };
    json!({ "oneOf": [
        variant("progress", "StreamProgressEvent"),
        variant("delta", "StreamDeltaEvent"),
        variant("complete", "StreamCompleteEvent"),
        variant("error", "StreamErrorEvent"),
    ] })
}

fn security(access: Access) -> Option<Value> {
    match access {
        Access::Public | Access::PublicPerIp => None,
        Access::Scoped(_) => Some(json!([{ "bearerAuth": [] }, { "apiKeyHeader": [] }])),
        Access::SessionOnly => Some(json!([{ "bearerAuth": [] }])),
    }
}

fn access_note(access: Access) -> &'static str {
    match access {
        Access::Public => "No authentication.",
        Access::PublicPerIp => "No authentication; attempts are limited per client IP.",
        Access::Scoped(Scope::ReadOnly) => "API key (`read_only` or `full_access`) or session JWT.",
        Access::Scoped(Scope::FullAccess) => "API key with `full_access`, or session JWT.",
        Access::SessionOnly => "Session JWT only; an API key gets 403 FORBIDDEN.",
    }
}

fn rate_headers() -> Value {
    let h = |d: &str| json!({ "$ref": format!("#/components/headers/{d}") });
    json!({
        "X-Request-Id": h("X-Request-Id"),
        "X-RateLimit-Limit": h("X-RateLimit-Limit"),
        "X-RateLimit-Remaining": h("X-RateLimit-Remaining"),
        "X-RateLimit-Reset": h("X-RateLimit-Reset"),
        "X-RateLimit-Window": h("X-RateLimit-Window"),
        "RateLimit": h("RateLimit"),
        "RateLimit-Policy": h("RateLimit-Policy"),
    })
}

/// The success response of a route: its body's schema by kind (envelope, OpenAI shape, SSE).
fn success_response(route: &crate::http::routes::Route, o: &Op) -> Value {
    match &o.data {
        Some(data) => {
            let mut envelope = json!({
                "type": "object", "required": ["success", "data", "meta"],
                "properties": { "success": { "const": true }, "data": data, "meta": schema("Meta") }
            });
            if o.paginated {
                envelope["properties"]["meta"] = schema("PageMeta");
            }
            if route.id == RouteId::Usage {
                envelope["properties"]["meta"] = schema("UsageMeta");
            }
            let content = if route.id == RouteId::OpenApi {
                json!({ "application/json": { "schema": { "type": "object" } } })
            } else if route.id == RouteId::ChatCompletions {
                json!({
                    "application/json": { "schema": data },
                    "text/event-stream": { "schema": { "type": "string",
                        "description": "With `stream: true`: `data: <chat.completion.chunk>` lines (no `event:` lines), the first delta with `role: assistant`, the last choice chunk with `finish_reason`, with `stream_options.include_usage` one more chunk with `choices: []` and `usage`, then `data: [DONE]`. A failure after the stream opened is one `data: {\"error\": …}` line." } }
                })
            } else if route.id == RouteId::ExportConversation {
                json!({
                    "application/json": { "schema": envelope },
                    "text/markdown": { "schema": { "type": "string", "description": "`format=markdown`: the conversation as a Markdown file (`Content-Disposition: attachment`)" } }
                })
            } else if route.shape == Shape::OpenAi {
                json!({ "application/json": { "schema": data } })
            } else {
                json!({ "application/json": { "schema": envelope } })
            };
            json!({ "description": o.summary, "content": content })
        }
        None => json!({
            "description": "`text/event-stream`: `progress` at once, then `delta` per piece of the reply, then `complete` or `error`; each event has an `id:` counting from 1 (the same for every reader of the generation, so a dropped stream resumes with `Last-Event-ID`), and `: ping` comments keep a silent stream open. `X-Message-Id` names the reply.",
            "content": { "text/event-stream": { "schema": stream_event() } }
        }),
    }
}

fn operation(route: &crate::http::routes::Route) -> Value {
    let o = spec(route.id);
    let mut success = success_response(route, &o);
    success["headers"] = rate_headers();
    if o.data.is_none() {
        success["headers"]["X-Message-Id"] = json!({ "description": "The id of the assistant message being streamed", "schema": { "type": "string" } });
    }
    let idempotent = route.method == "POST" && route.access != Access::PublicPerIp;
    if idempotent {
        success["headers"]["Idempotent-Replayed"] = json!({ "description": "`true` when this is a remembered response replayed for a retry", "schema": { "type": "string", "enum": ["true"] } });
    }
    let mut responses = Map::new();
    if route.id == RouteId::SendMessage {
        // `background: true`: the same exchange at once, the reply still `generating`.
        let mut started = success.clone();
        started["description"] =
            json!("Started in the background (`background: true`): the reply is `generating`");
        responses.insert("202".into(), started);
    }
    responses.insert(o.status.to_string(), success);
    let errors = if route.shape == Shape::OpenAi {
        "OpenAIError"
    } else {
        "Error"
    };
    responses.insert(
        "default".into(),
        json!({ "$ref": format!("#/components/responses/{errors}") }),
    );
    let mut params: Vec<Value> = Vec::new();
    for name in route
        .pattern
        .split('/')
        .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
    {
        params.push(
            json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } }),
        );
    }
    params.extend(o.query);
    if idempotent {
        params.push(json!({ "name": "Idempotency-Key", "in": "header", "required": false,
            "description": "Makes a retry safe: the same key with the same request replays the first response (`Idempotent-Replayed: true`) without doing anything again; with another request → 422 IDEMPOTENCY_KEY_REUSED; while the first still runs → 409 IDEMPOTENCY_KEY_IN_USE. Kept 24 h, per account.",
            "schema": { "type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[\\x20-\\x7E]+$" } }));
    }
    let mut v = json!({
        "operationId": format!("{:?}", route.id).chars().enumerate()
            .map(|(i, c)| if i == 0 { c.to_ascii_lowercase() } else { c }).collect::<String>(),
        "summary": o.summary,
        "description": if crate::http::routes::CLIENT_ROUTES.contains(&route.id) {
            format!("{} Also a client token (`tect_…`), for its own twin, end user and conversations.", access_note(route.access))
        } else {
            access_note(route.access).to_owned()
        },
        "tags": [o.tag],
        "parameters": params,
        "responses": responses,
    });
    if let Some(body) = o.body {
        v["requestBody"] =
            json!({ "required": false, "content": { "application/json": { "schema": body } } });
    }
    if route.id == RouteId::AddKnowledge {
        v["requestBody"]["content"]["multipart/form-data"] =
            json!({ "schema": schema("DocumentUpload") });
        v["responses"]["202"] = json!({ "description": "A file or a page, accepted: `processing` until the ingest worker has read it, then `ready` or `failed` with `error`",
            "content": { "application/json": { "schema": { "type": "object", "required": ["data"], "properties": { "data": schema("Document") } } } } });
    }
    match security(route.access) {
        Some(s) => v["security"] = s,
        None => v["security"] = json!([]),
    }
    v
}

pub fn document(version: &str) -> Value {
    let mut paths = Map::new();
    for route in ROUTES {
        let path = format!("{BASE}{}", route.pattern);
        let entry = paths.entry(path).or_insert_with(|| json!({}));
        entry[route.method.to_ascii_lowercase()] = operation(route);
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "TwinExpert API",
            "version": version,
            "description": "Integrate AI twins of human experts into your app: list twins, open conversations, send messages, and stream replies as Server-Sent Events.",
        },
        "servers": [{ "url": "/" }],
        "tags": [
            { "name": "Meta" }, { "name": "Accounts" }, { "name": "API keys" }, { "name": "Twins" },
            { "name": "Knowledge" }, { "name": "Conversations" }, { "name": "Messages" }, { "name": "Usage" }, { "name": "OpenAI-compatible" }
        ],
        "paths": paths,
        "components": components(),
    })
}

fn components() -> Value {
    let int_header = |d: &str| json!({ "description": d, "schema": { "type": "integer" } });
    json!({
        "securitySchemes": {
            "bearerAuth": { "type": "http", "scheme": "bearer",
                "description": "`Authorization: Bearer te_…` (API key), a session JWT from /auth/login, or a client token (`tect_…`, POST /client-tokens)" },
            "apiKeyHeader": { "type": "apiKey", "in": "header", "name": "X-API-Key" }
        },
        "headers": {
            "X-Request-Id": { "description": "Echoed when the client sent a safe one, else generated", "schema": { "type": "string" } },
            "X-RateLimit-Limit": int_header("Requests allowed in the hourly window"),
            "X-RateLimit-Remaining": int_header("Requests left in this window, after this one"),
            "X-RateLimit-Reset": int_header("Unix seconds at which the window resets"),
            "X-RateLimit-Window": int_header("Window length in seconds (3600)"),
            "RateLimit": { "description": "IETF draft: \"hourly\";r=<remaining>;t=<seconds to reset>", "schema": { "type": "string" } },
            "RateLimit-Policy": { "description": "IETF draft: \"hourly\";q=<limit>;w=3600, \"burst\";q=<burst>;w=60", "schema": { "type": "string" } },
            "Retry-After": int_header("On 429: whole seconds to wait (>= 1)")
        },
        "responses": {
            "OpenAIError": {
                "description": "Any error, in OpenAI's shape (these routes only); a 429 also carries `retry-after-ms`",
                "headers": { "X-Request-Id": { "$ref": "#/components/headers/X-Request-Id" },
                             "Retry-After": { "$ref": "#/components/headers/Retry-After" } },
                "content": { "application/json": { "schema": schema("OpenAIErrorBody") } }
            },
            "Error": {
                "description": "Any error, in the error envelope",
                "headers": { "X-Request-Id": { "$ref": "#/components/headers/X-Request-Id" },
                             "Retry-After": { "$ref": "#/components/headers/Retry-After" } },
                "content": { "application/json": { "schema": schema("Error") } }
            }
        },
        "schemas": schemas()
    })
}

pub fn s(t: &str) -> Value {
    json!({ "type": t })
}

/// Nullable.
pub fn ns(t: &str) -> Value {
    json!({ "type": [t, "null"] })
}

pub fn time() -> Value {
    json!({ "type": "string", "format": "date-time" })
}

pub fn ntime() -> Value {
    json!({ "type": ["string", "null"], "format": "date-time" })
}

/// A string field of `len` characters; `extra` adds to it (a pattern, a format, a default).
pub fn text(len: Chars, extra: Value) -> Value {
    let mut field = json!({ "type": "string" });
    if len.min > 0 {
        field["minLength"] = json!(len.min);
    }
    field["maxLength"] = json!(len.max);
    if let (Value::Object(field), Value::Object(extra)) = (&mut field, extra) {
        field.extend(extra);
    }
    field
}

/// Every schema, from the groups below.
fn schemas() -> Value {
    let mut all = Map::new();
    for group in [
        envelope_schemas(),
        crate::auth::schema::schemas(),
        crate::twins::schema::schemas(),
        crate::knowledge::schema::schemas(),
        crate::conversations::schema::schemas(),
        crate::openai::schema::schemas(),
        crate::webhooks::schema::schemas(),
        stream_schemas(),
    ] {
        if let Value::Object(map) = group {
            all.extend(map);
        }
    }
    Value::Object(all)
}

/// The envelopes and their parts.
fn envelope_schemas() -> Value {
    json!({
    "Meta": { "type": "object", "required": ["timestamp", "requestId"],
        "properties": { "timestamp": time(), "requestId": s("string") } },
    "PageMeta": { "type": "object", "required": ["timestamp", "requestId", "pagination"],
        "properties": { "timestamp": time(), "requestId": s("string"), "pagination": schema("Pagination") } },
    "UsageMeta": { "type": "object", "required": ["timestamp", "requestId", "totals"],
        "properties": { "timestamp": time(), "requestId": s("string"), "totals": schema("UsageRow") } },
    "Pagination": { "type": "object", "required": ["limit", "total", "hasMore", "nextCursor"],
        "properties": { "page": { "type": "integer", "description": "A page read by number only" }, "limit": s("integer"), "total": s("integer"),
                        "totalPages": { "type": "integer", "description": "A page read by number only" }, "hasMore": s("boolean"),
                        "nextCursor": { "type": ["string", "null"], "description": "The id to pass for the next page: as startingAfter (or, on a page read with endingBefore, as endingBefore); null when there is none" } } },
    "Error": { "type": "object",
        "required": ["success", "message", "error", "statusCode", "timestamp", "path", "method", "meta", "details"],
        "properties": {
            "success": { "const": false }, "message": s("string"),
            "error": { "type": "string", "enum": ERROR_CODES },
            "statusCode": s("integer"), "timestamp": time(), "path": s("string"), "method": s("string"),
            "meta": schema("Meta"),
            "details": { "type": "object", "description": "VALIDATION_ERROR: {fields: {name: reason}}; INSUFFICIENT_SCOPE: {required, granted}; RATE_LIMIT_EXCEEDED: {reason, retryAfter, limit}" }
        } },
    "Health": { "type": "object", "required": ["status", "version"],
        "properties": { "status": { "const": "ok" }, "version": s("string") } }
    })
}

/// The events of a streamed reply.
fn stream_schemas() -> Value {
    json!({
    "StreamProgressEvent": { "type": "object", "required": ["stage", "userMessageId", "messageId"],
        "description": "event: progress — first at once (`accepted`), then `generating` when the model answers",
        "properties": { "stage": { "type": "string", "enum": ["accepted", "generating"] },
            "userMessageId": s("string"), "messageId": s("string") } },
    "StreamDeltaEvent": { "type": "object", "required": ["content"],
        "description": "event: delta — one piece of the reply, forwarded as it arrives",
        "properties": { "content": s("string") } },
    "StreamCompleteEvent": { "type": "object", "required": ["message", "usage"],
        "description": "event: complete — the stored reply; the stream then ends",
        "properties": { "message": schema("Message"), "usage": { "oneOf": [schema("Usage"), { "type": "null" }] } } },
    "StreamErrorEvent": { "type": "object", "required": ["error", "message", "statusCode"],
        "description": "event: error — the stream then ends; what arrived is stored",
        "properties": { "error": { "type": "string", "enum": ERROR_CODES }, "message": s("string"),
            "statusCode": s("integer") } }
    })
}

/// Where the served copy lives. Regenerate with `UPDATE_OPENAPI=1 cargo test --lib openapi`.
pub const COMMITTED: &str = "src/site/openapi.json";

pub fn pretty(version: &str) -> String {
    let mut text = serde_json::to_string_pretty(&document(version)).expect("serializable");
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_committed_document_is_current() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(COMMITTED);
        let fresh = pretty(env!("CARGO_PKG_VERSION"));
        if std::env::var_os("UPDATE_OPENAPI").is_some() {
            std::fs::write(&path, &fresh).unwrap();
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == fresh,
            "{COMMITTED} is stale: run UPDATE_OPENAPI=1 cargo test --lib openapi"
        );
    }

    #[test]
    fn every_route_has_an_operation_and_every_operation_a_route() {
        let doc = document("test");
        let paths = doc["paths"].as_object().unwrap();
        let mut documented = 0;
        for (path, ops) in paths {
            for (method, _) in ops.as_object().unwrap() {
                documented += 1;
                let pattern = path.strip_prefix(BASE).unwrap();
                assert!(
                    ROUTES
                        .iter()
                        .any(|r| r.pattern == pattern && r.method.eq_ignore_ascii_case(method)),
                    "{method} {path} is documented but not routed"
                );
            }
        }
        assert_eq!(documented, ROUTES.len());
        for r in ROUTES {
            let path = format!("{BASE}{}", r.pattern);
            assert!(
                doc["paths"][&path][r.method.to_ascii_lowercase()].is_object(),
                "{} {path} undocumented",
                r.method
            );
        }
    }

    #[test]
    fn every_reference_resolves() {
        let doc = document("test");
        fn walk(v: &Value, doc: &Value) {
            match v {
                Value::Object(m) => {
                    if let Some(Value::String(r)) = m.get("$ref") {
                        let target = r
                            .trim_start_matches("#/")
                            .split('/')
                            .fold(doc, |node, part| &node[part]);
                        assert!(!target.is_null(), "dangling {r}");
                    }
                    m.values().for_each(|x| walk(x, doc));
                }
                Value::Array(a) => a.iter().for_each(|x| walk(x, doc)),
                _ => {}
            }
        }
        walk(&doc, &doc);
    }

    #[test]
    fn every_error_code_of_the_error_type_is_listed() {
        use super::super::error::{ApiError, LimitReason};
        let samples = [
            ApiError::Validation(Default::default()),
            ApiError::InvalidJson(String::new()),
            ApiError::Unauthorized,
            ApiError::InvalidApiKeyFormat,
            ApiError::InvalidApiKey,
            ApiError::ApiKeyExpired,
            ApiError::InvalidToken,
            ApiError::ClientTokenExpired,
            ApiError::InvalidCredentials,
            ApiError::InsufficientScope {
                required: Scope::FullAccess,
                granted: Scope::ReadOnly,
            },
            ApiError::Forbidden(""),
            ApiError::NotFound(""),
            ApiError::MethodNotAllowed { allow: vec![] },
            ApiError::Conflict(String::new()),
            ApiError::PayloadTooLarge { limit: 1 },
            ApiError::UnsupportedMediaType,
            ApiError::RateLimited {
                reason: LimitReason::Burst,
                retry_after: 1,
                limit: 1,
            },
            ApiError::Internal(String::new()),
            ApiError::Upstream(String::new()),
            ApiError::UpstreamTimeout,
            ApiError::ConversationBusy {
                message_id: String::new(),
            },
            ApiError::GenerationInterrupted,
            ApiError::IdempotencyKeyInUse,
            ApiError::IdempotencyKeyReused,
            ApiError::ApiKeyLimitReached { limit: 1 },
            ApiError::ConcurrencyLimitExceeded {
                limit: 1,
                retry_after: 1,
            },
            ApiError::EndUserLimitExceeded {
                which: "messagesPerHour",
                limit: 1,
                window_secs: 3600,
                retry_after: 1,
            },
            ApiError::TokenQuotaExceeded {
                limit: 1,
                retry_after: 1,
            },
        ];
        let codes: Vec<&str> = samples.iter().map(ApiError::code).collect();
        assert_eq!(codes, ERROR_CODES);
    }
}
