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
            "quote": { "type": "string", "description": "The passage given to the model: an exact substring of the document" },
            "page": { "type": "integer", "minimum": 1, "description": "A PDF passage's page" },
            "section": { "type": "string", "description": "The heading path of a DOCX, HTML or Markdown passage (`Chapter › Section`)" } } },
    "Passage": { "type": "object", "required": ["documentId", "title", "sourceUrl", "text"],
        "properties": { "documentId": s("string"), "title": s("string"), "sourceUrl": ns("string"),
            "text": { "type": "string", "description": "An exact substring of the document's content" },
            "page": { "type": "integer", "minimum": 1 }, "section": s("string") } },
    "KnowledgeSearch": { "type": "object", "required": ["query"],
        "properties": { "query": { "type": "string", "minLength": 1, "maxLength": 4000 } } },
    "UrlImport": { "type": "object", "required": ["url"],
        "properties": { "url": { "type": "string", "format": "uri", "maxLength": 2048,
                "description": "An https page (HTML, PDF, Markdown or text) on a public host; fetched within 10 s and 5 MB" },
            "title": text(kn::TITLE, json!({ "description": "Default: the page's own title" })) } },
    "DocumentUpload": { "type": "object", "required": ["file"],
        "properties": { "file": { "type": "string", "format": "binary", "description": "PDF, DOCX, HTML, Markdown or plain text; at most 10 MB" },
            "title": text(kn::TITLE, json!({ "description": "Default: the file's name without its extension" })),
            "sourceUrl": text(kn::SOURCE_URL, json!({ "format": "uri" })) } },
    "DocumentWithContent": { "allOf": [schema("Document"), { "type": "object", "required": ["content"],
        "properties": { "content": { "type": ["string", "null"], "description": "The text extracted (a file or a page) or given; null until processed, and for a failed document" } } }] },
    "Document": { "type": "object", "required": ["id", "twinId", "title", "sourceUrl", "status", "error", "kind", "chars", "chunkCount", "createdAt"],
        "properties": { "id": s("string"), "twinId": s("string"), "title": s("string"), "sourceUrl": ns("string"),
            "status": { "type": "string", "enum": ["processing", "ready", "failed"] },
            "error": { "type": ["object", "null"], "required": ["code", "message"], "description": "Why it failed",
                "properties": { "code": { "type": "string", "enum": ["ENCRYPTED_PDF", "SCANNED_PDF", "UNSUPPORTED_TYPE", "UNREADABLE", "NO_TEXT", "TOO_LARGE", "FETCH_FAILED", "INTERNAL"] },
                    "message": s("string") } },
            "kind": { "type": "string", "enum": ["text", "file", "url"], "description": "Given as JSON text, uploaded, or imported from sourceUrl" },
            "format": { "type": "string", "enum": ["pdf", "docx", "html", "markdown", "text"] },
            "filename": s("string"), "pages": { "type": "integer", "description": "A PDF's pages" },
            "chars": s("integer"), "chunkCount": { "type": "integer", "description": "How many passages it was split into" },
            "createdAt": time() } },
    "DocumentInput": { "type": "object", "required": ["title", "content"],
        "properties": { "title": text(kn::TITLE, json!({})),
            "content": text(kn::CONTENT, json!({})),
            "sourceUrl": text(kn::SOURCE_URL, json!({ "format": "uri" })) } }
    })
}
