//! Handlers, one module per resource. `dispatch` is the one place a route id meets its handler.

mod api_keys;
mod auth;
mod conversations;
mod health;
mod knowledge;
mod messages;
mod openai;
pub mod site;
mod twins;
mod usage;

use worker::Request;

use crate::core::error::ApiError;
use crate::core::routes::RouteId;
use crate::edge::context::{Ctx, Reply};

pub async fn dispatch(id: RouteId, ctx: &mut Ctx, req: &mut Request) -> Result<Reply, ApiError> {
    match id {
        RouteId::Health => health::get(),
        RouteId::OpenApi => health::openapi(&ctx.env).await,
        RouteId::Register => auth::register(ctx, req).await,
        RouteId::Login => auth::login(ctx, req).await,
        RouteId::Me => auth::me(ctx).await,
        RouteId::CreateApiKey => api_keys::create(ctx, req).await,
        RouteId::ListApiKeys => api_keys::list(ctx).await,
        RouteId::RevokeApiKey => api_keys::revoke(ctx).await,
        RouteId::ListTwins => twins::list(ctx, req).await,
        RouteId::CreateTwin => twins::create(ctx, req).await,
        RouteId::GetTwin => twins::get(ctx).await,
        RouteId::StartConversationWithTwin => conversations::create_for_twin(ctx, req).await,
        RouteId::UpdateTwin => twins::update(ctx, req).await,
        RouteId::DeleteTwin => twins::delete(ctx).await,
        RouteId::CreateConversation => conversations::create(ctx, req).await,
        RouteId::ListConversations => conversations::list(ctx, req).await,
        RouteId::GetConversation => conversations::get(ctx).await,
        RouteId::UpdateConversation => conversations::rename(ctx, req).await,
        RouteId::DeleteConversation => conversations::delete(ctx).await,
        RouteId::ListMessages => conversations::messages(ctx, req).await,
        RouteId::SendMessage => messages::send(ctx, req).await,
        RouteId::StreamMessage => messages::stream(ctx, req).await,
        RouteId::ResumeMessageStream => messages::resume(ctx, req).await,
        RouteId::CancelMessage => messages::cancel(ctx).await,
        RouteId::AddKnowledge => knowledge::create(ctx, req).await,
        RouteId::ListKnowledge => knowledge::list(ctx, req).await,
        RouteId::DeleteKnowledge => knowledge::delete(ctx).await,
        RouteId::Usage => usage::report(ctx, req).await,
        RouteId::ChatCompletions => openai::chat_completions(ctx, req).await,
        RouteId::ListModels => openai::list_models(ctx).await,
        RouteId::GetModel => openai::get_model(ctx).await,
    }
}
