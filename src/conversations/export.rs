//! A conversation as Markdown (`GET /conversations/{id}/export?format=markdown`): readable on
//! its own, every message with its time, the sources a reply cites, its feedback.

use serde_json::Value;

use crate::conversations::model::{Message, Role, Status};

/// `conversation` is the conversation's JSON (its D1 row, as the API answers it).
pub fn markdown(conversation: &Value, messages: &[Message]) -> String {
    let id = conversation["id"].as_str().unwrap_or("");
    let mut out = match conversation["title"].as_str().filter(|t| !t.is_empty()) {
        Some(title) => format!("# {title}\n\n"),
        None => format!("# Conversation {id}\n\n"),
    };
    out.push_str(&format!("- Conversation: `{id}`\n"));
    for (label, key) in [
        ("Twin", "twinId"),
        ("End user", "endUserId"),
        ("Created", "createdAt"),
    ] {
        if let Some(v) = conversation[key].as_str() {
            out.push_str(&format!("- {label}: `{v}`\n"));
        }
    }
    out.push_str(&format!("- Messages: {}\n", messages.len()));
    for m in messages {
        let who = match m.role {
            Role::User => "User",
            Role::Assistant => "Twin",
        };
        out.push_str(&format!("\n---\n\n### {who} · {}", m.created_at));
        if m.status != Status::Completed {
            out.push_str(&format!(" · {}", m.status.as_str()));
        }
        out.push_str(&format!("\n\n{}\n", m.content.trim_end()));
        if !m.citations.is_empty() {
            out.push_str("\nSources:\n");
            for c in &m.citations {
                let link = c
                    .source_url
                    .as_deref()
                    .map_or(String::new(), |u| format!(" <{u}>"));
                let page = c.page.map_or(String::new(), |p| format!(", p. {p}"));
                out.push_str(&format!(
                    "- [{}] {}{page}{link}: “{}”\n",
                    c.index, c.title, c.quote
                ));
            }
        }
        if let Some(f) = &m.feedback {
            let rating = if f.rating > 0 {
                "helpful"
            } else {
                "not helpful"
            };
            match &f.comment {
                Some(comment) => out.push_str(&format!("\nFeedback: {rating} — {comment}\n")),
                None => out.push_str(&format!("\nFeedback: {rating}\n")),
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conversations::model::Feedback;
    use crate::knowledge::model::Citation;
    use serde_json::json;

    fn message(role: Role, content: &str) -> Message {
        Message {
            id: "msg_1".into(),
            conversation_id: "conv_1".into(),
            role,
            content: content.into(),
            status: Status::Completed,
            model: None,
            usage: None,
            latency_ms: None,
            citations: vec![],
            suggestions: vec![],
            feedback: None,
            created_at: "2026-12-06T10:00:00.000Z".into(),
        }
    }

    #[test]
    fn every_message_its_sources_and_its_feedback() {
        let mut reply = message(Role::Assistant, "Phở bò [1].\n");
        reply.citations = vec![Citation {
            index: 1,
            document_id: "doc_1".into(),
            title: "Món Huế".into(),
            source_url: Some("https://example.com/a".into()),
            quote: "Phở bò".into(),
            page: Some(3),
            section: None,
        }];
        reply.feedback = Some(Feedback {
            rating: -1,
            comment: Some("Thiếu giá".into()),
            updated_at: "2026-12-06T10:01:00.000Z".into(),
        });
        reply.status = Status::Incomplete;
        let conv =
            json!({"id": "conv_1", "title": "Ẩm thực", "twinId": "twn_1", "endUserId": null});
        let md = markdown(&conv, &[message(Role::User, "Ăn gì?"), reply]);
        assert!(md.starts_with("# Ẩm thực\n"));
        assert!(md.contains("- Twin: `twn_1`") && !md.contains("End user"));
        assert!(md.contains("### User · 2026-12-06T10:00:00.000Z\n\nĂn gì?\n"));
        assert!(md.contains("### Twin · 2026-12-06T10:00:00.000Z · incomplete\n\nPhở bò [1].\n"));
        assert!(md.contains("- [1] Món Huế, p. 3 <https://example.com/a>: “Phở bò”"));
        assert!(md.contains("Feedback: not helpful — Thiếu giá"));
        let untitled = markdown(&json!({"id": "conv_2"}), &[]);
        assert!(
            untitled.starts_with("# Conversation conv_2\n") && untitled.contains("Messages: 0")
        );
    }
}
