//! One message in a conversation, in both numberings.

use super::{AttachmentRef, ConversationId, MessageId, UserId};

/// The longest message text, in characters, whoever writes it.
pub const MAX_BODY: usize = 8000;

text_enum!(
    SenderKind { Customer = "customer", Bot = "bot", Agent = "agent", System = "system" }
);

#[derive(Debug, Clone)]
pub struct Message {
    pub id: MessageId,
    pub conversation_id: ConversationId,
    /// Position in the conversation as staff see it (every message).
    pub seq: i64,
    /// Position as the customer sees it (public messages only; notes have none).
    pub public_seq: Option<i64>,
    pub sender_kind: SenderKind,
    /// The user who wrote it (agents, logged-in customers), if any.
    pub sender_user_id: Option<UserId>,
    pub sender_name: String,
    pub body: String,
    pub private: bool,
    pub client_msg_id: String,
    pub created_at: i64,
    pub attachment: Option<AttachmentRef>,
    /// The buttons a bot offered with it (already bounded); empty for
    /// every other message.
    pub options: Vec<String>,
}
