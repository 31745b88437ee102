//! The end-to-end suite: one test binary, one module per area, each driving the real worker in
//! workerd (`TestApp` in `common`) with local D1, both Durable Object classes and the local
//! model server. Each module shares one app (its own ports and state folder) among its tests.

mod common;

mod auth;
mod client_tokens;
mod console;
mod conversation_object;
mod docs_and_examples;
mod foundation;
mod hardening;
mod idempotency;
mod ingest;
mod knowledge;
mod messages;
mod openai_compat;
mod quality;
mod rate_limits;
mod spend;
mod spend_integrity;
mod twins_conversations;
mod webhooks;
