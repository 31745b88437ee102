//! Spend controls and usage (docs/usage.md): end-user ids and how they reach the model, UTC days
//! and the quota's `Retry-After`, the usage report's query, and the allowed models.

use chrono::{DateTime, Days, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::http::error::ApiError;
use crate::http::validate::{chars, Chars};

pub const END_USER_RULE: &str = "must be 1 to 64 characters of letters, digits and . _ : @ -";
/// `endUserId`'s length (its characters are `END_USER_CHARS`).
pub const END_USER_ID: Chars = chars(1, 64);
pub const END_USER_CHARS: &str = "A-Za-z0-9._:@-";

/// `endUserId` as a JSON Schema pattern.
pub fn end_user_pattern() -> String {
    format!(
        "^[{END_USER_CHARS}]{{{},{}}}$",
        END_USER_ID.min, END_USER_ID.max
    )
}

/// `endUserId`: 1..64 characters of `[A-Za-z0-9._:@-]`.
pub fn is_end_user_id(value: &str) -> bool {
    (END_USER_ID.min..=END_USER_ID.max).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".:_@-".contains(&b))
}

pub fn parse_end_user_id(field: &str, value: &str) -> Result<String, ApiError> {
    if !is_end_user_id(value) {
        return Err(ApiError::field(field, END_USER_RULE));
    }
    Ok(value.to_owned())
}

/// What the model provider sees of an end user: hex SHA-256 of `account:endUser`, never the id.
pub fn upstream_user(account_id: &str, end_user_id: Option<&str>) -> String {
    let text = format!("{account_id}:{}", end_user_id.unwrap_or(""));
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn utc(now_ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(now_ms).unwrap_or_default()
}

/// The UTC day of `now_ms`, as `YYYY-MM-DD` (the date part of its RFC 3339 form; chrono's
/// strftime machinery would cost the wasm tens of KB).
pub fn utc_day(now_ms: i64) -> String {
    crate::platform::time::rfc3339_ms(now_ms)[..10].to_owned()
}

/// Whole seconds from `now_ms` to the next UTC midnight (at least 1).
pub fn secs_to_utc_midnight(now_ms: i64) -> u64 {
    let ms_per_day = 86_400_000;
    let left = ms_per_day - now_ms.rem_euclid(ms_per_day);
    (left as u64).div_ceil(1000).max(1)
}

/// Limits a key sets on each end user it serves (SPEC §16); either may be unset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EndUserLimits {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messages_per_hour: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_per_day: Option<u64>,
}

pub const MAX_MESSAGES_PER_HOUR: i64 = 100_000;
pub const MAX_TOKENS_PER_DAY: i64 = 1_000_000_000;

impl EndUserLimits {
    /// `endUserLimits` of a key update: `null` (or `{}`) clears them.
    pub fn parse(v: &serde_json::Value) -> Result<Option<EndUserLimits>, ApiError> {
        if v.is_null() {
            return Ok(None);
        }
        let Some(obj) = v.as_object() else {
            return Err(ApiError::field(
                "endUserLimits",
                "must be an object {messagesPerHour?, tokensPerDay?} or null",
            ));
        };
        let mut f = crate::http::validate::Fields::new(obj);
        let messages = f.opt_int("messagesPerHour", 1, MAX_MESSAGES_PER_HOUR);
        let tokens = f.opt_int("tokensPerDay", 1, MAX_TOKENS_PER_DAY);
        for name in obj.keys() {
            if name != "messagesPerHour" && name != "tokensPerDay" {
                f.fail(name, "is not a limit (messagesPerHour, tokensPerDay)");
            }
        }
        f.finish()?;
        let limits = EndUserLimits {
            messages_per_hour: messages.map(|n| n as u64),
            tokens_per_day: tokens.map(|n| n as u64),
        };
        Ok((limits != EndUserLimits::default()).then_some(limits))
    }
}

/// `ALLOWED_MODELS` (comma-separated), or `DEFAULT_MODEL` alone when unset.
/// `endUserId`, checked with the other fields of a body.
pub fn end_user_field(f: &mut crate::http::validate::Fields) -> Option<String> {
    let id = f.opt_string("endUserId", END_USER_ID)?;
    if is_end_user_id(&id) {
        Some(id)
    } else {
        f.fail("endUserId", END_USER_RULE);
        None
    }
}

pub fn allowed_models(list: Option<&str>, default_model: &str) -> Vec<String> {
    let models: Vec<String> = list
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .map(str::to_owned)
        .collect();
    if models.is_empty() {
        vec![default_model.to_owned()]
    } else {
        models
    }
}

pub fn check_model(model: Option<&str>, allowed: &[String]) -> Result<(), ApiError> {
    match model {
        Some(m) if !allowed.iter().any(|a| a == m) => Err(ApiError::field(
            "model",
            &format!("must be one of: {}", allowed.join(", ")),
        )),
        _ => Ok(()),
    }
}

/// The model a turn calls: the twin's own, else the default; re-checked against
/// `ALLOWED_MODELS` at every turn, so a model taken off the list stops being called at once.
pub fn turn_model(
    twin_model: Option<String>,
    spend: &crate::config::Spend,
) -> Result<String, ApiError> {
    let model = twin_model.unwrap_or_else(|| spend.default_model.clone());
    if spend.allowed_models.contains(&model) {
        Ok(model)
    } else {
        Err(ApiError::Conflict(format!(
            "This twin's model {model:?} is no longer offered; set the twin's model to one of: {}",
            spend.allowed_models.join(", ")
        )))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum GroupBy {
    Day,
    ApiKey,
    Twin,
    EndUser,
}

impl GroupBy {
    /// The usage table's column, and the report field it fills.
    pub fn column_and_field(self) -> (&'static str, &'static str) {
        match self {
            GroupBy::Day => ("day", "day"),
            GroupBy::ApiKey => ("api_key_id", "apiKeyId"),
            GroupBy::Twin => ("twin_id", "twinId"),
            GroupBy::EndUser => ("end_user_id", "endUserId"),
        }
    }
}

/// Token counts of a usage group, or the report's totals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageCounts {
    pub requests: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub total_tokens: i64,
    pub estimated_tokens: i64,
}

impl std::ops::AddAssign for UsageCounts {
    fn add_assign(&mut self, o: UsageCounts) {
        self.requests += o.requests;
        self.prompt_tokens += o.prompt_tokens;
        self.completion_tokens += o.completion_tokens;
        self.total_tokens += o.total_tokens;
        self.estimated_tokens += o.estimated_tokens;
    }
}

/// One row of a usage report: its group's value under the grouping's field (`day`,
/// `apiKeyId`, `twinId` or `endUserId`; `null` for none) and its counts.
pub fn usage_row(group_by: GroupBy, key: Option<String>, counts: UsageCounts) -> serde_json::Value {
    let mut row = serde_json::to_value(counts).unwrap_or_default();
    row[group_by.column_and_field().1] = key.map_or(serde_json::Value::Null, Into::into);
    row
}

/// A report from its groups (the grouping column's value, `""` for none, and its sums): the rows
/// in the group's order and the totals.
pub fn report(
    group_by: GroupBy,
    groups: impl IntoIterator<Item = (String, UsageCounts)>,
) -> (Vec<serde_json::Value>, UsageCounts) {
    let mut totals = UsageCounts::default();
    let rows = groups
        .into_iter()
        .map(|(key, counts)| {
            totals += counts;
            usage_row(group_by, Some(key).filter(|k| !k.is_empty()), counts)
        })
        .collect();
    (rows, totals)
}

/// `GET /usage`'s query: an inclusive range of UTC days (at most 366) and the grouping.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageQuery {
    pub from: String,
    pub to: String,
    pub group_by: GroupBy,
}

pub const MAX_RANGE_DAYS: i64 = 366;

fn parse_day(field: &str, v: &str) -> Result<NaiveDate, ApiError> {
    let b = v.as_bytes();
    let digits = |r: std::ops::Range<usize>| {
        b[r].iter().try_fold(0u32, |n, c| {
            c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
        })
    };
    (b.len() == 10 && b[4] == b'-' && b[7] == b'-')
        .then(|| NaiveDate::from_ymd_opt(digits(0..4)? as i32, digits(5..7)?, digits(8..10)?))
        .flatten()
        .ok_or_else(|| ApiError::field(field, "must be a date as YYYY-MM-DD"))
}

impl UsageQuery {
    /// Defaults: the 30 UTC days ending today, grouped by day.
    pub fn parse(
        from: Option<&str>,
        to: Option<&str>,
        group_by: Option<&str>,
        now_ms: i64,
    ) -> Result<UsageQuery, ApiError> {
        let today = utc(now_ms).date_naive();
        let to = match to {
            Some(v) => parse_day("to", v)?,
            None => today,
        };
        let from = match from {
            Some(v) => parse_day("from", v)?,
            None => to.checked_sub_days(Days::new(29)).unwrap_or(to),
        };
        if from > to {
            return Err(ApiError::field("from", "must not be after 'to'"));
        }
        if (to - from).num_days() + 1 > MAX_RANGE_DAYS {
            return Err(ApiError::field("from", "the range is at most 366 days"));
        }
        let group_by = match group_by.unwrap_or("day") {
            "day" => GroupBy::Day,
            "apiKey" => GroupBy::ApiKey,
            "twin" => GroupBy::Twin,
            "endUser" => GroupBy::EndUser,
            _ => {
                return Err(ApiError::field(
                    "groupBy",
                    "must be one of: day, apiKey, twin, endUser",
                ))
            }
        };
        Ok(UsageQuery {
            from: from.to_string(),
            to: to.to_string(),
            group_by,
        })
    }
}

/// What an upsert of usage counts does to a row that is already there: adds to it (the
/// account object's `usage`, D1's `usage_daily`).
pub const ADD_COUNTS: &str = "requests = requests + excluded.requests, \
     prompt_tokens = prompt_tokens + excluded.prompt_tokens, \
     completion_tokens = completion_tokens + excluded.completion_tokens, \
     total_tokens = total_tokens + excluded.total_tokens, \
     estimated_tokens = estimated_tokens + excluded.estimated_tokens";

/// One turn's usage, as it is added to the account's daily totals when the turn ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TurnUsage {
    pub user_id: String,
    pub api_key_id: Option<String>,
    pub twin_id: String,
    pub end_user_id: Option<String>,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub estimated: bool,
}

/// What one write adds to an account's usage row: a turn's figures, or the correction of a
/// reservation made at admission (which may be negative).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageDelta {
    pub requests: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub estimated_tokens: i64,
}

impl TurnUsage {
    /// One request with this turn's figures.
    pub fn delta(&self) -> UsageDelta {
        let total = self.prompt_tokens + self.completion_tokens;
        UsageDelta {
            requests: 1,
            prompt_tokens: self.prompt_tokens,
            completion_tokens: self.completion_tokens,
            estimated_tokens: if self.estimated { total } else { 0 },
        }
    }

    /// What is left to add once `reserved` was recorded at admission: the turn's figures less
    /// the reservation (the request itself was counted with it).
    pub fn after(&self, reserved: &TurnUsage) -> UsageDelta {
        let (a, r) = (self.delta(), reserved.delta());
        UsageDelta {
            requests: 0,
            prompt_tokens: a.prompt_tokens - r.prompt_tokens,
            completion_tokens: a.completion_tokens - r.completion_tokens,
            estimated_tokens: a.estimated_tokens - r.estimated_tokens,
        }
    }
}

#[cfg(test)]
mod end_user_limit_tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn limits_are_positive_counts_and_null_clears_them() {
        let l = EndUserLimits::parse(&json!({"messagesPerHour": 20, "tokensPerDay": 5000}))
            .unwrap()
            .unwrap();
        assert_eq!(
            (l.messages_per_hour, l.tokens_per_day),
            (Some(20), Some(5000))
        );
        assert_eq!(EndUserLimits::parse(&json!(null)).unwrap(), None);
        assert_eq!(EndUserLimits::parse(&json!({})).unwrap(), None);
        for bad in [
            json!({"messagesPerHour": 0}),
            json!({"tokensPerDay": -1}),
            json!({"perMinute": 1}),
            json!(5),
        ] {
            assert!(EndUserLimits::parse(&bad).is_err(), "{bad}");
        }
        assert_eq!(
            serde_json::to_value(l).unwrap(),
            json!({"messagesPerHour": 20, "tokensPerDay": 5000})
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_usage_row_names_its_group_under_the_grouping_field() {
        let counts = UsageCounts {
            requests: 1,
            prompt_tokens: 2,
            completion_tokens: 3,
            total_tokens: 5,
            estimated_tokens: 0,
        };
        let (rows, totals) = report(
            GroupBy::ApiKey,
            [("key_1".to_owned(), counts), (String::new(), counts)],
        );
        assert_eq!(totals.total_tokens, 10);
        assert_eq!(totals.requests, 2);
        assert_eq!(rows[0]["apiKeyId"], "key_1");
        assert_eq!(rows[0]["completionTokens"], 3);
        // "" is the column's "none": a session's usage has no key.
        assert!(rows[1]["apiKeyId"].is_null());
        assert!(usage_row(GroupBy::EndUser, None, counts)["endUserId"].is_null());
    }

    #[test]
    fn end_user_ids_are_checked_and_hashed_with_the_account() {
        assert_eq!(
            parse_end_user_id("endUserId", "user:42@app.io").unwrap(),
            "user:42@app.io"
        );
        for bad in ["", "has space", "é", &"x".repeat(65)] {
            assert!(parse_end_user_id("endUserId", bad).is_err(), "{bad:?}");
        }
        let h = upstream_user("usr_1", Some("alice"));
        assert_eq!(h.len(), 64);
        assert_ne!(h, upstream_user("usr_2", Some("alice")));
        assert!(!h.contains("alice"));
        // sha256("a:b"), from coreutils' sha256sum.
        assert_eq!(
            upstream_user("a", Some("b")),
            "6783a31eabf68ccc0660f935c0826282bdd2241f3a80a9f2d10d59aea9ebb5d8"
        );
    }

    #[test]
    fn days_and_midnight() {
        // 2026-11-26T23:59:59.500Z
        let t = 1_795_737_599_500;
        assert_eq!(utc_day(t), "2026-11-26");
        assert_eq!(secs_to_utc_midnight(t), 1);
        assert_eq!(secs_to_utc_midnight(t + 500), 86_400);
        assert_eq!(utc_day(t + 500), "2026-11-27");
    }

    #[test]
    fn a_reservation_and_its_correction_add_up_to_the_turn() {
        let turn = |p, c, estimated| TurnUsage {
            user_id: "usr_1".into(),
            api_key_id: None,
            twin_id: "twn_1".into(),
            end_user_id: None,
            prompt_tokens: p,
            completion_tokens: c,
            estimated,
        };
        let reserved = turn(30, 1024, true);
        let actual = turn(28, 12, false);
        let (r, fix) = (reserved.delta(), actual.after(&reserved));
        assert_eq!(r.requests + fix.requests, 1);
        assert_eq!(r.prompt_tokens + fix.prompt_tokens, 28);
        assert_eq!(r.completion_tokens + fix.completion_tokens, 12);
        assert_eq!(r.estimated_tokens + fix.estimated_tokens, 0);
    }

    #[test]
    fn a_turn_calls_only_an_allowed_model() {
        let spend = crate::config::Config::defaults().spend;
        assert_eq!(turn_model(None, &spend).unwrap(), "gpt-4o-mini");
        assert_eq!(
            turn_model(Some("gpt-4o-mini".into()), &spend).unwrap(),
            "gpt-4o-mini"
        );
        let err = turn_model(Some("gpt-4-32k".into()), &spend).unwrap_err();
        assert_eq!(err.status(), 409);
    }

    #[test]
    fn allowed_models_default_to_the_default_model() {
        assert_eq!(allowed_models(None, "m1"), ["m1"]);
        assert_eq!(allowed_models(Some(" a, b ,,"), "m1"), ["a", "b"]);
        let allowed = allowed_models(Some("a,b"), "m1");
        assert!(check_model(Some("a"), &allowed).is_ok());
        assert!(check_model(None, &allowed).is_ok());
        let err = check_model(Some("o1-pro-2025-03-19"), &allowed).unwrap_err();
        assert!(err.details()["fields"]["model"].is_string());
    }

    #[test]
    fn usage_queries_default_and_validate() {
        let now = 1_795_737_599_500; // 2026-11-26
        let q = UsageQuery::parse(None, None, None, now).unwrap();
        assert_eq!(
            (q.from.as_str(), q.to.as_str(), q.group_by),
            ("2026-10-28", "2026-11-26", GroupBy::Day)
        );
        let q = UsageQuery::parse(Some("2026-01-01"), Some("2026-01-31"), Some("endUser"), now)
            .unwrap();
        assert_eq!(q.group_by.column_and_field(), ("end_user_id", "endUserId"));
        let field = |r: Result<UsageQuery, ApiError>| {
            r.unwrap_err().details()["fields"]
                .as_object()
                .unwrap()
                .keys()
                .next()
                .unwrap()
                .clone()
        };
        assert_eq!(
            field(UsageQuery::parse(
                Some("2026-02-01"),
                Some("2026-01-01"),
                None,
                now
            )),
            "from"
        );
        assert_eq!(
            field(UsageQuery::parse(
                Some("2025-01-01"),
                Some("2026-01-02"),
                None,
                now
            )),
            "from"
        );
        assert!(UsageQuery::parse(Some("2025-01-01"), Some("2026-01-01"), None, now).is_ok());
        assert_eq!(
            field(UsageQuery::parse(None, Some("2026-13-01"), None, now)),
            "to"
        );
        assert_eq!(
            field(UsageQuery::parse(Some("2026-1-1"), None, None, now)),
            "from"
        );
        assert_eq!(
            field(UsageQuery::parse(None, None, Some("week"), now)),
            "groupBy"
        );
    }
}
