//! Twins. "Accessible to a user" is `visibility = 'public' OR owner_id = user`, in SQL.

use serde::Deserialize;
use worker::wasm_bindgen::JsValue;

use super::{is_unique_violation, opt, s, Listing, Store};
use crate::core::error::ApiError;
use crate::core::knowledge::{self, Source};
use crate::core::twins::TwinInput;

#[derive(Debug, Clone, Deserialize)]
pub struct TwinRow {
    pub id: String,
    pub owner_id: String,
    pub name: String,
    pub slug: String,
    pub headline: String,
    pub description: String,
    pub avatar_url: Option<String>,
    pub expertise: String,
    pub language: String,
    pub greeting: String,
    pub system_prompt: String,
    pub visibility: String,
    pub model: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Persona {
    pub system_prompt: String,
    pub model: Option<String>,
}

const COLUMNS: &str = "id, owner_id, name, slug, headline, description, avatar_url, expertise, language, greeting, system_prompt, visibility, model, created_at, updated_at";
/// A twin anyone may use: not deleted, and public or the caller's own (`?1`).
const ACCESSIBLE: &str = "(deleted_at IS NULL AND (visibility = 'public' OR owner_id = ?1))";

fn slug_taken() -> ApiError {
    ApiError::Conflict("You already have a twin with this slug".into())
}

impl Store {
    pub async fn twins_accessible(
        &self,
        user_id: &str,
        q: Option<&str>,
        limit: u64,
        offset: u64,
    ) -> Result<(Vec<TwinRow>, u64), ApiError> {
        let mut filter = ACCESSIBLE.to_owned();
        let mut args = vec![s(user_id)];
        if let Some(q) = q {
            // instr, not LIKE: D1 caps LIKE patterns at 50 bytes, and there are no wildcards to escape.
            filter.push_str(
                " AND (instr(lower(name), lower(?2)) > 0 OR instr(lower(headline), lower(?2)) > 0 \
                 OR instr(lower(expertise), lower(?2)) > 0)",
            );
            args.push(s(q));
        }
        let list = Listing {
            table: "twins",
            columns: COLUMNS,
            filter: &filter,
            order: "created_at DESC, id",
        };
        self.page(list, &args, limit, offset).await
    }

    pub async fn twin_accessible(
        &self,
        user_id: &str,
        id: &str,
    ) -> Result<Option<TwinRow>, ApiError> {
        let sql = format!("SELECT {COLUMNS} FROM twins WHERE id = ?2 AND {ACCESSIBLE}");
        self.first(&sql, &[s(user_id), s(id)]).await
    }

    /// A twin's persona and model for a stateless completion (if accessible), with the
    /// account's tokens on `day`, in one round trip.
    pub async fn twin_persona(
        &self,
        user_id: &str,
        id: &str,
        day: &str,
        message: &str,
    ) -> Result<Option<((Persona, Vec<Source>), u64)>, ApiError> {
        let read = self.stmt(
            &format!("SELECT system_prompt, model FROM twins WHERE id = ?2 AND {ACCESSIBLE}"),
            &[s(user_id), s(id)],
        )?;
        // An inaccessible twin's passages are read but never used: the persona read is empty.
        let retrieval = knowledge::fts_query(message)
            .map(|q| self.retrieval(&q, "?2", &[s(id)]))
            .transpose()?;
        self.with_usage(read, user_id, day, retrieval).await
    }

    pub async fn insert_twin(&self, t: &TwinRow) -> Result<(), ApiError> {
        let res = self
            .run(
                &format!("INSERT INTO twins ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)"),
                &[
                    s(&t.id),
                    s(&t.owner_id),
                    s(&t.name),
                    s(&t.slug),
                    s(&t.headline),
                    s(&t.description),
                    opt(t.avatar_url.as_deref()),
                    s(&t.expertise),
                    s(&t.language),
                    s(&t.greeting),
                    s(&t.system_prompt),
                    s(&t.visibility),
                    opt(t.model.as_deref()),
                    s(&t.created_at),
                    s(&t.updated_at),
                ],
            )
            .await;
        match res {
            Err(e) if is_unique_violation(&e) => Err(slug_taken()),
            other => other.map(|_| ()),
        }
    }

    /// Applies the given fields to the owner's twin; `None` when the owner has no such twin.
    pub async fn update_twin(
        &self,
        owner_id: &str,
        id: &str,
        input: &TwinInput,
        now: &str,
    ) -> Result<Option<TwinRow>, ApiError> {
        let expertise = input
            .expertise
            .as_ref()
            .map(|e| serde_json::Value::from(e.clone()).to_string());
        let fields: [(&str, Option<&str>); 11] = [
            ("name", input.name.as_deref()),
            ("slug", input.slug.as_deref()),
            ("headline", input.headline.as_deref()),
            ("description", input.description.as_deref()),
            ("avatar_url", input.avatar_url.as_deref()),
            ("expertise", expertise.as_deref()),
            ("language", input.language.as_deref()),
            ("greeting", input.greeting.as_deref()),
            ("system_prompt", input.system_prompt.as_deref()),
            ("visibility", input.visibility.as_deref()),
            ("model", input.model.as_deref()),
        ];
        let mut sets = vec!["updated_at = ?3".to_owned()];
        let mut args: Vec<JsValue> = vec![s(id), s(owner_id), s(now)];
        for (column, value) in fields {
            if let Some(v) = value {
                args.push(s(v));
                sets.push(format!("{column} = ?{}", args.len()));
            }
        }
        let sql = format!(
            "UPDATE twins SET {} WHERE id = ?1 AND owner_id = ?2 AND deleted_at IS NULL",
            sets.join(", ")
        );
        match self.run(&sql, &args).await {
            Err(e) if is_unique_violation(&e) => return Err(slug_taken()),
            Err(e) => return Err(e),
            Ok(0) => return Ok(None),
            Ok(_) => {}
        }
        let sql = format!("SELECT {COLUMNS} FROM twins WHERE id = ?1 AND owner_id = ?2");
        self.first(&sql, &[s(id), s(owner_id)]).await
    }

    /// Hides the owner's twin; its conversations stay (and refuse new messages).
    pub async fn delete_twin(&self, owner_id: &str, id: &str, now: &str) -> Result<bool, ApiError> {
        Ok(self
            .run(
                "UPDATE twins SET deleted_at = ?3, updated_at = ?3, slug = slug || '~deleted~' || id \
                 WHERE id = ?1 AND owner_id = ?2 AND deleted_at IS NULL",
                &[s(id), s(owner_id), s(now)],
            )
            .await?
            > 0)
    }
}
