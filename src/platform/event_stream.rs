//! Server-Sent Events out: each reader's response body is the readable side of a
//! TransformStream, and the writer (a conversation's object, or a completion) writes frames
//! into the writable side. Writes are never
//! awaited (one slow reader must not stall the others or the generation), and a reader whose
//! client has gone is dropped at its next write.

use worker::js_sys::{Promise, Uint8Array};
use worker::wasm_bindgen::closure::Closure;
use worker::wasm_bindgen::JsValue;
use worker::{Headers, Response, ResponseBody};

use web_sys::{TransformStream, WritableStreamDefaultWriter};

pub struct Reader {
    writer: WritableStreamDefaultWriter,
}

/// A new reader and the SSE response whose body it feeds (`X-Message-Id` when it is a reply).
pub fn open(message_id: Option<&str>) -> worker::Result<(Reader, Response)> {
    let pipe = TransformStream::new().map_err(js_err)?;
    let writer = pipe.writable().get_writer().map_err(js_err)?;
    let headers = Headers::new();
    headers.set("Content-Type", "text/event-stream; charset=utf-8")?;
    headers.set("Cache-Control", "no-cache")?;
    headers.set("X-Accel-Buffering", "no")?;
    if let Some(id) = message_id {
        headers.set("X-Message-Id", id)?;
    }
    let resp = Response::from_body(ResponseBody::Stream(pipe.readable()))?.with_headers(headers);
    Ok((Reader { writer }, resp))
}

fn js_err(e: JsValue) -> worker::Error {
    worker::Error::JsError(format!("{e:?}"))
}

/// Swallows the rejection of a write to a reader that has gone (its stream is errored).
pub struct Ignore(Closure<dyn FnMut(JsValue)>);

impl Default for Ignore {
    fn default() -> Self {
        Ignore(Closure::new(|_: JsValue| {}))
    }
}

impl Reader {
    /// Queues `frame`; false when the reader's client has gone (drop the reader then).
    pub fn send(&self, frame: &str, ignore: &Ignore) -> bool {
        // `desiredSize` is null once the readable side was cancelled (the client went away).
        if !matches!(self.writer.desired_size(), Ok(Some(_))) {
            return false;
        }
        let bytes = Uint8Array::from(frame.as_bytes());
        let written: Promise = self.writer.write_with_chunk(&bytes);
        let _ = written.catch(&ignore.0);
        true
    }

    /// Settles when the stream ends; rejects once the reader's client has gone.
    pub fn closed(&self) -> Promise {
        self.writer.closed()
    }

    /// Ends the reader's stream after what was queued.
    pub fn close(self, ignore: &Ignore) {
        let _ = self.writer.close().catch(&ignore.0);
    }
}

/// Every reader of one generation.
#[derive(Default)]
pub struct Readers {
    readers: Vec<Reader>,
}

impl Readers {
    pub fn add(&mut self, reader: Reader) {
        self.readers.push(reader);
    }

    /// Readers attached (one gone since the last event still counts until the next send).
    pub fn count(&self) -> usize {
        self.readers.len()
    }

    /// Sends `frame` to every reader still there.
    pub fn broadcast(&mut self, frame: &str, ignore: &Ignore) {
        self.readers.retain(|r| r.send(frame, ignore));
    }

    pub fn close_all(&mut self, ignore: &Ignore) {
        for r in self.readers.drain(..) {
            r.close(ignore);
        }
    }
}
