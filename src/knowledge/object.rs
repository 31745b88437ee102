//! A twin's knowledge object: one instance per twin (`Instance::Twin`). Its SQLite holds the
//! twin's documents, their passages and an FTS5 index over them, so retrieval reads this twin's
//! passages alone: its cost grows with this twin's documents, never with other twins'. Writes
//! are synchronous runs of SQL (a document and all its passages land together or not at all).

use serde_json::Value;
use worker::{durable_object, Env, Request, Response, State};

use crate::feedback::cell as feedback;
use crate::http::cursor::{self, Key, PageRequest};
use crate::knowledge::model::{
    self as model, assemble, searchable, Document, Placed, Source, MAX_EXTRACTED_CHARS,
    MAX_SOURCES, TITLE,
};
use crate::knowledge::protocol::{self as protocol, Op};
use crate::platform::d1::{params, Store};
use crate::platform::sqlite::{int, opt_int, opt_text, string, text, Sqlite};

const SCHEMA: [&str; 10] = [
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
    // A file's or page's state (SPEC §17); a document without a row is JSON text, `ready`.
    "CREATE TABLE IF NOT EXISTS document_state (
       id TEXT PRIMARY KEY,
       status TEXT NOT NULL,
       error TEXT,
       kind TEXT NOT NULL,
       format TEXT,
       filename TEXT,
       pages INTEGER) WITHOUT ROWID",
    // What a document's passages were cut from (for `GET …/knowledge/{docId}`).
    "CREATE TABLE IF NOT EXISTS contents (id TEXT PRIMARY KEY, content TEXT NOT NULL) WITHOUT ROWID",
    // A passage's PDF page and heading path, when it has them.
    "CREATE TABLE IF NOT EXISTS passage_places (id INTEGER PRIMARY KEY, page INTEGER, section TEXT)",
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
    let opt = |c: &str| row[c].as_str().map(str::to_owned);
    Document {
        id: string(row, "id").to_owned(),
        twin_id: twin_id.to_owned(),
        title: string(row, "title").to_owned(),
        source_url: opt("source_url"),
        status: opt("status").unwrap_or_else(|| "ready".to_owned()),
        error: row["error"]
            .as_str()
            .and_then(|e| serde_json::from_str(e).ok()),
        kind: opt("kind").unwrap_or_else(|| "text".to_owned()),
        format: opt("format"),
        filename: opt("filename"),
        pages: row["pages"].as_u64(),
        chars: int(row, "chars").max(0) as u64,
        chunk_count: int(row, "chunk_count").max(0) as u64,
        created_at: string(row, "created_at").to_owned(),
    }
}

const DOCUMENT_COLUMNS: &str = "id, title, source_url, chars, chunk_count, created_at";
/// A document with its state, as `document` reads it (`documents` is `d`).
const DOCUMENT_ROW: &str = "SELECT d.id, d.title, d.source_url, d.chars, d.chunk_count, \
     d.created_at, s.status, s.error, s.kind, s.format, s.filename, s.pages \
     FROM documents d LEFT JOIN document_state s ON s.id = d.id";

impl TwinKnowledge {
    async fn rpc(&self, request: &str) -> worker::Result<String> {
        let protocol::Request { twin_id, op } = serde_json::from_str(request)?;
        if matches!(op, Op::Purge) {
            self.drop_originals(&format!("{twin_id}/")).await?;
            self.db.wipe().await?;
            // What the twin had in D1 is purged by the Worker; never bring it back.
            self.db.mark(IMPORTED)?;
            return Ok("true".to_owned());
        }
        self.import(&twin_id).await?;
        let answer = match op {
            Op::Add {
                mut document,
                mut passages,
                max_docs,
                content,
            } => {
                if self.documents()? < max_docs {
                    // The object splits a text document itself (the API's wasm carries no
                    // splitting or folding); passages sent along are from an older API.
                    if let (true, Some(content)) = (passages.is_empty(), &content) {
                        passages = model::passages(&document.title, content);
                    }
                    document.chunk_count = passages.len() as u64;
                    let placed = passages.into_iter().map(|(text, body)| Placed {
                        text,
                        body,
                        page: None,
                        section: None,
                    });
                    self.replace(&document, placed.collect(), content.as_deref())?;
                    let mut totals = self.totals()?;
                    totals["passages"] = document.chunk_count.into();
                    totals.to_string()
                } else {
                    "null".to_owned()
                }
            }
            Op::Get { document_id } => match self.get(&twin_id, &document_id)? {
                Some(d) => {
                    let rows: Vec<Value> = self.db.rows(
                        "SELECT content FROM contents WHERE id = ?",
                        vec![text(&document_id)],
                    )?;
                    let content = rows.first().map(|r| r["content"].clone());
                    serde_json::json!({ "document": d, "content": content }).to_string()
                }
                None => "null".to_owned(),
            },
            Op::Ingested {
                document_id,
                blocks,
                pages,
                title,
                max_chars,
            } => match self.get(&twin_id, &document_id)? {
                Some(mut d) if d.status == "processing" => {
                    if let Some(t) = title.filter(|t| !t.trim().is_empty()) {
                        d.title = t.trim().chars().take(TITLE.max).collect();
                    }
                    let (content, placed) = assemble(&d.title, &blocks);
                    let chars = content.chars().count() as u64;
                    let cap = max_chars.min(MAX_EXTRACTED_CHARS as u64);
                    if chars > cap {
                        let message = format!(
                            "Its text ({chars} characters) is more than a document may have or \
                             this account may still hold ({cap})"
                        );
                        let error = serde_json::json!({ "code": "TOO_LARGE", "message": message });
                        self.fail(&twin_id, d, error).await?
                    } else {
                        d.status = "ready".to_owned();
                        d.error = None;
                        d.pages = pages;
                        d.chars = chars;
                        d.chunk_count = placed.len() as u64;
                        self.replace(&d, placed, Some(&content))?;
                        self.publish_totals(&twin_id).await?;
                        serde_json::to_string(&d)?
                    }
                }
                _ => "null".to_owned(),
            },
            Op::Failed {
                document_id,
                error,
            } => match self.get(&twin_id, &document_id)? {
                Some(d) => self.fail(&twin_id, d, error).await?,
                None => "null".to_owned(),
            },
            Op::Refresh { document_id } => match self.get(&twin_id, &document_id)? {
                Some(d) if d.kind != "url" => {
                    serde_json::json!({ "refused": "Only a document imported from a URL can be refreshed" })
                        .to_string()
                }
                Some(d) if d.status == "processing" => {
                    serde_json::json!({ "refused": "This document is being processed already" })
                        .to_string()
                }
                Some(mut d) => {
                    d.status = "processing".to_owned();
                    d.error = None;
                    self.set_state(&d)?;
                    serde_json::to_string(&d)?
                }
                None => "null".to_owned(),
            },
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
                let found = self.get(&twin_id, &document_id)?;
                if let Some(d) = found {
                    // The original first: if R2 fails, the document is still there to delete.
                    if d.kind != "text" {
                        self.drop_originals(&format!("{twin_id}/{document_id}"))
                            .await?;
                    }
                    self.remove(&document_id)?;
                    self.totals()?.to_string()
                } else {
                    "null".to_owned()
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
            Op::Retrieve { text: asked } => {
                let Some(query) = model::fts_query(&asked) else {
                    return Ok("[]".to_owned());
                };
                let rows: Vec<Value> = self.db.rows(
                    &format!(
                        "SELECT d.id AS document_id, d.title, d.source_url, p.text, \
                         pl.page, pl.section \
                         FROM fts JOIN passages p ON p.id = fts.rowid \
                         JOIN documents d ON d.id = p.document_id \
                         LEFT JOIN passage_places pl ON pl.id = p.id \
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
                        page: r["page"].as_u64(),
                        section: r["section"].as_str().map(str::to_owned),
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
                &format!("{DOCUMENT_ROW} ORDER BY d.created_at DESC, d.id LIMIT ? OFFSET ?"),
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
        // The keyset names `documents`' columns, unqualified: it picks the rows there; the
        // join then orders them by `d`'s (`id` alone would be ambiguous beside the state's).
        let outer: Vec<String> = order.split(", ").map(|term| format!("d.{term}")).collect();
        let rows = self.db.rows(
            &format!(
                "{DOCUMENT_ROW} WHERE d.id IN (SELECT id FROM documents WHERE {beyond} \
                 ORDER BY {order} LIMIT ?) ORDER BY {}",
                outer.join(", ")
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

    /// The uploaded or fetched originals (R2, put by the ingest worker as `{twin}/{doc}`)
    /// whose keys start with `prefix`.
    async fn drop_originals(&self, prefix: &str) -> worker::Result<()> {
        let bucket = self.env.bucket("ORIGINALS")?;
        loop {
            let page = bucket.list().prefix(prefix).execute().await?;
            let keys: Vec<String> = page.objects().iter().map(|o| o.key()).collect();
            if keys.is_empty() {
                return Ok(());
            }
            bucket.delete_multiple(keys).await?;
            if !page.truncated() {
                return Ok(());
            }
        }
    }

    fn get(&self, twin_id: &str, document_id: &str) -> worker::Result<Option<Document>> {
        let rows: Vec<Value> = self.db.rows(
            &format!("{DOCUMENT_ROW} WHERE d.id = ?"),
            vec![text(document_id)],
        )?;
        Ok(rows.first().map(|r| document(twin_id, r)))
    }

    fn set_state(&self, d: &Document) -> worker::Result<()> {
        let error = d.error.as_ref().map(Value::to_string);
        self.db.run(
            "INSERT OR REPLACE INTO document_state \
             (id, status, error, kind, format, filename, pages) VALUES (?, ?, ?, ?, ?, ?, ?)",
            vec![
                text(&d.id),
                text(&d.status),
                opt_text(error.as_deref()),
                text(&d.kind),
                opt_text(d.format.as_deref()),
                opt_text(d.filename.as_deref()),
                opt_int(d.pages.map(|p| p as i64)),
            ],
        )
    }

    /// A document and everything of it: its passages, their index entries and places, its
    /// state and its content.
    fn remove(&self, document_id: &str) -> worker::Result<()> {
        let id = vec![text(document_id)];
        for (table, key) in [("fts", "rowid"), ("passage_places", "id")] {
            self.db.run(
                &format!(
                    "DELETE FROM {table} WHERE {key} IN \
                     (SELECT id FROM passages WHERE document_id = ?)"
                ),
                id.clone(),
            )?;
        }
        self.db
            .run("DELETE FROM passages WHERE document_id = ?", id.clone())?;
        for table in ["documents", "document_state", "contents"] {
            self.db
                .run(&format!("DELETE FROM {table} WHERE id = ?"), id.clone())?;
        }
        Ok(())
    }

    /// A document — new, or replacing what it was — with its passages, state (a file's or a
    /// page's; JSON text has none) and content, in one synchronous run: a search sees its old
    /// passages or its new ones, never half of them.
    fn replace(
        &self,
        d: &Document,
        placed: Vec<Placed>,
        content: Option<&str>,
    ) -> worker::Result<()> {
        self.remove(&d.id)?;
        self.add(d, placed.into_iter())?;
        if d.kind != "text" {
            self.set_state(d)?;
        }
        if let Some(content) = content {
            self.db.run(
                "INSERT INTO contents (id, content) VALUES (?, ?)",
                vec![text(&d.id), text(content)],
            )?;
        }
        Ok(())
    }

    /// The document is `failed` with `error` and has no passages; answers it.
    async fn fail(&self, twin_id: &str, mut d: Document, error: Value) -> worker::Result<String> {
        d.status = "failed".to_owned();
        d.error = Some(error);
        d.chars = 0;
        d.chunk_count = 0;
        d.pages = None;
        self.replace(&d, Vec::new(), None)?;
        self.publish_totals(twin_id).await?;
        Ok(serde_json::to_string(&d)?)
    }

    /// The twin's D1 row learns its totals after a document finished processing (off the
    /// request: the API set them when it was added or deleted).
    async fn publish_totals(&self, twin_id: &str) -> worker::Result<()> {
        let t = self.totals()?;
        Store::new(&self.env)?
            .run(
                "UPDATE twins SET knowledge_docs = ?2, knowledge_chars = ?3 WHERE id = ?1",
                &params![twin_id, int(&t, "documents"), int(&t, "chars")],
            )
            .await?;
        Ok(())
    }

    /// A document and its passages, with their index entries and places.
    fn add(&self, d: &Document, passages: impl Iterator<Item = Placed>) -> worker::Result<()> {
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
        for (seq, p) in passages.enumerate() {
            let id = first + seq as i64;
            self.db.run(
                "INSERT INTO passages (id, document_id, seq, text) VALUES (?, ?, ?, ?)",
                vec![id.into(), text(&d.id), (seq as i64).into(), text(&p.text)],
            )?;
            self.db.run(
                "INSERT INTO fts (rowid, body) VALUES (?, ?)",
                vec![id.into(), text(&p.body)],
            )?;
            if p.page.is_some() || p.section.is_some() {
                self.db.run(
                    "INSERT INTO passage_places (id, page, section) VALUES (?, ?, ?)",
                    vec![
                        id.into(),
                        opt_int(p.page.map(|n| n as i64)),
                        opt_text(p.section.as_deref()),
                    ],
                )?;
            }
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
                    Placed {
                        text: passage.to_owned(),
                        body: searchable(&d.title, None, passage),
                        page: None,
                        section: None,
                    }
                });
            self.add(&d, own)?;
        }
        self.db.mark(IMPORTED)
    }
}
