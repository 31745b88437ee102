//! Knowledge for a twin's answers (docs/knowledge.md): documents split into passages that are
//! exact substrings of the document, a user's text turned into an FTS5 query that no input can
//! break or bend, the sources section of the prompt, and the `[n]` citations a reply makes.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::HashSet;

use crate::http::error::ApiError;
use crate::http::validate::Fields;
use crate::http::validate::{chars, Chars};
use crate::twins::model::is_http_url;

/// The most passages a turn gives the model.
pub const MAX_SOURCES: usize = 5;
/// About how many characters a passage holds…
pub const PASSAGE_CHARS: usize = 600;
/// …and how long a sentence may be to be repeated at the start of the next passage.
pub const OVERLAP_CHARS: usize = 200;
// Each field's limits, read by validation here and by the OpenAPI schema (knowledge/schema.rs).
pub const TITLE: Chars = chars(1, 200);
pub const CONTENT: Chars = chars(1, 100_000);
pub const SOURCE_URL: Chars = chars(1, 2048);

/// `POST /twins/{id}/knowledge`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDocument {
    pub title: String,
    pub content: String,
    pub source_url: Option<String>,
}

impl NewDocument {
    pub fn parse(obj: &Map<String, Value>) -> Result<NewDocument, ApiError> {
        let mut f = Fields::new(obj);
        let title = f.string("title", TITLE);
        // Kept byte for byte: every quote must be an exact substring of it.
        let content = f.raw_string("content", CONTENT);
        let source_url = f.opt_string("sourceUrl", SOURCE_URL);
        if source_url.as_deref().is_some_and(|u| !is_http_url(u)) {
            f.fail("sourceUrl", "must be an http(s) URL");
        }
        if content.as_deref().is_some_and(|c| c.trim().is_empty()) {
            f.fail("content", "must not be blank");
        }
        f.finish()?;
        match (title, content) {
            (Some(title), Some(content)) => Ok(NewDocument {
                title,
                content,
                source_url,
            }),
            _ => Err(ApiError::internal("validated fields missing")),
        }
    }
}

/// A text document's passages to store, each with its searchable text (the title and the
/// passage, folded).
pub fn passages(title: &str, content: &str) -> Vec<(String, String)> {
    split(content, PASSAGE_CHARS, OVERLAP_CHARS)
        .into_iter()
        .map(|p| {
            let body = searchable(title, None, &p.text);
            (p.text, body)
        })
        .collect()
}

/// A document as the API shows it (never its content). A document given as JSON text is
/// `ready` at once; a file or a web page is `processing` until the ingest worker's queue
/// consumer has extracted it (SPEC §17), then `ready` or `failed` with `error`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Document {
    pub id: String,
    pub twin_id: String,
    pub title: String,
    pub source_url: Option<String>,
    /// `ready`, `processing` or `failed`.
    #[serde(default = "ready")]
    pub status: String,
    /// Why it failed: `{code, message}` (`null` unless `failed`).
    #[serde(default)]
    pub error: Option<serde_json::Value>,
    /// Where it came from: `text` (JSON), `file` (an upload) or `url` (an imported page).
    #[serde(default = "text_kind")]
    pub kind: String,
    /// A file's or page's format: `pdf`, `docx`, `html`, `markdown` or `text`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    /// A PDF's pages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pages: Option<u64>,
    pub chars: u64,
    pub chunk_count: u64,
    pub created_at: String,
}

fn ready() -> String {
    "ready".to_owned()
}

fn text_kind() -> String {
    "text".to_owned()
}

/// The most characters a file or page may yield (a JSON document holds at most `CONTENT`).
pub const MAX_EXTRACTED_CHARS: usize = 1_000_000;

/// A stretch of extracted text with one place: a PDF's page, or the text under one heading
/// path of a DOCX, HTML or Markdown document (`"Chapter › Section"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    pub text: String,
    #[serde(default)]
    pub page: Option<u64>,
    #[serde(default)]
    pub section: Option<String>,
}

/// A passage to index: its text (an exact substring of the content), its searchable text and
/// its place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed {
    pub text: String,
    pub body: String,
    pub page: Option<u64>,
    pub section: Option<String>,
}

/// The content of an extracted document (its blocks, trimmed, one blank line apart) and its
/// passages, split within each block so a passage never straddles two pages or two sections.
/// The searchable text of each passage is the title, its section and the passage, folded.
pub fn assemble(title: &str, blocks: &[Block]) -> (String, Vec<Placed>) {
    let mut content = String::new();
    let mut placed = Vec::new();
    for b in blocks {
        let text = b.text.trim();
        if text.is_empty() {
            continue;
        }
        if !content.is_empty() {
            content.push_str("\n\n");
        }
        content.push_str(text);
        for p in split(text, PASSAGE_CHARS, OVERLAP_CHARS) {
            placed.push(Placed {
                body: searchable(title, b.section.as_deref(), &p.text),
                text: p.text,
                page: b.page,
                section: b.section.clone(),
            });
        }
    }
    (content, placed)
}

/// A retrieved passage, given to the model as source `[n]` (its place in the list).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Source {
    pub document_id: String,
    pub title: String,
    pub source_url: Option<String>,
    pub text: String,
    /// The PDF page the passage is on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<u64>,
    /// The heading path it is under (`"Chapter › Section"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub section: Option<String>,
}

/// A source the reply cites: `index` is the `n` of its `[n]`, `quote` the passage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Citation {
    pub index: usize,
    pub document_id: String,
    pub title: String,
    pub source_url: Option<String>,
    pub quote: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub section: Option<String>,
}

/// The citations of `reply`: the sources it cites as `[n]`, in order of first mention.
pub fn citations(reply: &str, sources: &[Source]) -> Vec<Citation> {
    cited(reply, sources.len())
        .into_iter()
        .map(|n| {
            let s = &sources[n - 1];
            Citation {
                index: n,
                document_id: s.document_id.clone(),
                title: s.title.clone(),
                source_url: s.source_url.clone(),
                quote: s.text.clone(),
                page: s.page,
                section: s.section.clone(),
            }
        })
        .collect()
}

/// A passage of a document: `text` is `content[start..start + text.len()]`, byte for byte.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Passage {
    pub start: usize,
    pub text: String,
}

/// Byte ranges of the sentences of `content`: paragraph breaks and `. ! ? …` followed by
/// whitespace end a sentence; the whitespace between sentences belongs to neither.
fn sentences(content: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start: Option<usize> = None;
    let mut chars = content.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if start.is_none() && !c.is_whitespace() {
            start = Some(i);
        }
        let next = chars.peek().map(|&(_, n)| n);
        let ends = matches!(c, '.' | '!' | '?' | '…') && next.is_none_or(char::is_whitespace)
            || c == '\n' && next == Some('\n');
        if let (true, Some(s)) = (ends, start) {
            let end = if c == '\n' { i } else { i + c.len_utf8() };
            if content[s..end].trim().is_empty() {
                start = None;
                continue;
            }
            out.push((s, end));
            start = None;
        }
    }
    if let Some(s) = start {
        let end = content.trim_end().len();
        if end > s {
            out.push((s, end));
        }
    }
    out
}

/// Splits a document into passages of about `target` characters on sentence boundaries, each
/// starting with the previous passage's last sentence when it is at most `overlap` characters
/// (so a fact straddling two passages is found whole in one). A sentence longer than `target`
/// is a passage of its own.
pub fn split(content: &str, target: usize, overlap: usize) -> Vec<Passage> {
    let spans = sentences(content);
    let mut out = Vec::new();
    let mut i = 0;
    while i < spans.len() {
        let (first_start, _) = spans[i];
        let mut j = i;
        let mut end = spans[i].1;
        while j + 1 < spans.len() && content[first_start..spans[j + 1].1].chars().count() <= target
        {
            j += 1;
            end = spans[j].1;
        }
        out.push(Passage {
            start: first_start,
            text: content[first_start..end].to_owned(),
        });
        if j + 1 >= spans.len() {
            break;
        }
        let (ls, le) = spans[j];
        // Overlap with the last sentence, unless it would make no progress.
        i = if j > i && content[ls..le].chars().count() <= overlap {
            j
        } else {
            j + 1
        };
    }
    out
}

/// A passage's searchable text: its document's title, its heading path if it has one, and the
/// passage, folded.
pub fn searchable(title: &str, section: Option<&str>, passage: &str) -> String {
    match section {
        Some(section) => fold(&format!("{title}\n{section}\n{passage}")),
        None => fold(&format!("{title}\n{passage}")),
    }
}

/// Text as it is indexed and searched: lower case, with `đ`/`Đ` read as `d` (the FTS5
/// tokenizer's `remove_diacritics 2` folds every other Vietnamese mark, but not these).
pub fn fold(text: &str) -> String {
    text.chars()
        .flat_map(char::to_lowercase)
        .map(|c| if c == 'đ' { 'd' } else { c })
        .collect()
}

/// The most terms a query keeps.
pub const MAX_TERMS: usize = 32;

/// A user's text as an FTS5 query: its words (letters and digits only), folded, each quoted
/// as a string and joined with OR, so quotes, `AND`, `NEAR(`, `*`, `-`, `:` or emoji in the
/// input are never syntax. `None` when nothing searchable is left.
pub fn fts_query(text: &str) -> Option<String> {
    let folded = fold(text);
    let mut seen = HashSet::new();
    let terms: Vec<String> = folded
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.chars().count() >= 2)
        .filter(|w| seen.insert(w.to_string()))
        .take(MAX_TERMS)
        .map(|w| format!("\"{w}\""))
        .collect();
    (!terms.is_empty()).then(|| terms.join(" OR "))
}

/// The system prompt with numbered sources: the persona first, then the sources, and how to
/// cite them.
pub fn prompt_with_sources(persona: &str, sources: &[Source]) -> String {
    if sources.is_empty() {
        return persona.to_owned();
    }
    let mut out = format!("{persona}\n\nSources:\n");
    for (n, s) in sources.iter().enumerate() {
        let mut place = String::new();
        if let Some(section) = &s.section {
            place.push_str(&format!(" › {section}"));
        }
        if let Some(page) = s.page {
            place.push_str(&format!(" (p. {page})"));
        }
        out.push_str(&format!("[{}] {}{place}: {}\n", n + 1, s.title, s.text));
    }
    out.push_str(
        "\nAnswer from these sources where they help, and cite each source you use as [n].",
    );
    out
}

/// The sources a reply cites: each `[n]` with 1 <= n <= `count`, in order of first mention.
pub fn cited(reply: &str, count: usize) -> Vec<usize> {
    let mut out = Vec::new();
    let mut rest = reply;
    while let Some(open) = rest.find('[') {
        rest = &rest[open + 1..];
        let Some(close) = rest.find(']') else { break };
        if let Ok(n) = rest[..close].parse::<usize>() {
            if (1..=count).contains(&n) && !out.contains(&n) {
                out.push(n);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "Bữa sáng nên có đạm. Trứng là nguồn đạm tốt!\n\nYến mạch giữ no lâu… \
                       Uống đủ nước mỗi sáng? Có.";

    #[test]
    fn passages_are_exact_substrings_on_sentence_boundaries() {
        let ps = split(DOC, 45, 30);
        assert!(ps.len() >= 2, "{ps:?}");
        for p in &ps {
            assert_eq!(&DOC[p.start..p.start + p.text.len()], p.text);
            assert!(!p.text.starts_with(' ') && !p.text.ends_with(' '));
        }
        assert_eq!(ps[0].text, "Bữa sáng nên có đạm. Trứng là nguồn đạm tốt!");
        // Every sentence is in some passage.
        for s in ["Yến mạch giữ no lâu…", "Uống đủ nước mỗi sáng?", "Có."] {
            assert!(ps.iter().any(|p| p.text.contains(s)), "{s}");
        }
    }

    #[test]
    fn short_last_sentences_overlap_into_the_next_passage() {
        let doc = "One two three. Four. Five six seven eight nine ten.";
        let ps = split(doc, 20, 10);
        assert_eq!(ps[0].text, "One two three. Four.");
        assert!(ps[1].text.starts_with("Four."), "{ps:?}");
        // A long sentence alone, and the loop always ends.
        let long = "x".repeat(500) + ". y.";
        assert_eq!(split(&long, 100, 50).len(), 2);
        assert!(split("", 100, 10).is_empty());
        assert!(split("   \n\n  ", 100, 10).is_empty());
    }

    #[test]
    fn folding_reads_d_stroke_as_d() {
        assert_eq!(fold("Đường ĐI đâu"), "dường di dâu");
        assert_eq!(fold("ĐẠM"), "dạm");
    }

    #[test]
    fn hostile_text_becomes_quoted_terms_only() {
        assert_eq!(
            fts_query("đạm AND \"trứng\" NEAR(x y) -sữa *"),
            Some("\"dạm\" OR \"and\" OR \"trứng\" OR \"near\" OR \"sữa\"".to_owned())
        );
        for hostile in ["\"", "*", "-", "() :", "🙂🙂", "a", ""] {
            assert_eq!(fts_query(hostile), None, "{hostile:?}");
        }
        let huge = "từ ".repeat(16_000) + &(0..100).map(|i| format!("w{i} ")).collect::<String>();
        let q = fts_query(&huge).unwrap();
        assert_eq!(q.matches(" OR ").count(), MAX_TERMS - 1);
        assert!(!q.contains('*') && !q.contains('(') && !q.contains(':'));
    }

    fn source(title: &str, text: &str) -> Source {
        Source {
            document_id: format!("doc_{title}"),
            title: title.into(),
            source_url: None,
            text: text.into(),
            page: None,
            section: None,
        }
    }

    #[test]
    fn prompt_lists_numbered_sources_after_the_persona() {
        let sources = [source("Bữa sáng", "Trứng."), source("Nước", "Uống.")];
        let p = prompt_with_sources("You are Hà.", &sources);
        assert!(p.starts_with("You are Hà.\n\nSources:\n[1] Bữa sáng: Trứng.\n[2] Nước: Uống.\n"));
        assert!(p.contains("[n]"));
        assert_eq!(prompt_with_sources("You are Hà.", &[]), "You are Hà.");
    }

    #[test]
    fn citations_are_the_existing_sources_a_reply_mentions() {
        assert_eq!(
            cited("Ăn trứng [2], uống nước [1][2] và [7] [x] [0]", 3),
            vec![2, 1]
        );
        assert!(cited("no sources here", 3).is_empty());
        assert!(cited("[", 3).is_empty());
        let sources = [source("A", "một."), source("B", "hai.")];
        let c = citations("Xem [2] và [3].", &sources);
        assert_eq!(c.len(), 1);
        assert_eq!((c[0].index, c[0].quote.as_str()), (2, "hai."));
        assert_eq!(serde_json::to_value(&c[0]).unwrap()["documentId"], "doc_B");
    }

    #[test]
    fn a_new_document_is_validated_and_indexed_folded_with_its_title() {
        let obj = |v: Value| v.as_object().unwrap().clone();
        let doc = NewDocument::parse(&obj(serde_json::json!({
            "title": "Đạm", "content": DOC, "sourceUrl": "https://ha.example/dam"
        })))
        .unwrap();
        let passages = passages(&doc.title, &doc.content);
        assert!(passages.iter().all(|(text, _)| DOC.contains(text.as_str())));
        assert!(
            passages[0].1.starts_with("dạm\nbữa sáng"),
            "{:?}",
            passages[0]
        );
        let err = NewDocument::parse(&obj(serde_json::json!({
            "title": "", "content": "  ", "sourceUrl": "ftp://x"
        })))
        .unwrap_err();
        let fields = err.details()["fields"].clone();
        for f in ["title", "content", "sourceUrl"] {
            assert!(fields.get(f).is_some(), "{f}: {fields}");
        }
    }

    #[test]
    fn extracted_blocks_assemble_into_content_with_placed_passages() {
        let blocks = [
            Block {
                text: "Page one. It is short.\n".into(),
                page: Some(1),
                section: None,
            },
            Block {
                text: "   ".into(),
                page: Some(2),
                section: None,
            },
            Block {
                text: "Giờ ngủ\n\nNgủ đủ tám tiếng.".into(),
                page: None,
                section: Some("Sức khỏe › Giờ ngủ".into()),
            },
        ];
        let (content, placed) = assemble("Đêm", &blocks);
        assert_eq!(
            content,
            "Page one. It is short.\n\nGiờ ngủ\n\nNgủ đủ tám tiếng."
        );
        assert_eq!(placed.len(), 2);
        assert!(placed.iter().all(|p| content.contains(&p.text)));
        assert_eq!(
            (placed[0].page, placed[0].section.as_deref()),
            (Some(1), None)
        );
        assert_eq!(placed[1].section.as_deref(), Some("Sức khỏe › Giờ ngủ"));
        assert!(placed[1]
            .body
            .starts_with("dêm\nsức khỏe › giờ ngủ\ngiờ ngủ"));
        let cited = citations(
            "Xem [1].",
            &[Source {
                document_id: "doc_1".into(),
                title: "Đêm".into(),
                source_url: None,
                text: placed[0].text.clone(),
                page: Some(1),
                section: None,
            }],
        );
        let json = serde_json::to_value(&cited[0]).unwrap();
        assert_eq!(
            (json["page"].as_u64(), json.get("section")),
            (Some(1), None)
        );
    }
}
