//! The protocol of a twin's knowledge object (SPEC §14: one Durable Object per twin holds its
//! documents, passages and full-text index, and serves retrieval for that twin alone).

use serde::{Deserialize, Serialize};

use crate::knowledge::model::{Block, Document};

/// Every op names its twin: the object learns which twin it is from it (to carry over what
/// the twin had in D1 before it had an object).
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Request {
    pub twin_id: String,
    pub op: Op,
}

#[derive(Serialize, Deserialize)]
// Externally tagged (serde's default): internally tagged enums cost the wasm several KB each.
#[serde(rename_all = "camelCase")]
pub enum Op {
    /// Add a document and its passages (`(text, searchable text)`), unless the twin already has
    /// `max_docs` documents. Answers the twin's `{"documents": n, "chars": n}` after it
    /// (`null`: full).
    /// A file or page waiting for the ingest worker comes as `processing` with no passages
    /// (or `failed`, when refused at once); `content` is kept for `Get`.
    #[serde(rename_all = "camelCase")]
    Add {
        document: Box<Document>,
        /// Empty: the object splits `content` (older APIs sent them split).
        #[serde(default)]
        passages: Vec<(String, String)>,
        max_docs: u64,
        #[serde(default)]
        content: Option<String>,
    },
    /// One document with its content. Answers `{"document": Document, "content": text|null}`
    /// (`null`: no such document).
    #[serde(rename_all = "camelCase")]
    Get { document_id: String },
    /// The ingest worker extracted a `processing` document: its blocks become its content and
    /// passages (replacing a refreshed page's), and it is `ready`. Answers the document
    /// (`null`: deleted meanwhile, or not processing).
    #[serde(rename_all = "camelCase")]
    Ingested {
        document_id: String,
        blocks: Vec<Block>,
        #[serde(default)]
        pages: Option<u64>,
        /// The page's own title, for an imported page given none.
        #[serde(default)]
        title: Option<String>,
        /// The characters the account may still hold: more fails the document `TOO_LARGE`.
        max_chars: u64,
    },
    /// The ingest worker could not extract it: `failed` with `error` (`{code, message}`), and
    /// no passages. Answers the document (`null`: deleted meanwhile).
    #[serde(rename_all = "camelCase")]
    Failed {
        document_id: String,
        error: serde_json::Value,
    },
    /// An imported page is to be fetched again: `processing` until the ingest worker is done
    /// (its passages are retrieved meanwhile). Answers the document, `{"refused": why}`, or
    /// `null` (no such document).
    #[serde(rename_all = "camelCase")]
    Refresh { document_id: String },
    /// A page of documents, newest first, by number or from a cursor. Answers `{"documents":
    /// [Document], "total": n, "more": bool|null}`, or `{"unknownCursor": true}`.
    List(crate::http::cursor::PageRequest),
    /// Remove a document, its passages and their index entries. Answers the twin's
    /// `{"documents": n, "chars": n}` after it (`null`: no such document).
    #[serde(rename_all = "camelCase")]
    Delete { document_id: String },
    /// The best passages for a user's text (searched as `knowledge::model::fts_query` makes
    /// it; nothing when no word is searchable). Answers `Vec<Source>`.
    Retrieve {
        #[serde(alias = "query")]
        text: String,
    },
    /// Everything goes: the twin was deleted.
    Purge,
    /// A reply's latest rating (`feedback::cell::record`). Answers `true`.
    Feedback(serde_json::Value),
    /// The twin's feedback report over an inclusive range of UTC days
    /// (`feedback::cell::report`), passed through as JSON.
    FeedbackReport { from: String, to: String },
    /// An end user's erasure: their ratings anonymised. Answers how many.
    #[serde(rename_all = "camelCase")]
    ForgetEndUser { end_user_id: String },
    /// A deleted conversation: its ratings anonymised. Answers how many.
    #[serde(rename_all = "camelCase")]
    ForgetConversation { conversation_id: String },
}

// The answers are plain JSON (a number, a list passed through to the API's answer): a typed
// answer struct per op would each cost the wasm a deserializer of its own.

/// The protocol of `knowledge::object::TwinKnowledge`, for `platform::object::DoClient`.
#[cfg(target_arch = "wasm32")]
pub struct Knowledge;

#[cfg(target_arch = "wasm32")]
impl crate::platform::object::Protocol for Knowledge {
    const CLASS: crate::platform::instance::Class = crate::platform::instance::Class::Knowledge;
    type Op = Request;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_names_its_twin_and_its_op() {
        let r = Request {
            twin_id: "twn_1".into(),
            op: Op::Retrieve {
                text: "phở".into()
            },
        };
        let text = serde_json::to_string(&r).unwrap();
        assert_eq!(
            text,
            r#"{"twinId":"twn_1","op":{"retrieve":{"text":"phở"}}}"#
        );
        let back: Request = serde_json::from_str(&text).unwrap();
        assert!(matches!(back.op, Op::Retrieve { .. }));
        let purge: Request = serde_json::from_str(r#"{"twinId":"t","op":"purge"}"#).unwrap();
        assert!(matches!(purge.op, Op::Purge));
    }
}
