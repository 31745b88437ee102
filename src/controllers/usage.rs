//! `GET /usage`: the account's (or, with an API key, that key's own) tokens by day, key, twin
//! or end user, from the daily aggregates each turn adds to when it ends.

use crate::edge::request::Request;

use crate::core::envelope::ExtraMeta;
use crate::core::error::ApiError;
use crate::core::spend::UsageQuery;
use crate::edge::context::{Ctx, Principal};
use crate::edge::reply::Reply;
use crate::edge::request::query_params;

pub async fn report(ctx: &mut Ctx, caller: &Principal, req: &Request) -> Result<Reply, ApiError> {
    let params = query_params(req);
    let param = |name: &str| {
        params
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    };
    let query = UsageQuery::parse(param("from"), param("to"), param("groupBy"), ctx.now_ms)?;
    let principal = caller;
    let (rows, totals) = ctx
        .store()?
        .usage_report(principal.user_id(), principal.key_id(), &query)
        .await?;
    Ok(Reply::Json {
        status: 200,
        data: serde_json::Value::Array(rows),
        meta: ExtraMeta::Totals(totals),
    })
}
