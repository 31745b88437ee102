//! What D1 keeps of a twin's knowledge: the number of documents on the twin's row (the
//! documents themselves live in the twin's object), and the tables from before the objects,
//! which each object copies once and a twin's deletion purges. Every statement names the owner.

use crate::platform::d1::{params, Store, StoreResult};

/// The twin bound at `twin`, if the user bound at `owner` owns it and it is not deleted.
fn owned_twin(twin: &str, owner: &str) -> String {
    format!("SELECT id FROM twins WHERE id = {twin} AND owner_id = {owner} AND deleted_at IS NULL")
}

impl Store {
    /// Whether `owner` owns the twin (and it is not deleted).
    pub async fn owns_twin(&self, owner: &str, twin_id: &str) -> StoreResult<bool> {
        let row: Option<serde_json::Value> = self
            .first(&owned_twin("?1", "?2"), &params![twin_id, owner])
            .await?;
        Ok(row.is_some())
    }

    /// The twin's number of documents, as its object counted them after a change.
    pub async fn set_knowledge_docs(&self, owner: &str, twin_id: &str, n: u64) -> StoreResult<()> {
        self.run(
            "UPDATE twins SET knowledge_docs = ?3 WHERE id = ?1 AND owner_id = ?2",
            &params![twin_id, owner, n],
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
