//! A Durable Object's own SQLite, with its schema created on first use. Synchronous: an object
//! that checks and writes with no await between them is exact under concurrent requests.

use serde::de::DeserializeOwned;
use std::cell::{Cell, RefCell};
use worker::{SqlStorage, SqlStorageValue};

pub struct Sqlite {
    storage: worker::Storage,
    schema: &'static [&'static str],
    ready: Cell<bool>,
    /// Markers as last read or written. Only this object writes its storage, and a marker
    /// changes only through `mark` and `wipe`, which update this too: each is read once.
    markers: RefCell<Vec<(&'static str, bool)>>,
}

impl Sqlite {
    pub fn new(storage: worker::Storage, schema: &'static [&'static str]) -> Self {
        Sqlite {
            storage,
            schema,
            ready: Cell::new(false),
            markers: RefCell::new(Vec::new()),
        }
    }

    fn sql(&self) -> worker::Result<SqlStorage> {
        let sql = self.storage.sql();
        if !self.ready.get() {
            for statement in self.schema {
                sql.exec(statement, None)?;
            }
            self.ready.set(true);
        }
        Ok(sql)
    }

    pub fn rows<T: DeserializeOwned>(
        &self,
        query: &str,
        args: Vec<SqlStorageValue>,
    ) -> worker::Result<Vec<T>> {
        self.sql()?.exec(query, args)?.to_array()
    }

    pub fn run(&self, query: &str, args: Vec<SqlStorageValue>) -> worker::Result<()> {
        self.sql()?.exec(query, args).map(|_| ())
    }

    /// Whether the object has stored nothing yet (checked without creating the schema, so a
    /// read of an empty object leaves it empty).
    pub fn is_empty(&self) -> worker::Result<bool> {
        if self.ready.get() {
            return Ok(false);
        }
        let tables: Vec<serde_json::Value> = self
            .storage
            .sql()
            .exec(
                "SELECT 1 AS one FROM sqlite_master WHERE type = 'table' LIMIT 1",
                None,
            )?
            .to_array()?;
        Ok(tables.is_empty())
    }

    pub fn storage(&self) -> &worker::Storage {
        &self.storage
    }

    /// Everything goes (alarm included); the schema is made again on the next use.
    pub async fn wipe(&self) -> worker::Result<()> {
        self.storage.delete_alarm().await?;
        self.storage.delete_all().await?;
        self.ready.set(false);
        self.markers.borrow_mut().clear();
        Ok(())
    }

    /// Whether the once-set marker `k` (e.g. "a one-time import is done") is set, in the
    /// schema's `meta (k, v)` table; read from storage once per instance.
    pub fn is_marked(&self, k: &'static str) -> worker::Result<bool> {
        if let Some((_, set)) = self.markers.borrow().iter().find(|(m, _)| *m == k) {
            return Ok(*set);
        }
        let rows: Vec<serde_json::Value> =
            self.rows("SELECT 1 AS one FROM meta WHERE k = ?", vec![text(k)])?;
        self.known(k, !rows.is_empty());
        Ok(!rows.is_empty())
    }

    /// Sets the marker `k` (see `is_marked`).
    pub fn mark(&self, k: &'static str) -> worker::Result<()> {
        self.run(
            "INSERT OR REPLACE INTO meta (k, v) VALUES (?, '1')",
            vec![text(k)],
        )?;
        self.known(k, true);
        Ok(())
    }

    fn known(&self, k: &'static str, set: bool) {
        let mut markers = self.markers.borrow_mut();
        markers.retain(|(m, _)| *m != k);
        markers.push((k, set));
    }
}

pub fn text(v: &str) -> SqlStorageValue {
    v.into()
}

pub fn opt_text(v: Option<&str>) -> SqlStorageValue {
    v.map_or(SqlStorageValue::Null, SqlStorageValue::from)
}

pub fn opt_int(v: Option<i64>) -> SqlStorageValue {
    v.map_or(SqlStorageValue::Null, SqlStorageValue::from)
}

// Rows are best read as `serde_json::Value` with these two: each row type of its own would
// instantiate another JS-to-Rust deserializer (measured: four of them put the wasm over its
// gzip budget).
pub fn int(row: &serde_json::Value, column: &str) -> i64 {
    row[column].as_i64().unwrap_or(0)
}

pub fn string<'a>(row: &'a serde_json::Value, column: &str) -> &'a str {
    row[column].as_str().unwrap_or("")
}
