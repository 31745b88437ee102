//! Twins. "Accessible to a user" — not deleted, and public or the user's own — is one SQL rule,
//! `accessible`, used wherever a twin is read for someone.

use serde::Deserialize;

use crate::platform::d1::params;

use crate::http::cursor::{asc, desc, Cursor};
use crate::platform::d1::{Listed, Listing};

use crate::platform::d1::Param;

use crate::platform::d1::Store;

use crate::platform::d1::StoreResult;
use crate::twins::model::{Twin, TwinPatch, Visibility};

/// What a turn with a twin outside a conversation needs (`/chat/completions`).
#[derive(Debug, Clone, Deserialize)]
pub struct Persona {
    pub system_prompt: String,
    pub model: Option<String>,
    /// How many documents the twin has (its object is asked for passages only when any).
    pub knowledge_docs: u64,
}

const COLUMNS: &str = "id, owner_id, name, slug, headline, description, avatar_url, expertise, language, greeting, system_prompt, visibility, model, created_at, updated_at, website_url";

/// The rule for a twin the user bound at `user` may use: not deleted, and public or theirs.
/// `t` is the twins table's name or alias in the statement.
pub(crate) fn accessible(t: &str, user: &str) -> String {
    format!("({t}.deleted_at IS NULL AND ({t}.visibility = 'public' OR {t}.owner_id = {user}))")
}

/// A twin as a model of `/models`: only the columns that answer reads (a persona's prompt,
/// kilobytes a row, never leaves D1 for a list of ids).
#[derive(Debug, Clone, Deserialize)]
pub struct ModelRow {
    pub id: String,
    pub created_at: String,
}

/// The most models `/models` lists (it has no pages, as OpenAI's).
const MAX_MODELS: u64 = 1000;

impl Store {
    /// The twins the user may use, as models, newest first; with `id`, that one only.
    pub async fn models_accessible(
        &self,
        user_id: &str,
        id: Option<&str>,
    ) -> StoreResult<Vec<ModelRow>> {
        let mut sql = format!(
            "SELECT id, created_at FROM twins WHERE {}",
            accessible("twins", "?1")
        );
        let mut args = params![user_id].to_vec();
        if let Some(id) = id {
            sql.push_str(" AND id = ?2");
            args.push(id.js());
        }
        sql.push_str(&format!(" ORDER BY created_at DESC, id LIMIT {MAX_MODELS}"));
        self.all(&sql, &args).await
    }

    pub async fn twins_accessible(
        &self,
        user_id: &str,
        q: Option<&str>,
        limit: u64,
        offset: u64,
        cursor: Option<&Cursor>,
    ) -> StoreResult<Listed<Twin>> {
        let mut filter = accessible("twins", "?1");
        let mut args = params![user_id].to_vec();
        if let Some(q) = q {
            // instr, not LIKE: D1 caps LIKE patterns at 50 bytes, and there are no wildcards to escape.
            filter.push_str(
                " AND (instr(lower(name), lower(?2)) > 0 OR instr(lower(headline), lower(?2)) > 0 \
                 OR instr(lower(expertise), lower(?2)) > 0)",
            );
            args.push(q.js());
        }
        let list = Listing {
            table: "twins",
            columns: COLUMNS,
            filter: &filter,
            keys: &[desc("created_at"), asc("id")],
        };
        self.page::<Twin>(list, &args, limit, offset, cursor).await
    }

    pub async fn twin_accessible(&self, user_id: &str, id: &str) -> StoreResult<Option<Twin>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM twins WHERE id = ?2 AND {}",
            accessible("twins", "?1")
        );
        self.first(&sql, &params![user_id, id]).await
    }

    /// The persona and model of a twin the user may use.
    pub async fn twin_persona(&self, user_id: &str, id: &str) -> StoreResult<Option<Persona>> {
        self.first(
            &format!(
                "SELECT system_prompt, model, knowledge_docs FROM twins WHERE id = ?2 AND {}",
                accessible("twins", "?1")
            ),
            &params![user_id, id],
        )
        .await
    }

    /// `StoreError::Unique` on `twins.slug` when the owner has a twin with this slug; `false`
    /// (nothing written) when the owner already has `max` twins, counted in the same statement.
    pub async fn insert_twin(&self, t: &Twin, max: u64) -> StoreResult<bool> {
        let expertise = serde_json::to_string(&t.expertise)?;
        let inserted = self.run(
            &format!("INSERT INTO twins ({COLUMNS}) SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16 \
                      WHERE (SELECT COUNT(*) FROM twins WHERE owner_id = ?2 AND deleted_at IS NULL) < ?17"),
            &params![
                t.id,
                t.owner_id,
                t.name,
                t.slug,
                t.headline,
                t.description,
                t.avatar_url,
                expertise,
                t.language,
                t.greeting,
                t.system_prompt,
                t.visibility.as_str(),
                t.model,
                t.created_at,
                t.updated_at,
                t.website_url,
                max,
            ],
        )
        .await?;
        Ok(inserted > 0)
    }

    /// Applies the given fields to the owner's twin in one statement; `None` when the owner
    /// has no such twin. `StoreError::Unique` on `twins.slug` when the new slug is taken.
    pub async fn update_twin(
        &self,
        owner_id: &str,
        id: &str,
        patch: &TwinPatch,
        now: &str,
    ) -> StoreResult<Option<Twin>> {
        let expertise = patch
            .expertise
            .as_ref()
            .map(serde_json::to_string)
            .transpose()?;
        let fields: &[(&str, Option<&str>)] = &[
            ("name", patch.name.as_deref()),
            ("slug", patch.slug.as_deref()),
            ("headline", patch.headline.as_deref()),
            ("description", patch.description.as_deref()),
            ("avatar_url", patch.avatar_url.as_deref()),
            ("website_url", patch.website_url.as_deref()),
            ("expertise", expertise.as_deref()),
            ("language", patch.language.as_deref()),
            ("greeting", patch.greeting.as_deref()),
            ("system_prompt", patch.system_prompt.as_deref()),
            ("visibility", patch.visibility.map(Visibility::as_str)),
            ("model", patch.model.as_deref()),
        ];
        let mut sets = vec!["updated_at = ?3".to_owned()];
        let mut args = params![id, owner_id, now].to_vec();
        for &(column, value) in fields {
            if let Some(v) = value {
                args.push(v.js());
                sets.push(format!("{column} = ?{}", args.len()));
            }
        }
        let sql = format!(
            "UPDATE twins SET {} WHERE id = ?1 AND owner_id = ?2 AND deleted_at IS NULL RETURNING {COLUMNS}",
            sets.join(", ")
        );
        self.first(&sql, &args).await
    }

    /// Hides the owner's twin; its conversations stay (and refuse new messages).
    pub async fn delete_twin(&self, owner_id: &str, id: &str, now: &str) -> StoreResult<bool> {
        let changed = self
            .run(
                "UPDATE twins SET deleted_at = ?3, updated_at = ?3, slug = slug || '~deleted~' || id \
                 WHERE id = ?1 AND owner_id = ?2 AND deleted_at IS NULL",
                &params![id, owner_id, now],
            )
            .await?;
        Ok(changed > 0)
    }
}
