//! The upstream model client: one streamed Chat Completions call, parsed incrementally as bytes
//! arrive, with a first-byte and an idle timeout. Neither the upstream key nor its response
//! body ever leaves this module (errors name only the status).

use futures::future::{select, Either};
use futures::StreamExt;
use serde_json::Value;
use std::future::Future;
use std::time::Duration;
use worker::{AbortSignal, Delay, Fetch, Headers, Method, Request, RequestInit};

use crate::config::UpstreamSettings;
use crate::http::error::ApiError;
use crate::llm::chat::{self, Chunk};
use crate::llm::sse;

pub struct Upstream {
    base_url: String,
    api_key: Option<String>,
    first_byte_ms: u64,
    idle_ms: u64,
    /// The whole generation's deadline (`GENERATION_MAX_SECS`).
    total_ms: u64,
    ping_ms: u64,
}

/// What the caller hears while a reply is produced.
pub enum Progress<'a> {
    /// The model answered 200: tokens are coming.
    Generating,
    Delta(&'a str),
    /// `delta.tool_calls` (`chat::tool_call_deltas`).
    ToolCalls(&'a Value),
    /// Nothing arrived for a ping interval.
    Idle,
}

impl Upstream {
    /// `api_key`: the `UPSTREAM_API_KEY` secret (`config::env::secret`), if set.
    pub fn new(settings: &UpstreamSettings, api_key: Option<String>) -> Upstream {
        Upstream {
            base_url: settings.base_url.clone(),
            api_key,
            first_byte_ms: settings.first_byte_ms,
            idle_ms: settings.idle_ms,
            total_ms: settings.total_ms,
            ping_ms: settings.ping_ms,
        }
    }

    /// Runs one completion under `signal` (whoever owns its controller can abort it). Returns
    /// what arrived, and the error that cut it short if any: the caller stores partial text
    /// either way, and aborts the controller on an error so the upstream stops its work.
    pub async fn complete(
        &self,
        body: &Value,
        signal: &AbortSignal,
        mut on: impl FnMut(Progress),
    ) -> (chat::Reply, Option<ApiError>) {
        let mut reply = chat::Reply::default();
        let result = self.run(body, signal, &mut reply, &mut on).await;
        (reply, result.err())
    }

    /// The upstream request for `body`.
    fn request(&self, body: &Value) -> Result<Request, ApiError> {
        let headers = Headers::new();
        let _ = headers.set("Content-Type", "application/json");
        let _ = headers.set("Accept", "text/event-stream");
        if let Some(key) = &self.api_key {
            let _ = headers.set("Authorization", &format!("Bearer {key}"));
        }
        let mut init = RequestInit::new();
        init.with_method(Method::Post)
            .with_headers(headers)
            .with_body(Some(body.to_string().into()));
        let url = format!("{}/chat/completions", self.base_url.trim_end_matches('/'));
        Request::new_with_init(&url, &init)
            .map_err(|_| ApiError::Upstream("bad upstream URL".into()))
    }

    async fn run(
        &self,
        body: &Value,
        signal: &AbortSignal,
        reply: &mut chat::Reply,
        on: &mut impl FnMut(Progress),
    ) -> Result<(), ApiError> {
        let fetch = Fetch::Request(self.request(body)?);
        let mut sending = Box::pin(fetch.send_with_signal(signal));
        let started = worker::Date::now().as_millis();
        let mut response = self
            .wait(&mut sending, self.first_byte_ms, on)
            .await
            .ok_or(ApiError::UpstreamTimeout)?
            .map_err(|_| ApiError::Upstream("upstream unreachable".into()))?;
        let status = response.status_code();
        if status != 200 {
            return Err(ApiError::Upstream(format!("upstream answered {status}")));
        }
        on(Progress::Generating);
        let bytes = response
            .stream()
            .map_err(|_| ApiError::Upstream("upstream sent no body".into()))?;
        self.read(bytes, started, reply, on).await
    }

    /// Reads the streamed reply into `reply`, under the first-byte, idle and total deadlines.
    async fn read(
        &self,
        mut bytes: worker::ByteStream,
        started: u64,
        reply: &mut chat::Reply,
        on: &mut impl FnMut(Progress),
    ) -> Result<(), ApiError> {
        let mut parser = sse::Parser::new();
        let mut first = true;
        while !reply.done {
            let spent = worker::Date::now().as_millis() - started;
            let limit = if first {
                self.first_byte_ms.saturating_sub(spent)
            } else {
                self.idle_ms
            };
            let limit = limit.min(self.total_ms.saturating_sub(spent)).max(1);
            let mut next = bytes.next();
            let chunk = match self
                .wait(&mut next, limit, on)
                .await
                .ok_or(ApiError::UpstreamTimeout)?
            {
                None => break,
                Some(Err(_)) => return Err(ApiError::Upstream("upstream stream broke off".into())),
                Some(Ok(chunk)) => chunk,
            };
            first = false;
            for event in parser.feed(&chunk) {
                apply(reply, &event.data, on)?;
            }
            if parser.overflowed() {
                return Err(ApiError::Upstream("upstream sent an oversized line".into()));
            }
        }
        if let Some(event) = parser.finish() {
            apply(reply, &event.data, on)?;
        }
        if !reply.is_complete() {
            return Err(ApiError::Upstream("upstream stream ended early".into()));
        }
        Ok(())
    }

    /// Awaits `fut` for at most `total_ms`, reporting `Idle` every ping interval meanwhile.
    async fn wait<F: Future + Unpin>(
        &self,
        fut: &mut F,
        total_ms: u64,
        on: &mut impl FnMut(Progress),
    ) -> Option<F::Output> {
        let mut left = total_ms;
        loop {
            let slice = left.min(self.ping_ms.max(1));
            match select(
                &mut *fut,
                Box::pin(Delay::from(Duration::from_millis(slice))),
            )
            .await
            {
                Either::Left((value, _)) => return Some(value),
                Either::Right(_) => {
                    left -= slice;
                    if left == 0 {
                        return None;
                    }
                    on(Progress::Idle);
                }
            }
        }
    }
}

fn apply(
    reply: &mut chat::Reply,
    data: &str,
    on: &mut impl FnMut(Progress),
) -> Result<(), ApiError> {
    for chunk in chat::parse_chunk(data)? {
        match &chunk {
            Chunk::Delta(text) => on(Progress::Delta(text)),
            Chunk::ToolCalls(deltas) => on(Progress::ToolCalls(deltas)),
            _ => {}
        }
        reply.apply(&chunk);
    }
    Ok(())
}
