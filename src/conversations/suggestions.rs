//! Follow-up questions (SPEC §19): the twin offers up to three short questions the user may ask
//! next, produced by the same upstream call as the reply. The model is asked to end its reply
//! with a `<suggestions>` block; the block is split off as the reply streams, so it never
//! reaches `content` or a `delta`, and read leniently, so a model that writes no block, or a
//! malformed one, costs nothing but the suggestions.

use serde_json::Value;

/// Appended to the system prompt of a conversation's turn.
pub const INSTRUCTION: &str = "\n\nAfter your answer, offer up to 3 short follow-up questions \
the user might ask you next, in the user's language, as the very last thing you write: \
<suggestions>[\"first question\", \"second question\"]</suggestions> (a JSON array of strings). \
If no follow-up fits, leave the block out.";

const OPEN: &str = "<suggestions>";
const CLOSE: &str = "</suggestions>";
pub const MAX: usize = 3;
/// A suggestion is a short question: a longer line is not one.
const MAX_CHARS: usize = 200;
/// What of a block is kept to read (a model that never stops writing one is cut off).
const MAX_BLOCK_BYTES: usize = 4096;

/// Splits a streamed reply into the text shown and the suggestions block.
#[derive(Debug, Default)]
pub struct Splitter {
    /// Text that may still be the start of the block: trailing whitespace, a partial `<sugg…`.
    held: String,
    /// Everything after `<suggestions>`, once it has been seen.
    block: Option<String>,
}

impl Splitter {
    /// Takes the next piece of the reply; returns what of it is reply text (may be empty).
    /// The concatenation of what it returns and `finish`'s text is the reply without the block.
    pub fn push(&mut self, text: &str) -> String {
        if let Some(block) = &mut self.block {
            if block.len() < MAX_BLOCK_BYTES {
                block.push_str(text);
            }
            return String::new();
        }
        self.held.push_str(text);
        if let Some(i) = self.held.find(OPEN) {
            // Whitespace before the block separates it from the reply: not part of either.
            let shown = self.held[..i].trim_end().to_owned();
            self.block = Some(self.held[i + OPEN.len()..].to_owned());
            self.held.clear();
            return shown;
        }
        let cut = self.held.len() - held_back(&self.held);
        self.held.drain(..cut).collect()
    }

    /// The reply text still held, and the suggestions read from the block (none without one).
    pub fn finish(self) -> (String, Vec<String>) {
        match self.block {
            None => (self.held, Vec::new()),
            Some(block) => (String::new(), read(&block)),
        }
    }
}

/// How many bytes at the end of `s` may still begin the block: a prefix of `<suggestions>`,
/// and the whitespace before it.
fn held_back(s: &str) -> usize {
    let partial = (1..OPEN.len())
        .rev()
        .find(|&k| s.ends_with(&OPEN[..k]))
        .unwrap_or(0);
    let rest = &s[..s.len() - partial];
    partial + rest.len() - rest.trim_end().len()
}

/// The suggestions in a block: a JSON array of strings as asked, else one per line (bullets
/// and numbers dropped); at most `MAX`, each short and non-empty, no repeats.
fn read(block: &str) -> Vec<String> {
    let body = block.split(CLOSE).next().unwrap_or("").trim();
    let candidates: Vec<String> = if body.starts_with('[') {
        json_items(body).unwrap_or_default()
    } else {
        body.lines()
            .map(|line| {
                line.trim()
                    .trim_start_matches(|c: char| {
                        c.is_ascii_digit() || matches!(c, '-' | '*' | '•' | '.' | ')')
                    })
                    .trim()
                    .trim_matches('"')
                    .to_owned()
            })
            .collect()
    };
    let mut out: Vec<String> = Vec::new();
    for c in candidates {
        let c = c.trim().to_owned();
        if !c.is_empty() && c.chars().count() <= MAX_CHARS && !out.contains(&c) {
            out.push(c);
        }
        if out.len() == MAX {
            break;
        }
    }
    out
}

/// The strings of a JSON array; of one cut off (the reply hit its token cap), those before
/// the cut.
fn json_items(body: &str) -> Option<Vec<String>> {
    let parse = |s: &str| {
        serde_json::from_str::<Vec<Value>>(s).ok().map(|items| {
            items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
    };
    parse(body).or_else(|| {
        let end = body.rfind("\",")?;
        parse(&format!("{}]", &body[..=end]))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Streams `reply` in pieces of `size` characters; returns the shown text (as the deltas
    /// and the final flush) and the suggestions.
    fn stream(reply: &str, size: usize) -> (String, Vec<String>) {
        let mut s = Splitter::default();
        let chars: Vec<char> = reply.chars().collect();
        let mut shown = String::new();
        for piece in chars.chunks(size) {
            shown.push_str(&s.push(&piece.iter().collect::<String>()));
        }
        let (rest, suggestions) = s.finish();
        shown.push_str(&rest);
        (shown, suggestions)
    }

    #[test]
    fn the_block_is_split_off_however_the_reply_is_cut() {
        let reply = "Chào bạn. Hãy bắt đầu nhỏ.\n\n<suggestions>[\"Ví dụ?\", \"Bắt đầu từ đâu?\"]</suggestions>";
        for size in 1..=20 {
            let (shown, suggestions) = stream(reply, size);
            assert_eq!(shown, "Chào bạn. Hãy bắt đầu nhỏ.", "pieces of {size}");
            assert_eq!(suggestions, ["Ví dụ?", "Bắt đầu từ đâu?"]);
        }
    }

    #[test]
    fn a_reply_without_a_block_is_shown_exactly() {
        for reply in [
            "a < b, and <sugar> is sweet  \n",
            "ends with a partial <suggest",
            "",
        ] {
            for size in 1..=7 {
                assert_eq!(stream(reply, size), (reply.to_owned(), vec![]), "{reply:?}");
            }
        }
    }

    #[test]
    fn what_is_shown_never_ends_in_text_that_could_start_the_block() {
        let mut s = Splitter::default();
        assert_eq!(s.push("Hello \n<sugg"), "Hello");
        assert_eq!(s.push("ar> world"), " \n<suggar> world");
    }

    #[test]
    fn a_malformed_or_oversized_block_is_read_leniently() {
        let (_, s) = stream("x\n<suggestions>\n- What next?\n2. Why?\n* What next?", 3);
        assert_eq!(s, ["What next?", "Why?"]);
        let many = "x<suggestions>[\"a\", \"b\", \"c\", \"d\"]</suggestions> trailing";
        assert_eq!(stream(many, 4).1, ["a", "b", "c"], "at most three");
        let long = format!("x<suggestions>[\"{}\", \"ok\", \"\", 7]", "q".repeat(300));
        assert_eq!(
            stream(&long, 5).1,
            ["ok"],
            "too long, empty and non-strings dropped"
        );
        assert_eq!(
            stream("x<suggestions></suggestions>", 2),
            ("x".into(), vec![])
        );
        let cut = "x<suggestions>[\"Ví dụ?\", \"Bắt đầu từ";
        assert_eq!(stream(cut, 3).1, ["Ví dụ?"], "an item cut off is dropped");
    }
}
