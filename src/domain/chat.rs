//! Conversations: the chat between a visitor, the bot and agents, and the
//! rules that keep it honest:
//! - the bot speaks only while a conversation is `bot`; once a person is
//!   involved, bot replies are refused by the store itself;
//! - a customer can always reach a person (asking, the button, repeated
//!   misses, a failing or slow bot);
//! - a visitor reaches only their own conversations; private notes and
//!   staff-side numbering never reach a visitor.

use super::{ConversationStatus, DomainError, DomainResult, UserId, invalid};

pub const MAX_BODY: usize = 8000;
pub const MAX_CLIENT_MSG_ID: usize = 100;

#[derive(Debug, Clone)]
pub struct Visitor {
    pub id: i64,
    pub site_id: i64,
    pub user_id: Option<i64>,
    pub name: String,
    pub email: String,
}

impl Visitor {
    /// The name agents see.
    pub fn display_name(&self) -> String {
        if self.name.trim().is_empty() {
            format!("Visitor {}", self.id)
        } else {
            self.name.clone()
        }
    }
}

#[derive(Debug, Clone)]
pub struct Conversation {
    pub id: i64,
    pub site_id: i64,
    pub visitor_id: i64,
    pub status: ConversationStatus,
    pub assignee_id: Option<UserId>,
    pub assignee_name: Option<String>,
    /// Staff-side numbering: every message.
    pub last_seq: i64,
    /// Customer-side numbering: public messages only.
    pub last_public_seq: i64,
    pub bot_misses: i64,
    pub agent_read_seq: i64,
    pub customer_read_seq: i64,
    pub waiting_since: Option<i64>,
    pub ticket_number: Option<i64>,
    pub ticket_id: Option<i64>,
    /// When staff first answered on the ticket (`None` until then).
    pub first_response_at: Option<i64>,
    pub customer_name: String,
    pub customer_email: String,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone)]
pub struct QueueEntry {
    pub conversation_id: i64,
    pub ticket_number: Option<i64>,
    pub customer_name: String,
    pub customer_email: String,
    pub waiting_since: i64,
    pub preview: String,
}

/// A message body: trimmed, not empty, at most [`MAX_BODY`] characters.
pub fn parse_body(body: &str) -> DomainResult<String> {
    let body = body.trim();
    if body.is_empty() {
        return Err(invalid("body", "body is empty"));
    }
    if body.chars().count() > MAX_BODY {
        return Err(DomainError::TooLarge {
            field: "body",
            message: format!("body is longer than {MAX_BODY} characters"),
        });
    }
    Ok(body.to_string())
}

/// A message's text when it may carry a file: a file alone needs no words.
pub fn body_with(
    body: &str,
    attachment: Option<&super::attachments::AttachmentRef>,
) -> DomainResult<String> {
    if attachment.is_some() && body.trim().is_empty() {
        return Ok(String::new());
    }
    parse_body(body)
}

/// What a message says in an email or a preview, file included.
pub fn message_text(body: &str, attachment: Option<&super::attachments::AttachmentRef>) -> String {
    match attachment {
        Some(a) if body.is_empty() => format!("[file: {}]", a.name),
        Some(a) => format!("{body}\n[file: {}]", a.name),
        None => body.to_string(),
    }
}

/// Why a send with an upload that went out with another message is refused.
pub fn attachment_taken() -> DomainError {
    invalid(
        "attachment_id",
        "that file was already sent with another message, or it waited over a day unsent and was removed; upload it again to send it",
    )
}

pub fn parse_client_msg_id(id: &str) -> DomainResult<String> {
    let id = id.trim();
    // `:` is reserved for ids the server makes (`bot:…`, `handoff:…`), so
    // that no client can take one first.
    if id.is_empty()
        || id.len() > MAX_CLIENT_MSG_ID
        || id.chars().any(|c| c.is_control() || c == ':')
    {
        return Err(invalid(
            "client_msg_id",
            format!(
                "client_msg_id must be 1 to {MAX_CLIENT_MSG_ID} printable characters, without ':'"
            ),
        ));
    }
    Ok(id.to_string())
}

/// Whether the customer is asking for a person rather than asking a question.
pub fn asks_for_a_person(text: &str) -> bool {
    let text = text.to_lowercase();
    const PHRASES: &[&str] = &[
        "talk to a person",
        "speak to a person",
        "talk to someone",
        "speak to someone",
        "real person",
        "human",
        "talk to an agent",
        "speak to an agent",
        "live agent",
        "representative",
        "operator",
    ];
    PHRASES.iter().any(|p| text.contains(p))
}

/// The ticket subject for an escalated chat: the customer's first words.
pub fn subject_from(first_message: Option<&str>, customer: &str) -> String {
    match first_message.map(str::trim).filter(|m| !m.is_empty()) {
        Some(text) => {
            let line = text.lines().next().unwrap_or(text);
            let mut subject: String = line.chars().take(80).collect();
            if line.chars().count() > 80 {
                subject.push('…');
            }
            subject
        }
        None => format!("Chat with {customer}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asking_for_a_person_is_recognised() {
        assert!(asks_for_a_person("Can I talk to a person please?"));
        assert!(asks_for_a_person("HUMAN"));
        assert!(!asks_for_a_person("where is my order"));
    }

    #[test]
    fn subjects_are_the_first_line_shortened() {
        assert_eq!(
            subject_from(Some("Printer broken\nmore"), "Ada"),
            "Printer broken"
        );
        assert_eq!(subject_from(None, "Ada"), "Chat with Ada");
        assert_eq!(
            subject_from(Some(&"x".repeat(100)), "Ada").chars().count(),
            81
        );
    }

    #[test]
    fn bodies_and_ids_are_bounded() {
        assert!(parse_body("  ").is_err());
        assert!(parse_body(&"a".repeat(MAX_BODY + 1)).is_err());
        assert_eq!(parse_body(" hi ").unwrap(), "hi");
        assert!(parse_client_msg_id("").is_err());
        assert!(parse_client_msg_id(&"a".repeat(101)).is_err());
        assert!(parse_client_msg_id("c-1").is_ok());
        assert!(
            parse_client_msg_id("bot:first").is_err(),
            "reserved for the server"
        );
    }
}
