//! `DELETE /end-users/{endUserId}` (SPEC §19): everything the account holds of one end user.
//! Their conversations go, objects first (messages, event logs, a running reply), then the
//! rows; their ratings stay counted in the twins' reports without comment or name; their
//! usage stays in the totals, no longer attributed to them; webhook deliveries and remembered
//! responses that carry their conversations go.

use futures::future::try_join_all;
use serde_json::{json, Value};

use crate::accounts::client as accounts;
use crate::conversations::client::ConversationObject;
use crate::conversations::model::{Activity, Op};
use crate::http::context::{Ctx, Principal};
use crate::http::error::ApiError;
use crate::http::reply::Reply;
use crate::knowledge::client as knowledge;
use crate::knowledge::protocol::Op as TwinOp;
use crate::platform::sqlite::string;
use crate::spend::model as spend;

/// Conversation objects wiped at once.
const PARALLEL: usize = 8;

pub async fn erase(ctx: &Ctx, caller: &Principal, end_user_id: &str) -> Result<Reply, ApiError> {
    let end_user = spend::parse_end_user_id("endUserId", end_user_id)?;
    let user = caller.user_id();
    let store = ctx.store()?;
    let rows = store.end_user_conversations(user, &end_user).await?;
    let ids: Vec<String> = rows.iter().map(|r| string(r, "id").to_owned()).collect();
    let mut messages = 0;
    for chunk in ids.chunks(PARALLEL) {
        let wiped = try_join_all(chunk.iter().map(|id| async move {
            let object = ConversationObject::get(&ctx.env, id)?;
            let activity: Option<Activity> = object.call(&Op::Activity).await?;
            object.call::<bool>(&Op::Wipe).await?;
            Ok::<_, ApiError>(activity.map_or(0, |a| a.message_count))
        }))
        .await?;
        messages += wiped.iter().sum::<i64>();
    }
    let conversations = store.erase_end_user(user, &end_user).await?;
    let mut twins: Vec<&str> = rows.iter().map(|r| string(r, "twin_id")).collect();
    twins.sort_unstable();
    twins.dedup();
    let mut ratings = 0;
    for twin in twins {
        let op = TwinOp::ForgetEndUser {
            end_user_id: end_user.clone(),
        };
        ratings += knowledge::call::<i64>(&ctx.env, twin, op).await?;
    }
    let account: Value = accounts::forget_end_user(&ctx.env, user, &end_user, ids).await?;
    Reply::ok(json!({
        "endUserId": end_user,
        "conversationsDeleted": conversations,
        "messagesDeleted": messages,
        "feedbackAnonymised": ratings,
        "usageRowsAnonymised": account["usageRows"],
        "webhookDeliveriesDeleted": account["webhookDeliveries"],
    }))
}
