//! A twin's knowledge object: one instance per twin (`Instance::Twin`). Its SQLite holds the
//! twin's documents, their passages and an FTS5 index over them, so retrieval reads this twin's
//! passages alone: its cost grows with this twin's documents, never with other twins'. Writes
//! are synchronous runs of SQL (a document and all its passages land together or not at all).

use serde_json::Value;
use worker::{durable_object, Env, Request, Response, State};

use crate::feedback::cell as feedback;
use crate::http::cursor::{self, Key, PageRequest};
use crate::knowledge::model::{fold, Document, Source, MAX_SOURCES};
use crate::knowledge::protocol::{self as protocol, Op};
use crate::platform::d1::{params, Store};
use crate::platform::sqlite::{int, opt_text, string, text, Sqlite};

const SCHEMA: [&str; 7] = [
    "CREATE TABLE IF NOT EXISTS documents (
       id TEXT PRIMARY KEY,
       title TEXT NOT NULL,
       source_url TEXT,
       chars INTEGER NOT NULL,
       chunk_count INTEGER NOT NULL,
       created_at TEXT NOT NULL)",
    // `id` is also the passage's rowid in `fts`.
    "CREATE TABLE IF NOT EXISTS passages (
       id INTEGER PRIMARY KEY,
       document_id TEXT NOT NULL,
       seq INTEGER NOT NULL,
       text TEXT NOT NULL,
       UNIQUE (document_id, seq))",
    // The searchable text is the title and the passage, folded (`knowledge::model::fold`: đ/Đ
    // read as d; the tokenizer folds every other Vietnamese mark, letters with two included).
    "CREATE VIRTUAL TABLE IF NOT EXISTS fts USING fts5(body, \
       tokenize = 'porter unicode61 remove_diacritics 2')",
    "CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL) WITHOUT ROWID",
    "CREATE INDEX IF NOT EXISTS documents_newest ON documents (created_at DESC, id)",
    // The twin's feedback report (SPEC §19).
    feedback::TABLE,
    feedback::BY_DAY,
];

/// Set once the twin's documents from before it had an object (D1's knowledge tables) are here.
const IMPORTED: &str = "imported_d1_knowledge";
/// Passages read from D1 per query while importing.
const IMPORT_PAGE: i64 = 1000;

#[durable_object]
pub struct TwinKnowledge {
    db: Sqlite,
    env: Env,
}

impl worker::DurableObject for TwinKnowledge {
    fn new(state: State, env: Env) -> Self {
        TwinKnowledge {
            db: Sqlite::new(state.storage(), &SCHEMA),
            env,
        }
    }

    /// The same protocol as the RPC method `call` (which the Worker uses), over HTTP.
    async fn fetch(&self, mut req: Request) -> worker::Result<Response> {
        Response::ok(self.rpc(&req.text().await?).await?)
    }
}

crate::platform::object::rpc_method!(TwinKnowledge);

fn document(twin_id: &str, row: &Value) -> Document {
    Document {
        id: string(row, "id").to_owned(),
        twin_id: twin_id.to_owned(),
        title: string(row, "title").to_owned(),
        source_url: row["source_url"].as_str().map(str::to_owned),
        chars: int(row, "chars").max(0) as u64,
        chunk_count: int(row, "chunk_count").max(0) as u64,
        created_at: string(row, "created_at").to_owned(),
    }
}

const DOCUMENT_COLUMNS: &str = "id, title, source_url, chars, chunk_count, created_at";

impl TwinKnowledge {
    async fn rpc(&self, request: &str) -> worker::Result<String> {
        let protocol::Request { twin_id, op } = serde_json::from_str(request)?;
        if matches!(op, Op::Purge) {
            self.db.wipe().await?;
            // What the twin had in D1 is purged by the Worker; never bring it back.
            self.db.mark(IMPORTED)?;
            return Ok("true".to_owned());
        }
        self.import(&twin_id).await?;
        let answer = match op {
            Op::Add {
                document,
                passages,
                max_docs,
            } => {
                if self.documents()? < max_docs {
                    self.add(
                        &document,
                        passages.iter().map(|(t, b)| (t.as_str(), b.clone())),
                    )?;
                    self.totals()?.to_string()
                } else {
                    "null".to_owned()
                }
            }
            Op::List(page) => match self.list(&page)? {
                Some((rows, more)) => {
                    let documents: Vec<Document> =
                        rows.iter().map(|r| document(&twin_id, r)).collect();
                    let total = self.documents()?;
                    serde_json::json!({ "documents": documents, "total": total, "more": more })
                        .to_string()
                }
                None => serde_json::json!({ "unknownCursor": true }).to_string(),
            },
            Op::Delete { document_id } => {
                let found: Vec<Value> = self.db.rows(
                    "SELECT id FROM documents WHERE id = ?",
                    vec![text(&document_id)],
                )?;
                if found.is_empty() {
                    "null".to_owned()
                } else {
                    let id = vec![text(&document_id)];
                    self.db.run(
                        "DELETE FROM fts WHERE rowid IN \
                         (SELECT id FROM passages WHERE document_id = ?)",
                        id.clone(),
                    )?;
                    self.db
                        .run("DELETE FROM passages WHERE document_id = ?", id.clone())?;
                    self.db.run("DELETE FROM documents WHERE id = ?", id)?;
                    self.totals()?.to_string()
                }
            }
            Op::Feedback(rating) => {
                feedback::record(&self.db, &rating)?;
                "true".to_owned()
            }
            Op::FeedbackReport { from, to } => feedback::report(&self.db, &from, &to)?.to_string(),
            Op::ForgetEndUser { end_user_id } => {
                feedback::forget(&self.db, feedback::Whose::EndUser(&end_user_id))?.to_string()
            }
            Op::ForgetConversation { conversation_id } => {
                feedback::forget(&self.db, feedback::Whose::Conversation(&conversation_id))?
                    .to_string()
            }
            Op::Retrieve { query } => {
                let rows: Vec<Value> = self.db.rows(
                    &format!(
                        "SELECT d.id AS document_id, d.title, d.source_url, p.text \
                         FROM fts JOIN passages p ON p.id = fts.rowid \
                         JOIN documents d ON d.id = p.document_id \
                         WHERE fts MATCH ? ORDER BY bm25(fts) LIMIT {MAX_SOURCES}"
                    ),
                    vec![text(&query)],
                )?;
                let sources: Vec<Source> = rows
                    .iter()
                    .map(|r| Source {
                        document_id: string(r, "document_id").to_owned(),
                        title: string(r, "title").to_owned(),
                        source_url: r["source_url"].as_str().map(str::to_owned),
                        text: string(r, "text").to_owned(),
                    })
                    .collect();
                serde_json::to_string(&sources)?
            }
            Op::Purge => unreachable!("answered above"),
        };
        Ok(answer)
    }

    /// A page of document rows, newest first, and (a cursor page) whether more follow; `None`
    /// when the cursor is no document of this twin.
    fn list(&self, page: &PageRequest) -> worker::Result<Option<(Vec<Value>, Option<bool>)>> {
        const KEYS: [Key; 2] = [cursor::desc("created_at"), cursor::asc("id")];
        let PageRequest {
            limit,
            offset,
            ref cursor,
        } = *page;
        let Some(cursor) = cursor else {
            let rows = self.db.rows(
                &format!(
                    "SELECT {DOCUMENT_COLUMNS} FROM documents \
                     ORDER BY created_at DESC, id LIMIT ? OFFSET ?"
                ),
                vec![(limit as i64).into(), (offset as i64).into()],
            )?;
            return Ok(Some((rows, None)));
        };
        let found: Vec<Value> = self.db.rows(
            "SELECT id FROM documents WHERE id = ?",
            vec![text(cursor.id())],
        )?;
        if found.is_empty() {
            return Ok(None);
        }
        let (beyond, order, binds) = cursor::local_keyset(&KEYS, "documents", cursor.before());
        let mut args = vec![text(cursor.id()); binds];
        args.push(((limit + 1) as i64).into());
        let rows = self.db.rows(
            &format!(
                "SELECT {DOCUMENT_COLUMNS} FROM documents WHERE {beyond} ORDER BY {order} LIMIT ?"
            ),
            args,
        )?;
        let (rows, more) = cursor::page(rows, limit, cursor);
        Ok(Some((rows, Some(more))))
    }

    /// The twin's documents and their characters, as the twin's D1 row keeps them.
    fn totals(&self) -> worker::Result<Value> {
        let rows: Vec<Value> = self.db.rows(
            "SELECT COUNT(*) AS documents, COALESCE(SUM(chars), 0) AS chars FROM documents",
            vec![],
        )?;
        Ok(rows.into_iter().next().unwrap_or_default())
    }

    fn documents(&self) -> worker::Result<u64> {
        let rows: Vec<Value> = self
            .db
            .rows("SELECT COUNT(*) AS n FROM documents", vec![])?;
        Ok(rows.first().map_or(0, |r| int(r, "n")).max(0) as u64)
    }

    /// A document and its passages (`(text, searchable text)`), with their index entries.
    fn add<'a>(
        &self,
        d: &Document,
        passages: impl Iterator<Item = (&'a str, String)>,
    ) -> worker::Result<()> {
        self.db.run(
            &format!("INSERT INTO documents ({DOCUMENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)"),
            vec![
                text(&d.id),
                text(&d.title),
                opt_text(d.source_url.as_deref()),
                (d.chars as i64).into(),
                (d.chunk_count as i64).into(),
                text(&d.created_at),
            ],
        )?;
        let next: Vec<Value> = self
            .db
            .rows("SELECT COALESCE(MAX(id), 0) AS n FROM passages", vec![])?;
        let first = next.first().map_or(0, |r| int(r, "n")) + 1;
        for (seq, (passage, body)) in passages.enumerate() {
            let id = first + seq as i64;
            self.db.run(
                "INSERT INTO passages (id, document_id, seq, text) VALUES (?, ?, ?, ?)",
                vec![id.into(), text(&d.id), (seq as i64).into(), text(passage)],
            )?;
            self.db.run(
                "INSERT INTO fts (rowid, body) VALUES (?, ?)",
                vec![id.into(), text(&body)],
            )?;
        }
        Ok(())
    }

    /// Once per twin: the documents it had in D1 before it had an object are copied here (read
    /// whole first, then written in one synchronous run guarded by the flag, so two racing
    /// imports write them once).
    async fn import(&self, twin_id: &str) -> worker::Result<()> {
        if self.db.is_marked(IMPORTED)? {
            return Ok(());
        }
        let store = Store::new(&self.env)?;
        let documents: Vec<Value> = store
            .all(
                &format!("SELECT {DOCUMENT_COLUMNS} FROM knowledge_documents WHERE twin_id = ?1"),
                &params![twin_id],
            )
            .await?;
        let mut passages: Vec<Value> = Vec::new();
        if !documents.is_empty() {
            loop {
                let after = passages.last().map_or(0, |p| int(p, "id"));
                let page: Vec<Value> = store
                    .all(
                        "SELECT id, document_id, text FROM knowledge_passages \
                         WHERE twin_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3",
                        &params![twin_id, after, IMPORT_PAGE],
                    )
                    .await?;
                let full = page.len() as i64 == IMPORT_PAGE;
                passages.extend(page);
                if !full {
                    break;
                }
            }
        }
        if self.db.is_marked(IMPORTED)? {
            return Ok(());
        }
        for row in &documents {
            let d = document(twin_id, row);
            let own = passages
                .iter()
                .filter(|p| string(p, "document_id") == d.id)
                .map(|p| {
                    let passage = string(p, "text");
                    (passage, fold(&format!("{}\n{passage}", d.title)))
                });
            self.add(&d, own)?;
        }
        self.db.mark(IMPORTED)
    }
}
