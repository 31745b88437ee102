//! Knowledge for a twin's answers (groundwork for the knowledge routes): documents split into
//! passages that are exact substrings of the document, a user's text turned into an FTS5 query
//! that no input can break or bend, the sources section of the prompt, and the `[n]` citations a
//! reply actually makes.

use std::collections::HashSet;

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
pub fn prompt_with_sources(persona: &str, sources: &[(&str, &str)]) -> String {
    if sources.is_empty() {
        return persona.to_owned();
    }
    let mut out = format!("{persona}\n\nSources:\n");
    for (n, (title, text)) in sources.iter().enumerate() {
        out.push_str(&format!("[{}] {title}: {text}\n", n + 1));
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

    #[test]
    fn prompt_lists_numbered_sources_after_the_persona() {
        let p = prompt_with_sources("You are Hà.", &[("Bữa sáng", "Trứng."), ("Nước", "Uống.")]);
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
    }
}
