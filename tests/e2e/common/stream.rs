//! Server-Sent Events read from a `TestApp` as they arrive.

use serde_json::Value;
use std::io::Read;
use std::time::{Duration, Instant};

use super::*;

impl TestApp {
    /// Opens a streaming POST; the reply's events can then be read one by one as they arrive.
    pub fn open_stream(&self, path: &str, auth: Auth, body: Value) -> EventStream {
        self.try_stream("POST", path, auth, &[], Some(body))
            .unwrap_or_else(|r| panic!("stream refused: {} {}", r.status, r.text))
    }

    /// Opens a stream with any method and headers; a refusal comes back as the JSON reply.
    pub fn try_stream(
        &self,
        method: &str,
        path: &str,
        auth: Auth,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> Result<EventStream, Box<Reply>> {
        let started = Instant::now();
        let mut req =
            auth.apply(ureq::request(method, &self.url(path)).timeout(Duration::from_secs(60)));
        for (k, v) in headers {
            req = req.set(k, v);
        }
        let result = match body {
            Some(b) => req
                .set("Content-Type", "application/json")
                .send_string(&b.to_string()),
            None => req.call(),
        };
        match result {
            Ok(resp) if resp.content_type() == "text/event-stream" => Ok(EventStream {
                message_id: resp.header("X-Message-Id").map(str::to_owned),
                status: resp.status(),
                content_type: resp.header("Content-Type").unwrap_or_default().to_owned(),
                reader: Some(resp.into_reader()),
                parser: twinexpert::llm::sse::Parser::new(),
                pending: std::collections::VecDeque::new(),
                started,
                raw: String::new(),
            }),
            other => Err(Box::new(Reply::from(other))),
        }
    }
}

/// A Server-Sent Events reply read incrementally, each event stamped with its arrival time.
pub struct EventStream {
    pub status: u16,
    /// `X-Message-Id`: the reply being streamed.
    pub message_id: Option<String>,
    pub content_type: String,
    reader: Option<Box<dyn Read + Send + Sync + 'static>>,
    parser: twinexpert::llm::sse::Parser,
    pending: std::collections::VecDeque<twinexpert::llm::sse::Event>,
    pub started: Instant,
    /// Everything received so far, as text (to look for comments such as `: ping`).
    pub raw: String,
}

#[derive(Debug, Clone)]
pub struct Ev {
    pub id: u64,
    pub event: String,
    pub data: Value,
    pub at: Duration,
}

impl EventStream {
    pub fn next_event(&mut self) -> Option<Ev> {
        loop {
            if let Some(e) = self.pending.pop_front() {
                return Some(Ev {
                    id: e.id.as_deref().and_then(|i| i.parse().ok()).unwrap_or(0),
                    event: e.event.unwrap_or_default(),
                    data: serde_json::from_str(&e.data).unwrap_or(Value::Null),
                    at: self.started.elapsed(),
                });
            }
            let reader = self.reader.as_mut()?;
            let mut buf = [0u8; 4096];
            let n = reader.read(&mut buf).unwrap_or(0);
            if n == 0 {
                self.reader = None;
                self.pending.extend(self.parser.finish());
                if self.pending.is_empty() {
                    return None;
                }
                continue;
            }
            self.raw.push_str(&String::from_utf8_lossy(&buf[..n]));
            self.pending.extend(self.parser.feed(&buf[..n]));
        }
    }

    pub fn collect(mut self) -> (Vec<Ev>, String) {
        let mut out = Vec::new();
        while let Some(e) = self.next_event() {
            out.push(e);
        }
        (out, self.raw)
    }

    /// Reads events until one satisfies `stop` (returned with all before it), or the end.
    pub fn read_until(&mut self, mut stop: impl FnMut(&Ev) -> bool) -> Vec<Ev> {
        let mut out = Vec::new();
        while let Some(e) = self.next_event() {
            let done = stop(&e);
            out.push(e);
            if done {
                break;
            }
        }
        out
    }

    /// Closes the connection, as a client that goes away would.
    pub fn disconnect(mut self) {
        self.reader = None;
    }
}

/// The text of a stream's `delta` events, concatenated.
pub fn deltas(events: &[Ev]) -> String {
    events
        .iter()
        .filter(|e| e.event == "delta")
        .map(|e| e.data["content"].as_str().unwrap_or_default())
        .collect()
}
