//! A conversation's Durable Object (its messages and its running generation) and the
//! Worker's client for it.

mod client;
mod object;
mod storage;

pub use client::ConversationObject;
pub use object::Conversation;
