//! `dispatch` is the one place a route id meets its handler, which lives in its resource's slice.

use crate::platform::request::Request;

use crate::auth::client_handlers as client_tokens;
use crate::auth::handlers as auth;
use crate::auth::key_handlers as api_keys;
use crate::conversations::erasure;
use crate::conversations::handlers as conversations;
use crate::conversations::messages;
use crate::feedback::handlers as feedback;
use crate::http::health;
use crate::knowledge::handlers as knowledge;
use crate::openai::handlers as openai;
use crate::spend::handlers as usage;
use crate::twins::handlers as twins;
use crate::webhooks::handlers as webhooks;

use crate::http::context::{Call, Ctx};
use crate::http::error::ApiError;
use crate::http::reply::Reply;
use crate::http::routes::RouteId;

/// Calls the route's handler with what its access rule and pattern guarantee: the caller (on
/// every authenticated route) and the path's ids, so no handler checks them again.
pub async fn dispatch(
    id: RouteId,
    ctx: &Ctx,
    call: &Call,
    req: &mut Request,
) -> Result<Reply, ApiError> {
    use RouteId::*;
    match id {
        Health => return health::get(),
        OpenApi => return health::openapi(&ctx.env).await,
        Register => return auth::register(ctx, req).await,
        Login => return auth::login(ctx, req).await,
        _ => {}
    }
    // The pipeline authenticated the caller and matched the pattern before calling here.
    let caller = call.principal.as_ref().ok_or(ApiError::Unauthorized)?;
    let params = &call.params;
    let path_id = || {
        params
            .id()
            .ok_or_else(|| ApiError::internal("route without its {id}"))
    };
    let child_id = || {
        params
            .child_id()
            .ok_or_else(|| ApiError::internal("route without its child id"))
    };
    match id {
        Health | OpenApi | Register | Login => unreachable!("answered above"),
        Me => auth::me(ctx, caller).await,
        CreateApiKey => api_keys::create(ctx, caller, req).await,
        ListApiKeys => api_keys::list(ctx, caller).await,
        RevokeApiKey => api_keys::revoke(ctx, caller, path_id()?).await,
        UpdateApiKey => api_keys::update(ctx, caller, path_id()?, req).await,
        CreateClientToken => client_tokens::create(ctx, caller, req).await,
        ListTwins => twins::list(ctx, caller, req).await,
        CreateTwin => twins::create(ctx, caller, req).await,
        GetTwin => twins::get(ctx, caller, path_id()?).await,
        StartConversationWithTwin => {
            conversations::create_for_twin(ctx, caller, path_id()?, req).await
        }
        UpdateTwin => twins::update(ctx, caller, path_id()?, req).await,
        DeleteTwin => twins::delete(ctx, caller, path_id()?).await,
        AddKnowledge => knowledge::create(ctx, caller, path_id()?, req).await,
        ListKnowledge => knowledge::list(ctx, caller, path_id()?, req).await,
        DeleteKnowledge => knowledge::delete(ctx, caller, path_id()?, child_id()?).await,
        GetKnowledge => knowledge::get(ctx, caller, path_id()?, child_id()?).await,
        RefreshKnowledge => knowledge::refresh(ctx, caller, path_id()?, child_id()?).await,
        SearchKnowledge => knowledge::search(ctx, caller, path_id()?, req).await,
        CreateConversation => conversations::create(ctx, caller, req).await,
        ListConversations => conversations::list(ctx, caller, req).await,
        GetConversation => conversations::get(ctx, caller, path_id()?).await,
        UpdateConversation => conversations::rename(ctx, caller, path_id()?, req).await,
        DeleteConversation => conversations::delete(ctx, caller, path_id()?).await,
        ListMessages => conversations::messages(ctx, caller, path_id()?, req).await,
        SendMessage => messages::send(ctx, caller, path_id()?, call, req, false).await,
        StreamMessage => messages::send(ctx, caller, path_id()?, call, req, true).await,
        ResumeMessageStream => messages::resume(ctx, caller, path_id()?, child_id()?, req).await,
        CancelMessage => messages::cancel(ctx, caller, path_id()?, child_id()?).await,
        RateMessage => feedback::rate(ctx, caller, path_id()?, child_id()?, req).await,
        ExportConversation => conversations::export(ctx, caller, path_id()?, req).await,
        TwinFeedback => feedback::report(ctx, caller, path_id()?, req).await,
        EraseEndUser => erasure::erase(ctx, caller, path_id()?).await,
        Usage => usage::report(ctx, caller, req).await,
        ChatCompletions => openai::chat_completions(ctx, caller, call, req).await,
        ListModels => openai::list_models(ctx, caller).await,
        GetModel => openai::get_model(ctx, caller, path_id()?).await,
        ListWebhooks
        | CreateWebhook
        | GetWebhook
        | UpdateWebhook
        | DeleteWebhook
        | RotateWebhookSecret
        | ListWebhookDeliveries
        | RedeliverWebhook => webhooks::call(ctx, caller, id, params, req).await,
    }
}
