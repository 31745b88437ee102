//! The one route table of the API. The edge dispatches on `RouteId`; everything else a
//! route needs to know before its handler runs (who may call it) is declared here.

use crate::auth::credentials::Scope;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteId {
    Health,
    OpenApi,
    Register,
    Login,
    Me,
    CreateApiKey,
    ListApiKeys,
    RevokeApiKey,
    UpdateApiKey,
    CreateClientToken,
    ListTwins,
    CreateTwin,
    GetTwin,
    StartConversationWithTwin,
    UpdateTwin,
    DeleteTwin,
    AddKnowledge,
    ListKnowledge,
    DeleteKnowledge,
    GetKnowledge,
    RefreshKnowledge,
    SearchKnowledge,
    CreateConversation,
    ListConversations,
    GetConversation,
    UpdateConversation,
    DeleteConversation,
    ListMessages,
    SendMessage,
    StreamMessage,
    ResumeMessageStream,
    CancelMessage,
    RateMessage,
    ExportConversation,
    TwinFeedback,
    EraseEndUser,
    Usage,
    ChatCompletions,
    ListModels,
    GetModel,
    ListWebhooks,
    CreateWebhook,
    GetWebhook,
    UpdateWebhook,
    DeleteWebhook,
    RotateWebhookSecret,
    ListWebhookDeliveries,
    RedeliverWebhook,
}

/// What a route does, as far as the pipeline cares before and after its handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Its only effect is its JSON answer (no stream): the pipeline may start it before the
    /// caller's verification returns, since the answer is dropped unless the verdict admits
    /// that same caller (`http::pipeline::ahead`).
    Read,
    /// A read that streams (a resumed reply).
    Stream,
    /// Changes something; under `Idempotency-Key` its answer is remembered.
    Write,
    /// A write whose answer carries a secret (a JWT, a new key's plaintext): never cached,
    /// and the secret is not remembered with it.
    Secret,
    /// Starts a conversation's turn: a retry while the turn runs is answered by the
    /// conversation's object (its stream from event 1, or its result).
    Turn { stream: bool },
}

/// The body's shape: the envelope, or OpenAI's (errors included) on the compatible routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Envelope,
    OpenAi,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No credentials needed.
    Public,
    /// No credentials; attempts are limited per client IP (login, register).
    PublicPerIp,
    /// An API key with at least this scope, or a session JWT (which acts as `full_access`).
    Scoped(Scope),
    /// A session JWT only; an API key gets 403 FORBIDDEN.
    SessionOnly,
}

#[derive(Debug)]
pub struct Route {
    pub method: &'static str,
    pub pattern: &'static str,
    pub id: RouteId,
    pub access: Access,
    pub effect: Effect,
    pub shape: Shape,
}

const fn route(
    method: &'static str,
    pattern: &'static str,
    id: RouteId,
    access: Access,
    effect: Effect,
    shape: Shape,
) -> Route {
    Route {
        method,
        pattern,
        id,
        access,
        effect,
        shape,
    }
}

pub const BASE: &str = "/api/v1";

use Access::*;
use Effect::*;
use RouteId::*;
use Shape::*;

// One line per route, so the table reads as the API's index: method, path, handler, who may
// call it, what it does (`Effect`), the shape of its bodies.
#[rustfmt::skip]
pub static ROUTES: &[Route] = &[
    route("GET",    "/health",                                         Health,                    Public,                    Read,                   Envelope),
    route("GET",    "/openapi.json",                                   OpenApi,                   Public,                    Read,                   Envelope),
    route("POST",   "/auth/register",                                  Register,                  PublicPerIp,               Secret,                 Envelope),
    route("POST",   "/auth/login",                                     Login,                     PublicPerIp,               Secret,                 Envelope),
    route("GET",    "/auth/me",                                        Me,                        Scoped(Scope::ReadOnly),   Read,                   Envelope),
    route("POST",   "/auth/api-keys",                                  CreateApiKey,              SessionOnly,               Secret,                 Envelope),
    route("GET",    "/auth/api-keys",                                  ListApiKeys,               SessionOnly,               Read,                   Envelope),
    route("DELETE", "/auth/api-keys/{id}",                             RevokeApiKey,              SessionOnly,               Write,                  Envelope),
    route("PATCH",  "/auth/api-keys/{id}",                             UpdateApiKey,              SessionOnly,               Write,                  Envelope),
    route("POST",   "/client-tokens",                                  CreateClientToken,         Scoped(Scope::FullAccess), Secret,                 Envelope),
    route("GET",    "/twins",                                          ListTwins,                 Scoped(Scope::ReadOnly),   Read,                   Envelope),
    route("POST",   "/twins",                                          CreateTwin,                SessionOnly,               Write,                  Envelope),
    route("GET",    "/twins/{id}",                                     GetTwin,                   Scoped(Scope::ReadOnly),   Read,                   Envelope),
    route("POST",   "/twins/{id}",                                     StartConversationWithTwin, Scoped(Scope::FullAccess), Write,                  Envelope),
    route("PATCH",  "/twins/{id}",                                     UpdateTwin,                SessionOnly,               Write,                  Envelope),
    route("DELETE", "/twins/{id}",                                     DeleteTwin,                SessionOnly,               Write,                  Envelope),
    route("POST",   "/twins/{id}/knowledge",                           AddKnowledge,              SessionOnly,               Write,                  Envelope),
    route("GET",    "/twins/{id}/knowledge",                           ListKnowledge,             SessionOnly,               Read,                   Envelope),
    route("DELETE", "/twins/{id}/knowledge/{docId}",                   DeleteKnowledge,           SessionOnly,               Write,                  Envelope),
    route("GET",    "/twins/{id}/knowledge/{docId}",                   GetKnowledge,              SessionOnly,               Read,                   Envelope),
    route("POST",   "/twins/{id}/knowledge/{docId}/refresh",           RefreshKnowledge,          SessionOnly,               Write,                  Envelope),
    route("POST",   "/twins/{id}/knowledge/search",                    SearchKnowledge,           SessionOnly,               Write,                  Envelope),
    route("POST",   "/conversations",                                  CreateConversation,        Scoped(Scope::FullAccess), Write,                  Envelope),
    route("GET",    "/conversations",                                  ListConversations,         Scoped(Scope::ReadOnly),   Read,                   Envelope),
    route("GET",    "/conversations/{id}",                             GetConversation,           Scoped(Scope::ReadOnly),   Read,                   Envelope),
    route("PATCH",  "/conversations/{id}",                             UpdateConversation,        Scoped(Scope::FullAccess), Write,                  Envelope),
    route("DELETE", "/conversations/{id}",                             DeleteConversation,        Scoped(Scope::FullAccess), Write,                  Envelope),
    route("GET",    "/conversations/{id}/messages",                    ListMessages,              Scoped(Scope::ReadOnly),   Read,                   Envelope),
    route("POST",   "/conversations/{id}/messages",                    SendMessage,               Scoped(Scope::FullAccess), Turn { stream: false }, Envelope),
    route("POST",   "/conversations/{id}/messages/stream",             StreamMessage,             Scoped(Scope::FullAccess), Turn { stream: true },  Envelope),
    route("GET",    "/conversations/{id}/messages/{messageId}/stream", ResumeMessageStream,       Scoped(Scope::ReadOnly),   Stream,                 Envelope),
    route("POST",   "/conversations/{id}/messages/{messageId}/cancel", CancelMessage,             Scoped(Scope::FullAccess), Write,                  Envelope),
    route("POST",   "/conversations/{id}/messages/{messageId}/feedback", RateMessage,           Scoped(Scope::FullAccess), Write,                  Envelope),
    route("GET",    "/conversations/{id}/export",                      ExportConversation,        Scoped(Scope::ReadOnly),   Read,                   Envelope),
    route("GET",    "/twins/{id}/feedback",                            TwinFeedback,              Scoped(Scope::ReadOnly),   Read,                   Envelope),
    route("DELETE", "/end-users/{endUserId}",                          EraseEndUser,              SessionOnly,               Write,                  Envelope),
    route("GET",    "/usage",                                          Usage,                     Scoped(Scope::ReadOnly),   Read,                   Envelope),
    route("POST",   "/chat/completions",                               ChatCompletions,           Scoped(Scope::FullAccess), Write,                  OpenAi),
    route("GET",    "/models",                                         ListModels,                Scoped(Scope::ReadOnly),   Read,                   OpenAi),
    route("GET",    "/models/{id}",                                    GetModel,                  Scoped(Scope::ReadOnly),   Read,                   OpenAi),
    route("GET",    "/webhooks",                                       ListWebhooks,              SessionOnly,               Read,                   Envelope),
    route("POST",   "/webhooks",                                       CreateWebhook,             SessionOnly,               Secret,                 Envelope),
    route("GET",    "/webhooks/{id}",                                  GetWebhook,                SessionOnly,               Read,                   Envelope),
    route("PATCH",  "/webhooks/{id}",                                  UpdateWebhook,             SessionOnly,               Write,                  Envelope),
    route("DELETE", "/webhooks/{id}",                                  DeleteWebhook,             SessionOnly,               Write,                  Envelope),
    route("POST",   "/webhooks/{id}/rotate-secret",                    RotateWebhookSecret,       SessionOnly,               Secret,                 Envelope),
    route("GET",    "/webhooks/{id}/deliveries",                       ListWebhookDeliveries,     SessionOnly,               Read,                   Envelope),
    route("POST",   "/webhooks/{id}/deliveries/{deliveryId}/redeliver", RedeliverWebhook,         SessionOnly,               Write,                  Envelope),
];

/// What a client token may call (SPEC §16), each only on its own twin, end user and
/// conversations (the handlers check which); every other route answers it 403.
pub const CLIENT_ROUTES: &[RouteId] = &[
    GetTwin,
    StartConversationWithTwin,
    CreateConversation,
    GetConversation,
    ListMessages,
    SendMessage,
    StreamMessage,
    ResumeMessageStream,
    CancelMessage,
    RateMessage,
];

/// The `{…}` segments of a matched path, in order: the resource id, then a child's id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PathParams(Vec<String>);

impl PathParams {
    pub fn id(&self) -> Option<&str> {
        self.0.first().map(String::as_str)
    }

    pub fn child_id(&self) -> Option<&str> {
        self.0.get(1).map(String::as_str)
    }
}

#[derive(Debug, PartialEq)]
pub enum Resolved {
    Found {
        route: &'static Route,
        params: PathParams,
    },
    /// The path exists but not with this method; `allow` lists the methods it has.
    MethodNotAllowed {
        allow: Vec<&'static str>,
    },
    NotFound,
}

impl PartialEq for Route {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

/// Matches `path` (already known to start with `/api/v1`) against the table.
/// `{id}` matches one non-empty segment; a single trailing slash is ignored.
pub fn resolve(method: &str, path: &str) -> Resolved {
    let Some(rest) = path.strip_prefix(BASE) else {
        return Resolved::NotFound;
    };
    let rest = if rest.len() > 1 {
        rest.strip_suffix('/').unwrap_or(rest)
    } else {
        rest
    };
    let mut allow = Vec::new();
    for route in ROUTES {
        let Some(params) = match_pattern(route.pattern, rest) else {
            continue;
        };
        if route.method == method || (method == "HEAD" && route.method == "GET") {
            return Resolved::Found { route, params };
        }
        allow.push(route.method);
    }
    if allow.is_empty() {
        Resolved::NotFound
    } else {
        allow.push("OPTIONS");
        Resolved::MethodNotAllowed { allow }
    }
}

/// The methods a path answers to, for `Allow` and CORS preflight.
pub fn methods_for(path: &str) -> Vec<&'static str> {
    match resolve("\u{0}", path) {
        Resolved::MethodNotAllowed { allow } => allow,
        _ => Vec::new(),
    }
}

/// `Some(params)` when the pattern matches; each `{name}` takes one non-empty segment.
fn match_pattern(pattern: &str, path: &str) -> Option<PathParams> {
    let mut params = Vec::new();
    let mut pat = pattern.split('/');
    let mut seg = path.split('/');
    loop {
        match (pat.next(), seg.next()) {
            (None, None) => return Some(PathParams(params)),
            (Some(p), Some(s)) if p.starts_with('{') && !s.is_empty() => params.push(s.to_owned()),
            (Some(p), Some(s)) if p == s => {}
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_reads_are_authenticated_gets_that_do_not_stream() {
        let reads: Vec<_> = ROUTES.iter().filter(|r| r.effect == Read).collect();
        assert_eq!(reads.len(), 19);
        for r in reads {
            assert_eq!(r.method, "GET", "{r:?}");
            assert!(!r.pattern.ends_with("/stream"), "{r:?}");
        }
    }

    #[test]
    fn finds_routes_and_params() {
        let Resolved::Found { route, params } = resolve("DELETE", "/api/v1/auth/api-keys/key_1")
        else {
            panic!()
        };
        assert_eq!(route.id, RevokeApiKey);
        assert_eq!(params.id(), Some("key_1"));
        let Resolved::Found { route, params } =
            resolve("POST", "/api/v1/conversations/conv_1/messages/msg_2/cancel")
        else {
            panic!()
        };
        assert_eq!(route.id, CancelMessage);
        assert_eq!(
            (params.id(), params.child_id()),
            (Some("conv_1"), Some("msg_2"))
        );
        // A literal segment is not a parameter: `/messages/stream` stays the POST route.
        assert_eq!(
            resolve("GET", "/api/v1/conversations/c/messages/stream"),
            Resolved::MethodNotAllowed {
                allow: vec!["POST", "OPTIONS"]
            }
        );
        assert!(matches!(
            resolve("GET", "/api/v1/health/"),
            Resolved::Found { .. }
        ));
        assert!(matches!(
            resolve("HEAD", "/api/v1/health"),
            Resolved::Found { .. }
        ));
    }

    #[test]
    fn wrong_method_lists_allowed_ones() {
        assert_eq!(
            resolve("PUT", "/api/v1/auth/api-keys"),
            Resolved::MethodNotAllowed {
                allow: vec!["POST", "GET", "OPTIONS"]
            }
        );
        assert_eq!(methods_for("/api/v1/health"), vec!["GET", "OPTIONS"]);
    }

    #[test]
    fn unknown_paths_are_not_found() {
        assert_eq!(resolve("GET", "/api/v1/nope"), Resolved::NotFound);
        assert_eq!(
            resolve("GET", "/api/v1/auth/api-keys//"),
            Resolved::NotFound
        );
        assert_eq!(
            resolve("DELETE", "/api/v1/auth/api-keys/"),
            Resolved::MethodNotAllowed {
                allow: vec!["POST", "GET", "OPTIONS"]
            }
        );
        assert_eq!(resolve("GET", "/elsewhere"), Resolved::NotFound);
    }

    #[test]
    fn patterns_are_unique() {
        for (i, a) in ROUTES.iter().enumerate() {
            for b in &ROUTES[i + 1..] {
                assert!(
                    !(a.method == b.method && a.pattern == b.pattern),
                    "{a:?} twice"
                );
            }
        }
    }
}
