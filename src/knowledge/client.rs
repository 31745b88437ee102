//! The Worker's calls to a twin's knowledge object.

use serde_json::Value;
use worker::Env;

use crate::http::cursor::{self, PageRequest};
use crate::http::error::ApiError;
use crate::knowledge::model::{Document, Source};
use crate::knowledge::protocol::{Knowledge, Op, Request};
use crate::platform::instance::Instance;
use crate::platform::object::DoClient;

pub async fn call<T: serde::de::DeserializeOwned>(
    env: &Env,
    twin_id: &str,
    op: Op,
) -> Result<T, ApiError> {
    let request = Request {
        twin_id: twin_id.to_owned(),
        op,
    };
    DoClient::<Knowledge>::get(env, &Instance::Twin { id: twin_id })?
        .call(&request)
        .await
}

/// A twin's documents and their characters after a change.
#[derive(Debug, Clone, Copy)]
pub struct Totals {
    pub documents: u64,
    pub chars: u64,
}

pub fn totals(answer: &Value) -> Option<Totals> {
    Some(Totals {
        documents: answer["documents"].as_u64()?,
        chars: answer["chars"].as_u64()?,
    })
}

/// Adds the document (split into passages by the twin's object) unless the twin has
/// `max_docs`; the twin's totals and the document's passages after it, `None` when it was full.
pub async fn add(
    env: &Env,
    document: Document,
    max_docs: u64,
    content: String,
) -> Result<Option<(Totals, u64)>, ApiError> {
    let twin_id = document.twin_id.clone();
    let op = Op::Add {
        document: Box::new(document),
        passages: Vec::new(),
        max_docs,
        content: Some(content),
    };
    let answer = call::<Value>(env, &twin_id, op).await?;
    Ok(totals(&answer).map(|t| (t, answer["passages"].as_u64().unwrap_or(0))))
}

/// A page of the twin's documents (as the API shows them), how many it has, and (a cursor
/// page) whether more follow.
pub async fn list(
    env: &Env,
    twin_id: &str,
    page: PageRequest,
) -> Result<(Value, u64, Option<bool>), ApiError> {
    let cursor = page.cursor.clone();
    let mut listed: Value = call(env, twin_id, Op::List(page)).await?;
    if let (Some(c), true) = (&cursor, listed["unknownCursor"] == true) {
        return Err(cursor::unknown(c));
    }
    let total = listed["total"].as_u64().unwrap_or(0);
    Ok((listed["documents"].take(), total, listed["more"].as_bool()))
}

/// The twin's totals after the delete; `None` when it had no such document.
pub async fn delete(
    env: &Env,
    twin_id: &str,
    document_id: &str,
) -> Result<Option<Totals>, ApiError> {
    let op = Op::Delete {
        document_id: document_id.to_owned(),
    };
    Ok(totals(&call::<Value>(env, twin_id, op).await?))
}

/// The twin's best passages for `message` (none when the twin has no documents: then the
/// object is not called).
pub async fn retrieve(
    env: &Env,
    twin_id: &str,
    documents: u64,
    message: &str,
) -> Result<Vec<Source>, ApiError> {
    if documents == 0 {
        return Ok(Vec::new());
    }
    let op = Op::Retrieve {
        text: message.to_owned(),
    };
    call(env, twin_id, op).await
}

/// Empties the twin's object (the twin was deleted).
pub async fn purge(env: &Env, twin_id: &str) -> Result<(), ApiError> {
    call::<bool>(env, twin_id, Op::Purge).await.map(|_| ())
}
