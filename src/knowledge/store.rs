//! Knowledge: a twin's documents, their passages and the full-text index over them. Every
//! statement names the owner (writes, listings) or the twin (retrieval) in SQL.

use serde::Deserialize;

use crate::platform::d1::params;

use crate::platform::d1::Listing;

use crate::platform::d1::Store;

use crate::knowledge::model::{Document, Source, MAX_SOURCES};
use crate::platform::d1::StoreResult;

const DOCUMENT_COLUMNS: &str = "id, twin_id, title, source_url, chars, chunk_count, created_at";

/// The twin bound at `twin`, if the user bound at `owner` owns it and it is not deleted.
fn owned_twin(twin: &str, owner: &str) -> String {
    format!("SELECT id FROM twins WHERE id = {twin} AND owner_id = {owner} AND deleted_at IS NULL")
}

#[derive(Deserialize)]
struct DocumentRow {
    id: String,
    twin_id: String,
    title: String,
    source_url: Option<String>,
    chars: u64,
    chunk_count: u64,
    created_at: String,
}

impl From<DocumentRow> for Document {
    fn from(r: DocumentRow) -> Document {
        Document {
            id: r.id,
            twin_id: r.twin_id,
            title: r.title,
            source_url: r.source_url,
            chars: r.chars,
            chunk_count: r.chunk_count,
            created_at: r.created_at,
        }
    }
}

#[derive(Deserialize)]
struct SourceRow {
    document_id: String,
    title: String,
    source_url: Option<String>,
    text: String,
}

/// Why a document was not added.
pub enum NotAdded {
    /// The twin is not the caller's (or is deleted).
    NoTwin,
    /// The twin already has its maximum of documents.
    Full,
}

impl Store {
    /// Adds `doc` and its `passages` (`(text, searchable text)`) in one transaction, if `owner`
    /// owns the twin and it has fewer than `max_docs` documents (checked in the same write).
    pub async fn add_document(
        &self,
        owner: &str,
        doc: &Document,
        passages: &[(String, String)],
        max_docs: u64,
    ) -> StoreResult<Result<(), NotAdded>> {
        let rows = serde_json::to_string(passages)?;
        let insert = self.stmt(
            &format!(
                "INSERT INTO knowledge_documents ({DOCUMENT_COLUMNS}) \
                 SELECT ?1, ?2, ?4, ?5, ?6, ?7, ?8 WHERE EXISTS ({}) \
                   AND (SELECT COUNT(*) FROM knowledge_documents WHERE twin_id = ?2) < ?9",
                owned_twin("?2", "?3")
            ),
            &params![
                &doc.id,
                &doc.twin_id,
                owner,
                &doc.title,
                doc.source_url.as_deref(),
                doc.chars as i64,
                doc.chunk_count as i64,
                &doc.created_at,
                max_docs as i64,
            ],
        )?;
        // Both follow the document row: with no row (refused), they add nothing.
        let passages = self.stmt(
            "INSERT INTO knowledge_passages (document_id, twin_id, seq, text) \
             SELECT d.id, d.twin_id, j.key, json_extract(j.value, '$[0]') \
             FROM knowledge_documents d, json_each(?2) j WHERE d.id = ?1",
            &params![&doc.id, &rows],
        )?;
        let index = self.stmt(
            "INSERT INTO knowledge_fts (rowid, body) \
             SELECT p.id, json_extract(j.value, '$[1]') FROM json_each(?2) j \
             JOIN knowledge_passages p ON p.document_id = ?1 AND p.seq = j.key",
            &params![&doc.id, &rows],
        )?;
        let results = self.batch(vec![insert, passages, index]).await?;
        if crate::platform::d1::changes(&results[0]) == 1 {
            return Ok(Ok(()));
        }
        let owned: Option<serde_json::Value> = self
            .first(&owned_twin("?1", "?2"), &params![&doc.twin_id, owner])
            .await?;
        Ok(Err(if owned.is_some() {
            NotAdded::Full
        } else {
            NotAdded::NoTwin
        }))
    }

    /// A page of the twin's documents, newest first; `None` when `owner` does not own it.
    pub async fn documents(
        &self,
        owner: &str,
        twin_id: &str,
        limit: u64,
        offset: u64,
    ) -> StoreResult<Option<(Vec<Document>, u64)>> {
        let owned_sql = owned_twin("?1", "?2");
        let (owned_args, page_args) = (params![twin_id, owner], params![twin_id]);
        let owned = self.first::<serde_json::Value>(&owned_sql, &owned_args);
        let list = Listing {
            table: "knowledge_documents",
            columns: DOCUMENT_COLUMNS,
            filter: "twin_id = ?1",
            order: "created_at DESC, id",
        };
        let page = self.page::<DocumentRow>(list, &page_args, limit, offset);
        let (owned, page) = futures::join!(owned, page);
        if owned?.is_none() {
            return Ok(None);
        }
        let (rows, total) = page?;
        Ok(Some((
            rows.into_iter().map(Document::from).collect(),
            total,
        )))
    }

    /// Removes a document, its passages and their index entries; false if there is no such
    /// document of a twin `owner` owns.
    pub async fn delete_document(
        &self,
        owner: &str,
        twin_id: &str,
        doc_id: &str,
    ) -> StoreResult<bool> {
        let doc = format!(
            "SELECT id FROM knowledge_documents WHERE id = ?1 AND twin_id IN ({})",
            owned_twin("?2", "?3")
        );
        let args = params![doc_id, twin_id, owner];
        let results = self
            .batch(vec![
                self.stmt(
                    &format!(
                        "DELETE FROM knowledge_fts WHERE rowid IN \
                         (SELECT id FROM knowledge_passages WHERE document_id IN ({doc}))"
                    ),
                    &args,
                )?,
                self.stmt(
                    &format!("DELETE FROM knowledge_passages WHERE document_id IN ({doc})"),
                    &args,
                )?,
                self.stmt(
                    &format!("DELETE FROM knowledge_documents WHERE id IN ({doc})"),
                    &args,
                )?,
            ])
            .await?;
        Ok(crate::platform::d1::changes(&results[2]) > 0)
    }

    /// The best passages of a twin for `query` (an FTS5 query from `knowledge::fts_query`),
    /// as a statement to batch with the turn's other reads. `twin` is an SQL expression for
    /// the twin's id over the statement's `?2…`, bound by `args`.
    pub fn retrieval(
        &self,
        query: &str,
        twin: &str,
        args: &[worker::wasm_bindgen::JsValue],
    ) -> StoreResult<worker::D1PreparedStatement> {
        let mut all = params![query].to_vec();
        all.extend_from_slice(args);
        self.stmt(
            &format!(
                "SELECT d.id AS document_id, d.title, d.source_url, p.text \
                 FROM knowledge_fts JOIN knowledge_passages p ON p.id = knowledge_fts.rowid \
                 JOIN knowledge_documents d ON d.id = p.document_id \
                 WHERE knowledge_fts MATCH ?1 AND p.twin_id = ({twin}) \
                 ORDER BY bm25(knowledge_fts) LIMIT {MAX_SOURCES}"
            ),
            &all,
        )
    }
}

impl Store {
    /// Runs a turn's read (`context`) and the knowledge retrieval (if the message has
    /// searchable words) in one round trip; `None` when the read found nothing.
    pub async fn with_sources<T: serde::de::DeserializeOwned>(
        &self,
        context: worker::D1PreparedStatement,
        retrieval: Option<worker::D1PreparedStatement>,
    ) -> StoreResult<Option<(T, Vec<Source>)>> {
        let mut stmts = vec![context];
        stmts.extend(retrieval);
        let results = self.batch(stmts).await?;
        let Some(context) = results[0].results::<T>()?.into_iter().next() else {
            return Ok(None);
        };
        let sources = match results.get(1) {
            Some(r) => sources(r)?,
            None => Vec::new(),
        };
        Ok(Some((context, sources)))
    }
}

/// The sources a retrieval statement found.
fn sources(result: &worker::D1Result) -> StoreResult<Vec<Source>> {
    Ok(result
        .results::<SourceRow>()?
        .into_iter()
        .map(|r| Source {
            document_id: r.document_id,
            title: r.title,
            source_url: r.source_url,
            text: r.text,
        })
        .collect())
}
