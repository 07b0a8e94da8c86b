//! Typed ids: a conversation id cannot be passed where a user id, a site id
//! or a ticket number is meant. Each wraps the database's integer; `.0` is
//! for the store's binds and nothing else.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Defines an id newtype over `i64`: ordered, hashable, shown and
/// serialized and read as the bare number.
macro_rules! id_type {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        /// Reads the number as the wire spells it (`"42"`).
        impl std::str::FromStr for $name {
            type Err = std::num::ParseIntError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                s.parse().map($name)
            }
        }
    };
}

id_type!(
    /// An account: customer, agent or admin.
    UserId
);
id_type!(
    /// A conversation (a chat, and the thread of its ticket).
    ConversationId
);
id_type!(
    /// A ticket's number as people see it (`#1042`), not its row id.
    TicketNumber
);
id_type!(
    /// One message of a conversation.
    MessageId
);
id_type!(
    /// A website the widget runs on.
    SiteId
);
id_type!(
    /// Someone chatting from the widget.
    VisitorId
);
id_type!(
    /// A label admins defined for tickets.
    LabelId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_show_and_serialize_as_their_number() {
        assert_eq!(ConversationId(42).to_string(), "42");
        assert_eq!(serde_json::to_string(&TicketNumber(1042)).unwrap(), "1042");
    }
}
