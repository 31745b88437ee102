//! Usage: each turn adds itself to the account's daily totals (one small upsert when it ends),
//! so a report reads aggregates, never every message.

use serde::Deserialize;
use serde_json::Value;

use crate::platform::d1::params;

use crate::platform::d1::Param;

use crate::platform::d1::Store;

use crate::knowledge::model::Source;
use crate::platform::d1::StoreResult;
use crate::spend::model::{usage_row, TurnUsage, UsageCounts, UsageDelta, UsageQuery};

/// One group of a usage report, as D1 sums it.
#[derive(Debug, Deserialize)]
struct Group {
    k: String,
    requests: i64,
    prompt_tokens: i64,
    completion_tokens: i64,
    total_tokens: i64,
    estimated_tokens: i64,
}

impl From<&Group> for UsageCounts {
    fn from(g: &Group) -> UsageCounts {
        UsageCounts {
            requests: g.requests,
            prompt_tokens: g.prompt_tokens,
            completion_tokens: g.completion_tokens,
            total_tokens: g.total_tokens,
            estimated_tokens: g.estimated_tokens,
        }
    }
}

impl Store {
    /// The account's tokens on `day`, as a statement to batch with a turn's other read.
    pub fn used_on(&self, user_id: &str, day: &str) -> StoreResult<worker::D1PreparedStatement> {
        self.stmt(
            "SELECT COALESCE(SUM(total_tokens), 0) AS n FROM usage_daily WHERE user_id = ?1 AND day = ?2",
            &params![user_id, day],
        )
    }

    /// Runs a turn's read (`context`), the day's usage and the knowledge retrieval (if the
    /// message has searchable words) in one round trip.
    pub async fn with_usage<T: serde::de::DeserializeOwned>(
        &self,
        context: worker::D1PreparedStatement,
        user_id: &str,
        day: &str,
        retrieval: Option<worker::D1PreparedStatement>,
    ) -> StoreResult<Option<((T, Vec<Source>), u64)>> {
        #[derive(Deserialize)]
        struct Used {
            n: u64,
        }
        let mut stmts = vec![context, self.used_on(user_id, day)?];
        stmts.extend(retrieval);
        let results = self.batch(stmts).await?;
        let Some(context) = results[0].results::<T>()?.into_iter().next() else {
            return Ok(None);
        };
        let used = results[1].results::<Used>()?.first().map_or(0, |u| u.n);
        let sources = match results.get(2) {
            Some(r) => crate::knowledge::store::sources(r)?,
            None => Vec::new(),
        };
        Ok(Some(((context, sources), used)))
    }

    /// Adds `d` to the turn's group of the account's usage on `day`.
    pub async fn add_usage(&self, day: &str, t: &TurnUsage, d: UsageDelta) -> StoreResult<()> {
        self.run(
            "INSERT INTO usage_daily (user_id, day, api_key_id, twin_id, end_user_id, requests, \
               prompt_tokens, completion_tokens, total_tokens, estimated_tokens) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?10, ?6, ?7, ?8, ?9) \
             ON CONFLICT (user_id, day, api_key_id, twin_id, end_user_id) DO UPDATE SET \
               requests = requests + ?10, prompt_tokens = prompt_tokens + ?6, \
               completion_tokens = completion_tokens + ?7, total_tokens = total_tokens + ?8, \
               estimated_tokens = estimated_tokens + ?9",
            &params![
                &t.user_id,
                day,
                // '' stands for "none" in the key columns (NULLs would not conflict).
                t.api_key_id.as_deref().unwrap_or(""),
                &t.twin_id,
                t.end_user_id.as_deref().unwrap_or(""),
                d.prompt_tokens,
                d.completion_tokens,
                d.prompt_tokens + d.completion_tokens,
                d.estimated_tokens,
                d.requests,
            ],
        )
        .await
        .map(|_| ())
    }

    /// The report's groups and totals; `api_key_id` narrows it to one key's own usage.
    pub async fn usage_report(
        &self,
        user_id: &str,
        api_key_id: Option<&str>,
        q: &UsageQuery,
    ) -> StoreResult<(Vec<Value>, Value)> {
        let (column, _) = q.group_by.column_and_field();
        let key_filter = if api_key_id.is_some() {
            " AND api_key_id = ?4"
        } else {
            ""
        };
        let sql = format!(
            "SELECT {column} AS k, SUM(requests) AS requests, SUM(prompt_tokens) AS prompt_tokens, \
               SUM(completion_tokens) AS completion_tokens, SUM(total_tokens) AS total_tokens, \
               SUM(estimated_tokens) AS estimated_tokens \
             FROM usage_daily WHERE user_id = ?1 AND day BETWEEN ?2 AND ?3{key_filter} \
             GROUP BY {column} ORDER BY {column}"
        );
        let mut args = params![user_id, &q.from, &q.to].to_vec();
        if let Some(k) = api_key_id {
            args.push(k.js());
        }
        let groups: Vec<Group> = self.all(&sql, &args).await?;
        let mut totals = UsageCounts::default();
        let rows = groups
            .into_iter()
            .map(|g| {
                let counts = UsageCounts::from(&g);
                totals += counts;
                usage_row(q.group_by, Some(g.k).filter(|k| !k.is_empty()), counts)
            })
            .collect();
        let totals = serde_json::to_value(totals)?;
        Ok((rows, totals))
    }
}
