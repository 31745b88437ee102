//! The protocol of a twin's knowledge object (SPEC §14: one Durable Object per twin holds its
//! documents, passages and full-text index, and serves retrieval for that twin alone).

use serde::{Deserialize, Serialize};

use crate::knowledge::model::Document;

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
    #[serde(rename_all = "camelCase")]
    Add {
        document: Document,
        passages: Vec<(String, String)>,
        max_docs: u64,
    },
    /// A page of documents, newest first, by number or from a cursor. Answers `{"documents":
    /// [Document], "total": n, "more": bool|null}`, or `{"unknownCursor": true}`.
    List(crate::http::cursor::PageRequest),
    /// Remove a document, its passages and their index entries. Answers the twin's
    /// `{"documents": n, "chars": n}` after it (`null`: no such document).
    #[serde(rename_all = "camelCase")]
    Delete { document_id: String },
    /// The best passages for an FTS5 query (`knowledge::model::fts_query`). Answers
    /// `Vec<Source>`.
    Retrieve { query: String },
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
                query: "\"pho\"".into(),
            },
        };
        let text = serde_json::to_string(&r).unwrap();
        assert_eq!(
            text,
            r#"{"twinId":"twn_1","op":{"retrieve":{"query":"\"pho\""}}}"#
        );
        let back: Request = serde_json::from_str(&text).unwrap();
        assert!(matches!(back.op, Op::Retrieve { .. }));
        let purge: Request = serde_json::from_str(r#"{"twinId":"t","op":"purge"}"#).unwrap();
        assert!(matches!(purge.op, Op::Purge));
    }
}
