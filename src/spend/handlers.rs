//! `GET /usage`: the account's (or, with an API key, that key's own) tokens by day, key, twin
//! or end user, from the daily aggregates each turn adds to in the account's object.

use crate::accounts::client as accounts;
use crate::platform::request::Request;

use crate::http::context::{Ctx, Principal};
use crate::http::envelope::ExtraMeta;
use crate::http::error::ApiError;
use crate::http::reply::Reply;
use crate::platform::request::query_params;
use crate::spend::model::UsageQuery;

pub async fn report(ctx: &Ctx, caller: &Principal, req: &Request) -> Result<Reply, ApiError> {
    let params = query_params(req);
    let param = |name: &str| {
        params
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    };
    let query = UsageQuery::parse(param("from"), param("to"), param("groupBy"), ctx.now_ms)?;
    let mut report = accounts::report(&ctx.env, caller.user_id(), caller.key_id(), &query).await?;
    Ok(Reply::Json {
        status: 200,
        data: report["rows"].take(),
        meta: ExtraMeta::Totals(report["totals"].take()),
    })
}
