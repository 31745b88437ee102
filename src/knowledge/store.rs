//! What D1 keeps of a twin's knowledge: the number of documents on the twin's row (the
//! documents themselves live in the twin's object), and the tables from before the objects,
//! which each object copies once and a twin's deletion purges. Every statement names the owner.

use crate::platform::d1::{params, Store, StoreResult};

/// The twin bound at `twin`, if the user bound at `owner` owns it and it is not deleted.
fn owned_twin(twin: &str, owner: &str) -> String {
    format!("SELECT id FROM twins WHERE id = {twin} AND owner_id = {owner} AND deleted_at IS NULL")
}

impl Store {
    /// `None` unless `owner` owns the twin (and it is not deleted); else the characters of
    /// knowledge the owner's twins hold in all (`MAX_KNOWLEDGE_CHARS_PER_ACCOUNT`).
    pub async fn owned_twin_knowledge(
        &self,
        owner: &str,
        twin_id: &str,
    ) -> StoreResult<Option<u64>> {
        let row: Option<serde_json::Value> = self
            .first(
                &format!(
                    "SELECT (SELECT COALESCE(SUM(knowledge_chars), 0) FROM twins \
                       WHERE owner_id = ?2 AND deleted_at IS NULL) AS used \
                     FROM ({}) AS owned",
                    owned_twin("?1", "?2")
                ),
                &params![twin_id, owner],
            )
            .await?;
        Ok(row.map(|r| r["used"].as_u64().unwrap_or(0)))
    }

    /// The twin's documents and their characters, as its object counted them after a change.
    pub async fn set_knowledge_totals(
        &self,
        owner: &str,
        twin_id: &str,
        documents: u64,
        chars: u64,
    ) -> StoreResult<()> {
        self.run(
            "UPDATE twins SET knowledge_docs = ?3, knowledge_chars = ?4 \
             WHERE id = ?1 AND owner_id = ?2",
            &params![twin_id, owner, documents, chars],
        )
        .await
        .map(|_| ())
    }

    /// Removes what the twin had in the knowledge tables from before the objects.
    pub async fn purge_legacy_knowledge(&self, twin_id: &str) -> StoreResult<()> {
        let args = params![twin_id];
        self.batch(vec![
            self.stmt(
                "DELETE FROM knowledge_fts WHERE rowid IN \
                 (SELECT id FROM knowledge_passages WHERE twin_id = ?1)",
                &args,
            )?,
            self.stmt("DELETE FROM knowledge_passages WHERE twin_id = ?1", &args)?,
            self.stmt("DELETE FROM knowledge_documents WHERE twin_id = ?1", &args)?,
        ])
        .await
        .map(|_| ())
    }
}
