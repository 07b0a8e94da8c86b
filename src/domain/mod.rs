//! The domain: people, tickets and conversations, and the rules that govern
//! them. Nothing here knows about HTTP; storage is reached through
//! [`crate::store::Store`], and the records both speak are in
//! [`crate::model`].

use crate::model::InvalidField;
use crate::store::StoreError;

/// A rule was broken by the caller's input or permissions. Each variant says
/// what went wrong in words a person can act on.
#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    /// A field's value is not acceptable; `field` names it for the form.
    #[error("{message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    /// A field is over its size limit.
    #[error("{message}")]
    TooLarge {
        field: &'static str,
        message: String,
    },
    /// The thing does not exist, or the caller may not see it (same answer).
    #[error("not found")]
    NotFound,
    /// The caller may see it but not do this.
    #[error("{0}")]
    Forbidden(&'static str),
    /// The action conflicts with the current state.
    #[error("{0}")]
    Conflict(String),
    /// It was there and takes nothing new any more (an archived site's chat).
    #[error("{0}")]
    Gone(String),
    #[error("wrong email or password")]
    BadCredentials,
    /// No valid session: log in first.
    #[error("log in first: this needs a valid session")]
    Unauthenticated,
    /// Too much of something costly is running; come back in a moment.
    #[error("{message}")]
    Busy {
        message: &'static str,
        retry_after_secs: u64,
    },
    /// Storage could not do it (down, timed out, refused): nothing the
    /// caller can correct. The text is for the log, never for people.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<InvalidField> for DomainError {
    fn from(e: InvalidField) -> Self {
        DomainError::Invalid {
            field: e.field,
            message: e.message,
        }
    }
}

/// What callers need of a storage failure: not found, a conflict, or
/// unavailable. The database's own error stays a line in the log.
impl From<StoreError> for DomainError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => DomainError::NotFound,
            StoreError::Conflict => {
                DomainError::Conflict("it changed meanwhile; reload and try again".into())
            }
            StoreError::Duplicate(what) => {
                DomainError::Conflict(format!("{what} is already taken"))
            }
            StoreError::AttachmentTaken => chat::attachment_taken(),
            other => DomainError::Unavailable(other.to_string()),
        }
    }
}

pub fn invalid(field: &'static str, message: impl Into<String>) -> DomainError {
    DomainError::Invalid {
        field,
        message: message.into(),
    }
}

pub type DomainResult<T> = Result<T, DomainError>;

pub mod accounts;
pub mod api_tokens;
pub mod attachments;
pub mod bulk;
pub mod chat;
pub mod contact_merge;
pub mod contacts;
mod email_files;
pub mod email_originals;
pub mod identity;
pub mod inbound_email;
pub mod labels;
pub mod mailbox;
pub mod notifications;
pub mod ownership;
pub mod password;
pub mod reports;
pub mod shapes;
pub mod sites;
pub mod tickets;
pub mod uploads;
pub mod webhooks;

/// A person's display name: trimmed, 1 to 100 characters.
pub fn parse_name(input: &str) -> DomainResult<String> {
    let name = input.trim();
    if name.is_empty() {
        return Err(invalid("name", "Enter your name."));
    }
    if name.chars().count() > 100 {
        return Err(invalid("name", "Use at most 100 characters."));
    }
    if crate::model::text::has_hidden(name) {
        return Err(invalid("name", "Remove the control characters."));
    }
    Ok(name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(parse_name("  Ada  ").unwrap(), "Ada");
        assert!(parse_name("   ").is_err());
        assert!(parse_name(&"x".repeat(101)).is_err());
    }
}
