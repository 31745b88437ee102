//! The twin's object's part of feedback: the latest rating of each of the twin's rated replies,
//! from which the report counts by day. A rating replaced moves from its old day to its new
//! one by replacing the row, so latest-wins holds in the counts as well.

use serde_json::{json, Value};

use crate::feedback::model::REPORT_COMMENTS;
use crate::platform::sqlite::{int, opt_text, string, text, Sqlite};

pub const TABLE: &str = "CREATE TABLE IF NOT EXISTS feedback (
   message_id TEXT PRIMARY KEY,
   conversation_id TEXT,
   end_user_id TEXT,
   rating INTEGER NOT NULL,
   comment TEXT,
   day TEXT NOT NULL,
   at TEXT NOT NULL) WITHOUT ROWID";
pub const BY_DAY: &str = "CREATE INDEX IF NOT EXISTS feedback_by_day ON feedback (day, at)";

/// A reply's rating as the conversation's object sends it: `{messageId, conversationId,
/// endUserId, rating, comment, at}` (`at` RFC 3339; its date is the day it counts on).
pub fn record(db: &Sqlite, v: &Value) -> worker::Result<()> {
    let at = v["at"].as_str().unwrap_or("");
    db.run(
        "INSERT OR REPLACE INTO feedback \
         (message_id, conversation_id, end_user_id, rating, comment, day, at) \
         VALUES (?, ?, ?, ?, ?, ?, ?)",
        vec![
            text(v["messageId"].as_str().unwrap_or("")),
            opt_text(v["conversationId"].as_str()),
            opt_text(v["endUserId"].as_str()),
            v["rating"].as_i64().unwrap_or(0).signum().into(),
            opt_text(v["comment"].as_str()),
            text(at.get(..10).unwrap_or(at)),
            text(at),
        ],
    )
}

/// `{days: [{date, positive, negative}], totals, comments: [the latest, newest first]}` over
/// the inclusive range of UTC days.
pub fn report(db: &Sqlite, from: &str, to: &str) -> worker::Result<Value> {
    let range = || vec![text(from), text(to)];
    let days: Vec<Value> = db.rows(
        "SELECT day, SUM(rating > 0) AS positive, SUM(rating < 0) AS negative FROM feedback \
         WHERE day BETWEEN ? AND ? GROUP BY day ORDER BY day",
        range(),
    )?;
    let mut totals = (0, 0);
    let days: Vec<Value> = days
        .iter()
        .map(|d| {
            let (p, n) = (int(d, "positive"), int(d, "negative"));
            totals = (totals.0 + p, totals.1 + n);
            json!({ "date": string(d, "day"), "positive": p, "negative": n })
        })
        .collect();
    let comments: Vec<Value> = db.rows(
        &format!(
            "SELECT message_id, conversation_id, rating, comment, at FROM feedback \
             WHERE comment IS NOT NULL AND day BETWEEN ? AND ? ORDER BY at DESC LIMIT {REPORT_COMMENTS}"
        ),
        range(),
    )?;
    let comments: Vec<Value> = comments
        .iter()
        .map(|c| {
            json!({
                "messageId": string(c, "message_id"),
                "conversationId": c["conversation_id"],
                "rating": int(c, "rating"),
                "comment": string(c, "comment"),
                "createdAt": string(c, "at"),
            })
        })
        .collect();
    Ok(json!({
        "days": days,
        "totals": { "positive": totals.0, "negative": totals.1 },
        "comments": comments,
    }))
}

/// Whose ratings to anonymise: an end user's (their erasure) or one conversation's (deleted).
pub enum Whose<'a> {
    EndUser(&'a str),
    Conversation(&'a str),
}

/// The ratings still count, but keep no comment and name neither the end user nor the
/// conversation. Answers how many were anonymised.
pub fn forget(db: &Sqlite, whose: Whose) -> worker::Result<i64> {
    let (column, id) = match whose {
        Whose::EndUser(id) => ("end_user_id", id),
        Whose::Conversation(id) => ("conversation_id", id),
    };
    let n: Vec<Value> = db.rows(
        &format!("SELECT COUNT(*) AS n FROM feedback WHERE {column} = ?"),
        vec![text(id)],
    )?;
    db.run(
        &format!(
            "UPDATE feedback SET comment = NULL, end_user_id = NULL, conversation_id = NULL \
             WHERE {column} = ?"
        ),
        vec![text(id)],
    )?;
    Ok(n.first().map_or(0, |r| int(r, "n")))
}
