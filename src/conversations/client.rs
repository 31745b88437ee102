//! The Worker's side of a conversation's object, through the typed client
//! (`platform::object`). JSON answers carry `Result<T, Refusal>`; a stream answer is passed
//! through as a new response (the headers of a fetched response are immutable, and the
//! pipeline adds its own).

use serde::de::DeserializeOwned;
use worker::{Env, Headers, Response, ResponseBody};

use crate::conversations::model::{Op, Refusal, TurnResult};
use crate::http::error::ApiError;
use crate::http::reply::Reply;
use crate::platform::instance::{Class, Instance};
use crate::platform::object::{DoClient, Protocol};

/// The protocol of `conversations::object::Conversation`.
pub struct Conversations;

impl Protocol for Conversations {
    const CLASS: Class = Class::Conversations;
    type Op = Op;
}

pub struct ConversationObject {
    client: DoClient<Conversations>,
    conversation_id: String,
}

fn fail(e: worker::Error) -> ApiError {
    ApiError::internal(format!("conversation object: {e}"))
}

impl ConversationObject {
    pub fn get(env: &Env, conversation_id: &str) -> Result<Self, ApiError> {
        Ok(ConversationObject {
            client: DoClient::get(
                env,
                &Instance::Conversation {
                    id: conversation_id,
                },
            )?,
            conversation_id: conversation_id.to_owned(),
        })
    }

    pub async fn call<T: DeserializeOwned>(&self, op: &Op) -> Result<T, ApiError> {
        let outcome: Result<T, Refusal> = self.client.call(op).await?;
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
        let mut resp = self.client.fetch(op).await?;
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
