//! The records every part of Careline speaks: ids, people, conversations,
//! messages, tickets and their statuses. The store builds them from rows,
//! the domain decides about them, the edge shows them. Plain data, with the
//! few rules that belong to the data itself (how an email address or a
//! status is spelled). It imports nothing of the crate, so that any module
//! may import it and nothing here can point back up.

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

mod attachment;
mod conversation;
mod ids;
mod label;
mod message;
mod people;
mod site;
pub mod text;
mod ticket;

pub use attachment::{Attachment, AttachmentRef, is_inline_image};
pub use conversation::{Conversation, ConversationStatus, QueueEntry};
pub use ids::{ConversationId, LabelId, MessageId, SiteId, TicketNumber, UserId, VisitorId};
pub use label::{Label, LabelColour};
pub use message::{MAX_BODY, Message, SenderKind};
pub use people::{Email, Role, User, Visitor};
pub use site::WidgetPosition;
pub use ticket::{EventKind, Person, Priority, Ticket, TicketEvent, TicketStatus};

/// A value that cannot be what it claims to be; `field` names the input
/// it came from, `message` says how to put it right.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct InvalidField {
    pub field: &'static str,
    pub message: String,
}

impl InvalidField {
    pub fn new(field: &'static str, message: impl Into<String>) -> InvalidField {
        InvalidField {
            field,
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_enums_round_trip() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(*role));
        }
        assert_eq!(Priority::parse("urgent"), Some(Priority::Urgent));
        assert_eq!(TicketStatus::parse("bogus"), None);
    }
}
