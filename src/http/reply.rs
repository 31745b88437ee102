//! What a handler answers: data for the success envelope, JSON outside it, or a response of
//! its own (a stream).

use serde_json::Value;
use worker::Response;

use crate::http::envelope::ExtraMeta;
use crate::http::error::ApiError;

pub enum Reply {
    Json {
        status: u16,
        data: Value,
        meta: ExtraMeta,
    },
    /// JSON outside the envelope (the OpenAI-compatible routes).
    Plain { status: u16, body: Value },
    /// A conversation's event stream: which message it carries is what an idempotent retry
    /// needs to resume it.
    Stream {
        response: Response,
        conversation_id: String,
        message_id: String,
    },
    /// A response built by the handler itself (a completion's stream, a preflight, a page).
    Raw(Response),
}

impl Reply {
    pub fn ok(data: impl serde::Serialize) -> Result<Reply, ApiError> {
        Self::with_status(200, data)
    }

    pub fn created(data: impl serde::Serialize) -> Result<Reply, ApiError> {
        Self::with_status(201, data)
    }

    pub fn with_status(status: u16, data: impl serde::Serialize) -> Result<Reply, ApiError> {
        let data = serde_json::to_value(data).map_err(ApiError::internal)?;
        Ok(Reply::Json {
            status,
            data,
            meta: ExtraMeta::None,
        })
    }
}
