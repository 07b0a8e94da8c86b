//! What people send, checked (bodies, client ids), and what a message
//! means (asking for a person; the subject of the ticket it opens).

use crate::domain::{DomainError, DomainResult, invalid};
use crate::model::text::clean_text;
use crate::model::{AttachmentRef, MAX_BODY};

pub const MAX_CLIENT_MSG_ID: usize = 100;

/// A message body: trimmed, not empty, at most [`MAX_BODY`] characters.
pub fn parse_body(body: &str) -> DomainResult<String> {
    let body = clean_text(body);
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
pub fn body_with(body: &str, attachment: Option<&AttachmentRef>) -> DomainResult<String> {
    if attachment.is_some() && body.trim().is_empty() {
        return Ok(String::new());
    }
    parse_body(body)
}

/// What a message says in an email or a preview, file included.
pub fn message_text(body: &str, attachment: Option<&AttachmentRef>) -> String {
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
        // Hidden characters go on the way in; lines and tabs stay.
        assert_eq!(
            parse_body("hi\0 there\u{1b}[2J\r\nline\u{202e}two\tend").unwrap(),
            "hi there[2J\nlinetwo\tend"
        );
        assert!(parse_body("\0\u{202e}").is_err(), "nothing left is empty");
        assert!(parse_client_msg_id("").is_err());
        assert!(parse_client_msg_id(&"a".repeat(101)).is_err());
        assert!(parse_client_msg_id("c-1").is_ok());
        assert!(
            parse_client_msg_id("bot:first").is_err(),
            "reserved for the server"
        );
    }
}
