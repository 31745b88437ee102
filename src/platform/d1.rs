//! D1 access; each slice's `store.rs` adds its statements to `Store`. Every query that touches a user's data names the
//! owner in its WHERE clause, so isolation does not depend on a check in a handler. Rows are
//! private to their module; the store speaks the slices' model types.

use serde::de::DeserializeOwned;
use serde::Deserialize;
use std::future::Future;
use worker::wasm_bindgen::JsValue;
use worker::wasm_bindgen_futures::JsFuture;
use worker::{D1Database, D1DatabaseSession, D1PreparedStatement, Env};

pub use crate::http::cursor::Listed;
use crate::http::cursor::{self, Cursor, Key};
use crate::http::error::StoreError;
use crate::http::validate::{page_depth, MAX_OFFSET};

pub type StoreResult<T> = Result<T, StoreError>;

impl From<worker::Error> for StoreError {
    fn from(e: worker::Error) -> StoreError {
        StoreError::from_message(&e.to_string())
    }
}

/// A store error inside a Durable Object's handler, which answers in `worker::Error`.
impl From<StoreError> for worker::Error {
    fn from(e: StoreError) -> worker::Error {
        worker::Error::RustError(format!("d1: {e:?}"))
    }
}

/// Runs `f` again while the database answers `SQLITE_BUSY`: the statement (or batch, one
/// transaction) did not run, another connection held the lock, so running it again is safe.
/// Local development meets it when the API's and the cells worker's D1 bindings (one database
/// file, two connections) write at the same instant.
async fn when_not_busy<T, F, Fut>(mut f: F) -> StoreResult<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = StoreResult<T>>,
{
    let mut wait_ms = 5;
    for _ in 0..6 {
        match f().await {
            Err(StoreError::Failed(m)) if m.contains("SQLITE_BUSY") => {
                worker::Delay::from(std::time::Duration::from_millis(wait_ms)).await;
                wait_ms *= 2;
            }
            other => return other,
        }
    }
    f().await
}

fn js_err(e: JsValue) -> StoreError {
    StoreError::from_message(&format!("{e:?}"))
}

/// A value bound to a statement's `?n`.
pub trait Param {
    fn js(&self) -> JsValue;
}

impl Param for str {
    fn js(&self) -> JsValue {
        JsValue::from_str(self)
    }
}

impl Param for String {
    fn js(&self) -> JsValue {
        JsValue::from_str(self)
    }
}

impl Param for i64 {
    fn js(&self) -> JsValue {
        JsValue::from_f64(*self as f64)
    }
}

impl Param for u64 {
    fn js(&self) -> JsValue {
        JsValue::from_f64(*self as f64)
    }
}

impl<T: Param + ?Sized> Param for &T {
    fn js(&self) -> JsValue {
        (**self).js()
    }
}

/// `None` binds SQL NULL.
impl<T: Param> Param for Option<T> {
    fn js(&self) -> JsValue {
        self.as_ref().map_or(JsValue::NULL, Param::js)
    }
}

/// The values of a statement's `?1, ?2, …`, in order.
macro_rules! params {
    ($($value:expr),* $(,)?) => {
        [$($crate::platform::d1::Param::js(&$value)),*]
    };
}
pub(crate) use params;

pub struct Store {
    db: Db,
}

enum Db {
    /// The database as bound: every statement reaches the primary (read-your-writes).
    Primary(D1Database),
    /// A session of D1's Sessions API that may start on the nearest read replica.
    Near(D1DatabaseSession),
}

/// What a paginated list reads: `filter` is an SQL fragment of the store's own; `keys` the
/// list's order (the last one unique), which a cursor page reads from.
pub struct Listing<'a> {
    pub table: &'a str,
    pub columns: &'a str,
    pub filter: &'a str,
    pub keys: &'a [Key],
}

#[derive(Deserialize)]
struct Count {
    n: u64,
}

impl Store {
    pub fn new(env: &Env) -> StoreResult<Self> {
        Ok(Store {
            db: Db::Primary(env.d1("DB")?),
        })
    }

    /// A store whose reads may be served by the nearest read replica (SPEC §14: hot-path
    /// reads through the Sessions API). A replica can lag the primary by moments: use it only
    /// through `near_then_primary`, for reads where that is safe.
    fn near(env: &Env) -> StoreResult<Self> {
        let session = env.d1("DB")?.with_session(Some("first-unconstrained"))?;
        Ok(Store {
            db: Db::Near(session),
        })
    }

    pub fn stmt(&self, sql: &str, args: &[JsValue]) -> StoreResult<D1PreparedStatement> {
        let stmt = match &self.db {
            Db::Primary(db) => db.prepare(sql),
            Db::Near(session) => session.prepare(sql),
        };
        Ok(stmt.bind(args)?)
    }

    /// The first row, decoded through one `JSON.stringify` and serde_json: far fewer calls
    /// across the wasm boundary than walking the JS object field by field.
    pub async fn first<T: DeserializeOwned>(
        &self,
        sql: &str,
        args: &[JsValue],
    ) -> StoreResult<Option<T>> {
        let stmt = self.stmt(sql, args)?;
        let row = when_not_busy(|| async {
            let promise = stmt.inner().first(None).map_err(js_err)?;
            JsFuture::from(promise).await.map_err(js_err)
        })
        .await?;
        if row.is_null() || row.is_undefined() {
            return Ok(None);
        }
        let text: String = worker::js_sys::JSON::stringify(&row)
            .map_err(js_err)?
            .into();
        Ok(Some(serde_json::from_str(&text)?))
    }

    pub async fn all<T: DeserializeOwned>(
        &self,
        sql: &str,
        args: &[JsValue],
    ) -> StoreResult<Vec<T>> {
        let stmt = self.stmt(sql, args)?;
        let result = when_not_busy(|| async { Ok(stmt.all().await?) }).await?;
        Ok(result.results::<T>()?)
    }

    /// Runs a write and returns how many rows it changed.
    pub async fn run(&self, sql: &str, args: &[JsValue]) -> StoreResult<usize> {
        let stmt = self.stmt(sql, args)?;
        let result = when_not_busy(|| async { Ok(stmt.run().await?) }).await?;
        Ok(changes(&result))
    }

    /// Statements in one round trip and one transaction.
    pub async fn batch(
        &self,
        stmts: Vec<D1PreparedStatement>,
    ) -> StoreResult<Vec<worker::D1Result>> {
        when_not_busy(|| async {
            Ok(match &self.db {
                Db::Primary(db) => db.batch(stmts.clone()).await?,
                Db::Near(session) => session.batch(stmts.clone()).await?,
            })
        })
        .await
    }

    /// A page of `list.table` rows and the total they come from, in one round trip: by number
    /// (`offset`), or from `cursor`. `args` bind the filter's `?1…?n`; the page's own values
    /// are bound after them.
    pub async fn page<T: DeserializeOwned>(
        &self,
        list: Listing<'_>,
        args: &[JsValue],
        limit: u64,
        offset: u64,
        cursor: Option<&Cursor>,
    ) -> StoreResult<Listed<T>> {
        let Listing {
            table,
            columns,
            filter,
            keys,
        } = list;
        let next = args.len() + 1;
        let count = format!("SELECT COUNT(*) AS n FROM {table} WHERE {filter}");
        if let Some(cursor) = cursor {
            // The cursor's row, found in this list (the same filter) or the id is refused.
            let row = format!("SELECT COUNT(*) AS n FROM {table} WHERE id = ?{next} AND {filter}");
            let value = |c: &str| format!("(SELECT {c} FROM {table} WHERE id = ?{next})");
            let (beyond, order) = cursor::keyset(keys, cursor.before(), value);
            let page = format!(
                "SELECT {columns} FROM {table} WHERE {filter} AND {beyond} ORDER BY {order} LIMIT ?{}",
                next + 1
            );
            let mut row_args = args.to_vec();
            row_args.push(cursor.id().js());
            let mut page_args = row_args.clone();
            page_args.push((limit + 1).js());
            let results = self
                .batch(vec![
                    self.stmt(&count, args)?,
                    self.stmt(&row, &row_args)?,
                    self.stmt(&page, &page_args)?,
                ])
                .await?;
            if results[1].results::<Count>()?.first().map_or(0, |c| c.n) == 0 {
                return Err(StoreError::UnknownCursor(cursor.field()));
            }
            let total = results[0].results::<Count>()?.first().map_or(0, |c| c.n);
            let (rows, more) = cursor::page(results[2].results::<T>()?, limit, cursor);
            return Ok((rows, total, Some(more)));
        }
        let (_, order) = cursor::keyset(keys, false, |_| String::new());
        if offset > MAX_OFFSET {
            // The count alone answers a page this deep: past the end it is empty, else refused.
            let total = self.first::<Count>(&count, args).await?.map_or(0, |c| c.n);
            return match page_depth(offset, total) {
                Ok(_) => Ok((Vec::new(), total, None)),
                Err(_) => Err(StoreError::PageTooDeep),
            };
        }
        let page = format!(
            "SELECT {columns} FROM {table} WHERE {filter} ORDER BY {order} LIMIT ?{next} OFFSET ?{}",
            next + 1
        );
        let mut page_args = args.to_vec();
        page_args.extend(params![limit, offset]);
        let results = self
            .batch(vec![
                self.stmt(&count, args)?,
                self.stmt(&page, &page_args)?,
            ])
            .await?;
        let total = results[0].results::<Count>()?.first().map_or(0, |c| c.n);
        let rows = results[1].results::<T>()?;
        Ok((rows, total, None))
    }
}

/// `read` through a session that may use the nearest read replica; if it finds nothing, once
/// more on the primary, so a row created a moment ago (a conversation, then its first message)
/// is found however far the replica lags. What a lagging replica can still serve is a row's
/// older version for that lag (e.g. a persona edited a moment ago), which the turn's reads
/// accept; a deletion is caught by the object it leads to (a deleted conversation's object
/// refuses turns).
pub async fn near_then_primary<T, F, Fut>(env: &Env, read: F) -> StoreResult<Option<T>>
where
    F: Fn(Store) -> Fut,
    Fut: Future<Output = StoreResult<Option<T>>>,
{
    if let Some(found) = read(Store::near(env)?).await? {
        return Ok(Some(found));
    }
    read(Store::new(env)?).await
}

/// How many rows a write changed.
pub fn changes(result: &worker::D1Result) -> usize {
    result
        .meta()
        .ok()
        .flatten()
        .and_then(|m| m.changes)
        .unwrap_or(0)
}
