//! The domain: people, tickets and conversations, and the rules that govern
//! them. Nothing here knows about HTTP; storage is reached through
//! [`crate::store::Store`].

use std::fmt;

use serde::Serialize;

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
    #[error("wrong email or password")]
    BadCredentials,
    /// No valid session: log in first.
    #[error("log in first: this needs a valid session")]
    Unauthenticated,
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("internal error: {0}")]
    Internal(String),
}

pub fn invalid(field: &'static str, message: impl Into<String>) -> DomainError {
    DomainError::Invalid {
        field,
        message: message.into(),
    }
}

pub type DomainResult<T> = Result<T, DomainError>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct UserId(pub i64);

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Defines a string-backed enum with `as_str`, `parse` and `ALL`.
macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($variant),+ }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            pub fn parse(s: &str) -> Option<$name> {
                match s { $($text => Some($name::$variant),)+ _ => None }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

pub mod accounts;
pub mod attachments;
pub mod chat;
pub mod conversations;
pub mod password;
pub mod reports;
pub mod sites;
pub mod tickets;

text_enum!(
    /// What a user may do. Customers raise tickets; agents work them; admins
    /// also manage people and settings.
    Role { Customer = "customer", Agent = "agent", Admin = "admin" }
);

impl Role {
    pub fn is_staff(self) -> bool {
        matches!(self, Role::Agent | Role::Admin)
    }
}

text_enum!(
    TicketStatus { Open = "open", Pending = "pending", Resolved = "resolved", Closed = "closed" }
);

text_enum!(
    Priority { Low = "low", Normal = "normal", High = "high", Urgent = "urgent" }
);

text_enum!(
    ConversationStatus { Bot = "bot", Waiting = "waiting", Live = "live", Resolved = "resolved", Closed = "closed" }
);

text_enum!(
    SenderKind { Customer = "customer", Bot = "bot", Agent = "agent", System = "system" }
);

/// An email address, trimmed and lower-cased. Parsing is deliberately
/// simple: one `@`, something on each side, a dot in the domain.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Email(String);

impl Email {
    pub fn parse(input: &str) -> DomainResult<Email> {
        let email = input.trim().to_lowercase();
        let bad = || invalid("email", "Enter an email address like name@example.com.");
        if email.is_empty() {
            return Err(invalid("email", "Enter your email address."));
        }
        if email.len() > 254 || email.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad());
        }
        let (local, domain) = email.split_once('@').ok_or_else(bad)?;
        if local.is_empty()
            || domain.contains('@')
            || !domain.contains('.')
            || domain.starts_with('.')
            || domain.ends_with('.')
        {
            return Err(bad());
        }
        Ok(Email(email))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A person's display name: trimmed, 1 to 100 characters.
pub fn parse_name(input: &str) -> DomainResult<String> {
    let name = input.trim();
    if name.is_empty() {
        return Err(invalid("name", "Enter your name."));
    }
    if name.chars().count() > 100 {
        return Err(invalid("name", "Use at most 100 characters."));
    }
    if name.chars().any(char::is_control) {
        return Err(invalid("name", "Remove the control characters."));
    }
    Ok(name.to_string())
}

#[derive(Debug, Clone, Serialize)]
pub struct User {
    pub id: UserId,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub verified: bool,
    pub created_at: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(
            Email::parse("  Ada@Example.COM ").unwrap().as_str(),
            "ada@example.com"
        );
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "a b@example.com",
            "a@b@c.com",
            "ada@example.com.",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn text_enums_round_trip() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(*role));
        }
        assert_eq!(Priority::parse("urgent"), Some(Priority::Urgent));
        assert_eq!(TicketStatus::parse("bogus"), None);
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(parse_name("  Ada  ").unwrap(), "Ada");
        assert!(parse_name("   ").is_err());
        assert!(parse_name(&"x".repeat(101)).is_err());
    }
}
