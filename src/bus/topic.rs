//! What the bus carries: a typed [`Topic`] and an [`Envelope`]. Topics
//! are spelled as text (`c:42`) only where they leave the process (Redis
//! channel names); everything else matches on the types.

use std::fmt;
use std::sync::Arc;

use crate::model::{ConversationId, UserId};

/// Where an event goes: one audience of one conversation, one agent, one
/// account, or the waiting list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Topic {
    /// What a conversation's visitor may see (public messages, numbered by
    /// `public_seq`). Spelled `c:{id}`.
    Public(ConversationId),
    /// What staff see of a conversation (every message, numbered by `seq`).
    /// Spelled `s:{id}`.
    Staff(ConversationId),
    /// One agent: a conversation became theirs. Spelled `a:{id}`.
    Agent(UserId),
    /// One account changed (sessions, role, name): its open consoles
    /// re-check it. For the server only, never forwarded to a client.
    /// Spelled `u:{id}`.
    Account(UserId),
    /// The waiting list (coalesced snapshots). Spelled `queue`.
    Queue,
}

impl Topic {
    /// The conversation whose thread this topic carries, if it carries one
    /// (a listener that may have lost some of it can resume it).
    pub fn conversation(self) -> Option<ConversationId> {
        match self {
            Topic::Public(id) | Topic::Staff(id) => Some(id),
            Topic::Agent(_) | Topic::Account(_) | Topic::Queue => None,
        }
    }

    /// Reads the spelling made by `Display`; `None` for anything else.
    pub fn parse(text: &str) -> Option<Topic> {
        if text == "queue" {
            return Some(Topic::Queue);
        }
        let (kind, id) = text.split_once(':')?;
        // Only the digits `Display` writes: no sign, no spaces.
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let id: i64 = id.parse().ok()?;
        match kind {
            "c" => Some(Topic::Public(ConversationId(id))),
            "s" => Some(Topic::Staff(ConversationId(id))),
            "a" => Some(Topic::Agent(UserId(id))),
            "u" => Some(Topic::Account(UserId(id))),
            _ => None,
        }
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Topic::Public(id) => write!(f, "c:{id}"),
            Topic::Staff(id) => write!(f, "s:{id}"),
            Topic::Agent(id) => write!(f, "a:{id}"),
            Topic::Account(id) => write!(f, "u:{id}"),
            Topic::Queue => f.write_str("queue"),
        }
    }
}

/// One event on a topic: the serialized frame every listening socket gets
/// as it is, and what the receiving instance itself must do with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The frame, serialized once by the publisher and shared by every
    /// socket it reaches.
    pub frame: Arc<str>,
    /// A conversation the listening consoles start following (it was just
    /// given to their agent), so that the hub need not read it back out of
    /// the frame. Only [`Topic::Agent`] carries one.
    pub follow: Option<ConversationId>,
}

impl Envelope {
    pub fn frame(frame: Arc<str>) -> Envelope {
        Envelope {
            frame,
            follow: None,
        }
    }

    /// A frame telling an agent that `conversation` is theirs now.
    pub fn assignment(frame: Arc<str>, conversation: ConversationId) -> Envelope {
        Envelope {
            frame,
            follow: Some(conversation),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_are_spelled_and_read_back() {
        for topic in [
            Topic::Public(ConversationId(42)),
            Topic::Staff(ConversationId(7)),
            Topic::Agent(UserId(3)),
            Topic::Account(UserId(9)),
            Topic::Queue,
        ] {
            assert_eq!(Topic::parse(&topic.to_string()), Some(topic));
        }
        assert_eq!(Topic::Public(ConversationId(42)).to_string(), "c:42");
        assert_eq!(Topic::Account(UserId(9)).to_string(), "u:9");
        for bad in ["", "c:", "c:x", "c:-1", "c: 1", "x:1", "queue:1", "c:1:2"] {
            assert_eq!(Topic::parse(bad), None, "{bad:?}");
        }
    }
}
