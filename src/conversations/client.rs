//! The Worker's side of a conversation's object: one stub call per op. JSON answers carry
//! `Result<T, Refusal>`; a stream answer is passed through as a new response (the headers of
//! a fetched response are immutable, and the pipeline adds its own).

use serde::de::DeserializeOwned;
use worker::{Env, Headers, Method, Request, RequestInit, Response, ResponseBody, Stub};

use crate::conversations::model::{Op, Refusal, TurnResult};
use crate::http::error::ApiError;
use crate::http::reply::Reply;

pub struct ConversationObject {
    stub: Stub,
    conversation_id: String,
}

fn fail(e: worker::Error) -> ApiError {
    ApiError::internal(format!("conversation object: {e}"))
}

impl ConversationObject {
    pub fn get(env: &Env, conversation_id: &str) -> Result<Self, ApiError> {
        let stub = env
            .durable_object("CONVERSATIONS")
            .map_err(fail)?
            .get_by_name(conversation_id)
            .map_err(fail)?;
        Ok(ConversationObject {
            stub,
            conversation_id: conversation_id.to_owned(),
        })
    }

    async fn send(&self, op: &Op) -> Result<Response, ApiError> {
        let body = serde_json::to_string(op).map_err(ApiError::internal)?;
        let mut init = RequestInit::new();
        init.with_method(Method::Post).with_body(Some(body.into()));
        let req = Request::new_with_init("https://conversation/", &init).map_err(fail)?;
        self.stub.fetch_with_request(req).await.map_err(fail)
    }

    pub async fn call<T: DeserializeOwned>(&self, op: &Op) -> Result<T, ApiError> {
        let mut resp = self.send(op).await?;
        let text = resp.text().await.map_err(fail)?;
        let outcome: Result<T, Refusal> =
            serde_json::from_str(&text).map_err(ApiError::internal)?;
        outcome.map_err(ApiError::from)
    }

    /// A turn op (`Start`, `Replay`): its event stream, or 201 with the finished turn.
    pub async fn turn(&self, op: &Op, stream: bool) -> Result<Reply, ApiError> {
        if stream {
            self.stream(op).await
        } else {
            self.call::<TurnResult>(op).await.and_then(Reply::created)
        }
    }

    /// An op answered with an event stream (start, resume), or the refusal.
    pub async fn stream(&self, op: &Op) -> Result<Reply, ApiError> {
        let mut resp = self.send(op).await?;
        let header = |name: &str| resp.headers().get(name).ok().flatten();
        if !header("Content-Type").is_some_and(|t| t.starts_with("text/event-stream")) {
            let text = resp.text().await.map_err(fail)?;
            let outcome: Result<(), Refusal> =
                serde_json::from_str(&text).map_err(ApiError::internal)?;
            return Err(outcome.err().map_or_else(
                || ApiError::internal("conversation object answered no stream"),
                ApiError::from,
            ));
        }
        let headers = Headers::new();
        for name in [
            "Content-Type",
            "Cache-Control",
            "X-Accel-Buffering",
            "X-Message-Id",
        ] {
            if let Some(value) = header(name) {
                headers.set(name, &value).map_err(fail)?;
            }
        }
        let message_id = header("X-Message-Id")
            .ok_or_else(|| ApiError::internal("conversation object stream has no message id"))?;
        let ResponseBody::Stream(body) = resp.body() else {
            return Err(ApiError::internal("conversation object stream has no body"));
        };
        let response = Response::from_body(ResponseBody::Stream(body.clone()))
            .map(|r| r.with_headers(headers))
            .map_err(fail)?;
        Ok(Reply::Stream {
            response,
            conversation_id: self.conversation_id.clone(),
            message_id,
        })
    }
}
