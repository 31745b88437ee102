//! Server-Sent Events: an incremental parser for the upstream stream and the encoder for ours.
//!
//! The parser accepts bytes in chunks of any size. Lines end at LF, CRLF or CR; since those
//! bytes never occur inside a multi-byte UTF-8 sequence, text is decoded only once a line is
//! complete, so characters split across chunks come out whole.

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Event {
    pub event: Option<String>,
    pub data: String,
    pub id: Option<String>,
}

#[derive(Debug, Default)]
pub struct Parser {
    line: Vec<u8>,
    /// A line (or an event's data) outgrew `MAX_LINE_BYTES`: the stream is not one we read.
    overflowed: bool,
    /// The previous chunk ended in CR: a following LF belongs to the same line ending.
    after_cr: bool,
    event: Option<String>,
    data: Vec<String>,
    id: Option<String>,
}

impl Parser {
    pub fn new() -> Self {
        Self::default()
    }

    /// True once a line or an event grew past `MAX_LINE_BYTES`; nothing more is buffered
    /// then, so memory stays bounded whatever the peer sends.
    pub fn overflowed(&self) -> bool {
        self.overflowed
    }

    /// Feeds bytes; returns the events they complete, in order.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<Event> {
        if self.overflowed {
            return Vec::new();
        }
        let mut out = Vec::new();
        for &b in bytes {
            if self.after_cr {
                self.after_cr = false;
                if b == b'\n' {
                    continue;
                }
            }
            match b {
                b'\n' => self.end_line(&mut out),
                b'\r' => {
                    self.after_cr = true;
                    self.end_line(&mut out);
                }
                _ => {
                    if self.line.len() >= MAX_LINE_BYTES {
                        self.overflowed = true;
                        self.line = Vec::new();
                        self.data.clear();
                        return out;
                    }
                    self.line.push(b)
                }
            }
        }
        out
    }

    /// The event left when the stream ends without a final blank line, if any.
    pub fn finish(&mut self) -> Option<Event> {
        let mut out = Vec::new();
        if !self.line.is_empty() {
            self.end_line(&mut out);
        }
        self.end_line(&mut out);
        out.pop()
    }

    fn end_line(&mut self, out: &mut Vec<Event>) {
        let line = String::from_utf8_lossy(&std::mem::take(&mut self.line)).into_owned();
        if line.is_empty() {
            if !self.data.is_empty() || self.event.is_some() {
                out.push(Event {
                    event: self.event.take(),
                    data: std::mem::take(&mut self.data).join("\n"),
                    id: self.id.clone(),
                });
            }
            return;
        }
        if line.starts_with(':') {
            return; // a comment
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f.to_owned(), v.strip_prefix(' ').unwrap_or(v).to_owned()),
            None => (line, String::new()),
        };
        match field.as_str() {
            // An event's data lines together are bounded like one line.
            "data"
                if self.data.iter().map(String::len).sum::<usize>() + value.len()
                    > MAX_LINE_BYTES =>
            {
                self.overflowed = true;
                self.data.clear();
            }
            "data" => self.data.push(value),
            "event" => self.event = Some(value),
            "id" if !value.contains('\0') => self.id = Some(value),
            _ => {}
        }
    }
}

/// One event of our stream: `id:`, `event:`, then the data (one `data:` line per line).
pub fn encode(id: u64, event: &str, data: &str) -> String {
    let mut out = format!("id: {id}\nevent: {event}\n");
    for line in data.split('\n') {
        out.push_str("data: ");
        out.push_str(line);
        out.push('\n');
    }
    out.push('\n');
    out
}

/// Sent while nothing else is, so proxies and clients keep the connection open.
pub const PING: &str = ": ping\n\n";

/// The longest line (and so the largest chunk) read from a peer: real chunks are a few
/// hundred bytes.
pub const MAX_LINE_BYTES: usize = 1 << 20;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endless_line_is_refused_not_buffered() {
        let mut p = Parser::new();
        let chunk = vec![b'x'; 64 * 1024];
        p.feed(b"data: ");
        for _ in 0..(10 * 16) {
            assert!(p.feed(&chunk).is_empty());
        }
        assert!(p.overflowed());
        assert!(
            p.line.capacity() < MAX_LINE_BYTES + 64 * 1024 + 16,
            "memory stays bounded"
        );
        assert!(p.feed(b"\n\ndata: ok\n\n").is_empty());
    }

    fn parse_all(chunks: &[&[u8]]) -> Vec<Event> {
        let mut p = Parser::new();
        let mut out: Vec<Event> = chunks.iter().flat_map(|c| p.feed(c)).collect();
        out.extend(p.finish());
        out
    }

    /// A real upstream transcript: Vietnamese (2- and 3-byte chars) and an emoji (4 bytes).
    fn transcript(eol: &str) -> (Vec<u8>, Vec<&'static str>) {
        let datas = vec![
            r#"{"choices":[{"delta":{"role":"assistant","content":""}}]}"#,
            r#"{"choices":[{"delta":{"content":"Chào bạn,"}}]}"#,
            r#"{"choices":[{"delta":{"content":" tôi là Hà. Bữa sáng nên có phở 🍜"}}]}"#,
            r#"{"choices":[],"usage":{"prompt_tokens":9,"completion_tokens":3,"total_tokens":12}}"#,
            "[DONE]",
        ];
        let mut s = format!(": keep-alive{eol}{eol}");
        for d in &datas {
            s.push_str(&format!("data: {d}{eol}{eol}"));
        }
        (s.into_bytes(), datas)
    }

    #[test]
    fn every_two_way_split_of_every_line_ending_gives_the_same_events() {
        for eol in ["\n", "\r\n", "\r"] {
            let (bytes, datas) = transcript(eol);
            for cut in 0..=bytes.len() {
                let events = parse_all(&[&bytes[..cut], &bytes[cut..]]);
                let got: Vec<&str> = events.iter().map(|e| e.data.as_str()).collect();
                assert_eq!(got, datas, "eol {eol:?}, cut at {cut}");
            }
        }
    }

    #[test]
    fn byte_at_a_time_and_random_chunkings() {
        let (bytes, datas) = transcript("\r\n");
        let singles: Vec<&[u8]> = bytes.chunks(1).collect();
        assert_eq!(
            parse_all(&singles)
                .iter()
                .map(|e| e.data.clone())
                .collect::<Vec<_>>(),
            datas
        );
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..500 {
            let mut chunks = Vec::new();
            let mut rest: &[u8] = &bytes;
            while !rest.is_empty() {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let n = 1 + (seed % 9) as usize;
                let (a, b) = rest.split_at(n.min(rest.len()));
                chunks.push(a);
                rest = b;
            }
            let got: Vec<String> = parse_all(&chunks).into_iter().map(|e| e.data).collect();
            assert_eq!(got, datas);
        }
    }

    #[test]
    fn fields_comments_multiline_and_unterminated_last_event() {
        let events = parse_all(&[b"event: delta\nid: 7\ndata: a\ndata: b\n\n: ping\n\ndata:x"]);
        assert_eq!(
            events[0],
            Event {
                event: Some("delta".into()),
                data: "a\nb".into(),
                id: Some("7".into())
            }
        );
        assert_eq!(events[1].data, "x");
        assert_eq!(events.len(), 2);
    }

    #[test]
    fn encoder_round_trips_through_the_parser() {
        let data = "{\"content\":\"Xin chào 👋\"}";
        let text = encode(3, "delta", data);
        assert_eq!(
            text,
            "id: 3\nevent: delta\ndata: {\"content\":\"Xin chào 👋\"}\n\n"
        );
        let events = parse_all(&[text.as_bytes(), PING.as_bytes()]);
        assert_eq!(
            events,
            vec![Event {
                event: Some("delta".into()),
                data: data.into(),
                id: Some("3".into())
            }]
        );
        assert_eq!(
            parse_all(&[encode(1, "x", "a\nb").as_bytes()])[0].data,
            "a\nb"
        );
    }
}
