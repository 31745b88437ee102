//! Cursor pagination, as Stripe's lists: `startingAfter=<id>` gives the items after that one in
//! the list's order, `endingBefore=<id>` the items just before it; a page answers `nextCursor`
//! (the id to pass again to go on the same way) and `hasMore`. A cursor page reads from an
//! index position (a keyset condition), never by skipping rows, so a deep page costs what the
//! first one does.

use crate::http::error::ApiError;

/// A page of a list: its items, how many the list has, and (a cursor page) whether more follow.
pub type Listed<T> = (Vec<T>, u64, Option<bool>);

/// A page of a list as a Durable Object is asked for it: by number (`offset`) or from a cursor.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PageRequest {
    pub limit: u64,
    pub offset: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<Cursor>,
}

/// Where a cursor page starts.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Cursor {
    /// The items after this id, in the list's order.
    After(String),
    /// The items just before this id, still given in the list's order.
    Before(String),
}

impl Cursor {
    pub fn id(&self) -> &str {
        match self {
            Cursor::After(id) | Cursor::Before(id) => id,
        }
    }

    /// The query parameter it came from (what an unknown id is reported under).
    pub fn field(&self) -> &'static str {
        match self {
            Cursor::After(_) => "startingAfter",
            Cursor::Before(_) => "endingBefore",
        }
    }

    pub fn before(&self) -> bool {
        matches!(self, Cursor::Before(_))
    }
}

pub const CURSOR_RULE: &str = "must be the id of an item of this list";

fn is_id(v: &str) -> bool {
    (1..=128).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// `startingAfter` / `endingBefore` (at most one of them).
pub fn parse(
    starting_after: Option<&str>,
    ending_before: Option<&str>,
) -> Result<Option<Cursor>, ApiError> {
    let cursor = match (starting_after, ending_before) {
        (Some(_), Some(_)) => {
            return Err(ApiError::field(
                "endingBefore",
                "cannot be given with startingAfter",
            ))
        }
        (Some(id), None) => Cursor::After(id.to_owned()),
        (None, Some(id)) => Cursor::Before(id.to_owned()),
        (None, None) => return Ok(None),
    };
    if is_id(cursor.id()) {
        Ok(Some(cursor))
    } else {
        Err(unknown(&cursor))
    }
}

/// The error for a cursor that names no item of the list.
pub fn unknown(cursor: &Cursor) -> ApiError {
    ApiError::field(cursor.field(), CURSOR_RULE)
}

/// One column of a list's order; the last one is unique (an id), so the order is total.
#[derive(Debug, Clone, Copy)]
pub struct Key {
    pub column: &'static str,
    pub descending: bool,
}

pub const fn asc(column: &'static str) -> Key {
    Key {
        column,
        descending: false,
    }
}

pub const fn desc(column: &'static str) -> Key {
    Key {
        column,
        descending: true,
    }
}

/// The SQL that reads a cursor page of a list ordered by `keys`: the condition "comes after
/// (or, `before`, just before) the cursor's row", written with `value(column)` for the cursor
/// row's value of a column, and the ORDER BY to read in (reversed for `before`: the caller
/// reverses those rows back into the list's order).
pub fn keyset(keys: &[Key], before: bool, value: impl Fn(&str) -> String) -> (String, String) {
    // (k1 > v1) OR (k1 = v1 AND k2 > v2) OR …, each `>` turned for a descending key or `before`.
    let beyond = |k: &Key| if k.descending != before { "<" } else { ">" };
    let terms: Vec<String> = (0..keys.len())
        .map(|i| {
            let mut parts: Vec<String> = keys[..i]
                .iter()
                .map(|k| format!("{} = {}", k.column, value(k.column)))
                .collect();
            let k = &keys[i];
            parts.push(format!("{} {} {}", k.column, beyond(k), value(k.column)));
            format!("({})", parts.join(" AND "))
        })
        .collect();
    let order: Vec<String> = keys
        .iter()
        .map(|k| {
            let desc = k.descending != before;
            format!("{} {}", k.column, if desc { "DESC" } else { "ASC" })
        })
        .collect();
    (format!("({})", terms.join(" OR ")), order.join(", "))
}

/// A cursor page read from a Durable Object's own SQLite, where a statement binds its values
/// by position: the condition with the cursor row's values as subqueries on `table` by id, and
/// how many times the cursor's id is bound in it.
pub fn local_keyset(keys: &[Key], table: &str, before: bool) -> (String, String, usize) {
    let value = |c: &str| format!("(SELECT {c} FROM {table} WHERE id = ?)");
    let (beyond, order) = keyset(keys, before, value);
    let binds = beyond.matches('?').count();
    (beyond, order, binds)
}

/// A cursor page from the `limit + 1` rows read for it (in reading order): the page in the
/// list's order, and whether more follow in the cursor's direction.
pub fn page<T>(mut rows: Vec<T>, limit: u64, cursor: &Cursor) -> (Vec<T>, bool) {
    let more = rows.len() as u64 > limit;
    rows.truncate(limit as usize);
    if cursor.before() {
        rows.reverse();
    }
    (rows, more)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_cursor_at_a_time_and_only_ids() {
        assert_eq!(parse(None, None).unwrap(), None);
        assert_eq!(
            parse(Some("conv_1"), None).unwrap(),
            Some(Cursor::After("conv_1".into()))
        );
        assert_eq!(
            parse(None, Some("twn-2")).unwrap(),
            Some(Cursor::Before("twn-2".into()))
        );
        let both = parse(Some("a"), Some("b")).unwrap_err();
        assert!(both.details()["fields"]["endingBefore"].is_string());
        let bad = parse(Some("a' OR 1=1"), None).unwrap_err();
        assert!(bad.details()["fields"]["startingAfter"].is_string());
        assert!(parse(None, Some("")).is_err());
    }

    #[test]
    fn the_keyset_follows_each_keys_direction_and_turns_for_before() {
        let keys = [desc("created_at"), asc("id")];
        let v = |c: &str| format!(":{c}");
        let (after, order) = keyset(&keys, false, v);
        assert_eq!(
            after,
            "((created_at < :created_at) OR (created_at = :created_at AND id > :id))"
        );
        assert_eq!(order, "created_at DESC, id ASC");
        let (before, order) = keyset(&keys, true, v);
        assert_eq!(
            before,
            "((created_at > :created_at) OR (created_at = :created_at AND id < :id))"
        );
        assert_eq!(order, "created_at ASC, id DESC");
    }

    #[test]
    fn a_page_is_cut_to_its_limit_and_read_back_into_list_order() {
        let after = Cursor::After("x".into());
        assert_eq!(page(vec![1, 2, 3], 2, &after), (vec![1, 2], true));
        assert_eq!(page(vec![1, 2], 2, &after), (vec![1, 2], false));
        // Read backwards from the cursor: 3, 2, 1 (nearest first) → the page 2, 3 and more.
        let before = Cursor::Before("x".into());
        assert_eq!(page(vec![3, 2, 1], 2, &before), (vec![2, 3], true));
    }
}
