//! The schemas of knowledge documents and citations, for the OpenAPI document (`http::openapi`); field limits from `knowledge::model`.

use serde_json::{json, Value};

#[allow(unused_imports)]
use crate::http::openapi::{list_of, ns, ntime, s, schema, text, time};
use crate::knowledge::model as kn;

/// Knowledge documents and the citations of replies.
pub fn schemas() -> Value {
    json!({
    "Citation": { "type": "object", "required": ["index", "documentId", "title", "sourceUrl", "quote"],
        "properties": { "index": { "type": "integer", "minimum": 1, "description": "The n of [n] in the reply" },
            "documentId": s("string"), "title": s("string"), "sourceUrl": ns("string"),
            "quote": { "type": "string", "description": "The passage given to the model: an exact substring of the document" } } },
    "Document": { "type": "object", "required": ["id", "twinId", "title", "sourceUrl", "chars", "chunkCount", "createdAt"],
        "properties": { "id": s("string"), "twinId": s("string"), "title": s("string"), "sourceUrl": ns("string"),
            "chars": s("integer"), "chunkCount": { "type": "integer", "description": "How many passages it was split into" },
            "createdAt": time() } },
    "DocumentInput": { "type": "object", "required": ["title", "content"],
        "properties": { "title": text(kn::TITLE, json!({})),
            "content": text(kn::CONTENT, json!({})),
            "sourceUrl": text(kn::SOURCE_URL, json!({ "format": "uri" })) } }
    })
}
