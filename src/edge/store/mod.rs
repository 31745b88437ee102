//! D1 access, one module per resource. Every query that touches a user's data names the
//! owner in its WHERE clause, so isolation does not depend on a check in a handler.

mod accounts;
mod conversations;
mod idempotency;
mod knowledge;
mod twins;
mod usage;

pub use accounts::{ApiKeyRow, UserRow};
pub use conversations::ConversationRow;
pub use knowledge::NotAdded;
pub use twins::TwinRow;

use serde::de::DeserializeOwned;
use serde::Deserialize;
use worker::wasm_bindgen::JsValue;
use worker::wasm_bindgen_futures::JsFuture;
use worker::{D1Database, D1PreparedStatement, Env};

use crate::core::error::ApiError;

pub struct Store {
    db: D1Database,
}

pub(crate) fn d1_err(e: worker::Error) -> ApiError {
    ApiError::internal(format!("d1: {e}"))
}

pub(crate) fn is_unique_violation(e: &ApiError) -> bool {
    matches!(e, ApiError::Internal(d) if d.contains("UNIQUE constraint failed"))
}

pub fn s(v: &str) -> JsValue {
    JsValue::from_str(v)
}

pub fn n(v: i64) -> JsValue {
    JsValue::from_f64(v as f64)
}

pub fn opt(v: Option<&str>) -> JsValue {
    v.map_or(JsValue::NULL, JsValue::from_str)
}

/// What a paginated list reads: `filter` and `order` are SQL fragments of the store's own.
pub struct Listing<'a> {
    pub table: &'a str,
    pub columns: &'a str,
    pub filter: &'a str,
    pub order: &'a str,
}

#[derive(Deserialize)]
struct Count {
    n: u64,
}

impl Store {
    pub fn new(env: &Env) -> Result<Self, ApiError> {
        Ok(Store {
            db: env.d1("DB").map_err(d1_err)?,
        })
    }

    pub fn stmt(&self, sql: &str, args: &[JsValue]) -> Result<D1PreparedStatement, ApiError> {
        self.db.prepare(sql).bind(args).map_err(d1_err)
    }

    /// The first row, decoded through one `JSON.stringify` and serde_json: far fewer calls
    /// across the wasm boundary than walking the JS object field by field.
    pub async fn first<T: DeserializeOwned>(
        &self,
        sql: &str,
        args: &[JsValue],
    ) -> Result<Option<T>, ApiError> {
        let stmt = self.stmt(sql, args)?;
        let promise = stmt
            .inner()
            .first(None)
            .map_err(|e| ApiError::internal(format!("d1: {e:?}")))?;
        let row = JsFuture::from(promise)
            .await
            .map_err(|e| ApiError::internal(format!("d1: {e:?}")))?;
        if row.is_null() || row.is_undefined() {
            return Ok(None);
        }
        let text: String = worker::js_sys::JSON::stringify(&row)
            .map_err(|e| ApiError::internal(format!("d1: {e:?}")))?
            .into();
        serde_json::from_str(&text)
            .map(Some)
            .map_err(ApiError::internal)
    }

    pub async fn all<T: DeserializeOwned>(
        &self,
        sql: &str,
        args: &[JsValue],
    ) -> Result<Vec<T>, ApiError> {
        self.stmt(sql, args)?
            .all()
            .await
            .map_err(d1_err)?
            .results::<T>()
            .map_err(d1_err)
    }

    /// Runs a write and returns how many rows it changed.
    pub async fn run(&self, sql: &str, args: &[JsValue]) -> Result<usize, ApiError> {
        let result = self.stmt(sql, args)?.run().await.map_err(d1_err)?;
        Ok(result
            .meta()
            .ok()
            .flatten()
            .and_then(|m| m.changes)
            .unwrap_or(0))
    }

    /// Statements in one round trip and one transaction.
    pub async fn batch(
        &self,
        stmts: Vec<D1PreparedStatement>,
    ) -> Result<Vec<worker::D1Result>, ApiError> {
        self.db.batch(stmts).await.map_err(d1_err)
    }

    /// A page of `list.table` rows and the total they come from, in one round trip. `args`
    /// bind the filter's `?1…?n`; the limit and offset are bound after them.
    pub async fn page<T: DeserializeOwned>(
        &self,
        list: Listing<'_>,
        args: &[JsValue],
        limit: u64,
        offset: u64,
    ) -> Result<(Vec<T>, u64), ApiError> {
        let Listing {
            table,
            columns,
            filter,
            order,
        } = list;
        let next = args.len() + 1;
        let count = format!("SELECT COUNT(*) AS n FROM {table} WHERE {filter}");
        let page = format!(
            "SELECT {columns} FROM {table} WHERE {filter} ORDER BY {order} LIMIT ?{next} OFFSET ?{}",
            next + 1
        );
        let mut page_args = args.to_vec();
        page_args.push(n(limit as i64));
        page_args.push(n(offset as i64));
        let results = self
            .batch(vec![
                self.stmt(&count, args)?,
                self.stmt(&page, &page_args)?,
            ])
            .await?;
        let total = results[0]
            .results::<Count>()
            .map_err(d1_err)?
            .first()
            .map_or(0, |c| c.n);
        let rows = results[1].results::<T>().map_err(d1_err)?;
        Ok((rows, total))
    }
}
