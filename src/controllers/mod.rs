//! Handlers, one module per resource. `dispatch` is the one place a route id meets its handler.

mod api_keys;
mod auth;
mod health;
pub mod site;

use worker::Request;

use crate::core::error::ApiError;
use crate::core::routes::RouteId;
use crate::edge::context::{Ctx, Reply};

pub async fn dispatch(id: RouteId, ctx: &mut Ctx, req: &mut Request) -> Result<Reply, ApiError> {
    match id {
        RouteId::Health => health::get(),
        RouteId::Register => auth::register(ctx, req).await,
        RouteId::Login => auth::login(ctx, req).await,
        RouteId::Me => auth::me(ctx).await,
        RouteId::CreateApiKey => api_keys::create(ctx, req).await,
        RouteId::ListApiKeys => api_keys::list(ctx).await,
        RouteId::RevokeApiKey => api_keys::revoke(ctx).await,
    }
}
