//! A conversation between a visitor, the bot and agents, and the waiting
//! list's view of one.

use super::{ConversationId, SiteId, TicketNumber, UserId, VisitorId};

text_enum!(
    ConversationStatus { Bot = "bot", Waiting = "waiting", Live = "live", Resolved = "resolved", Closed = "closed" }
);

#[derive(Debug, Clone)]
pub struct Conversation {
    pub id: ConversationId,
    pub site_id: SiteId,
    /// The name of the site it came from, for staff.
    pub site_name: String,
    pub visitor_id: VisitorId,
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
    pub ticket_number: Option<TicketNumber>,
    pub ticket_id: Option<i64>,
    /// When staff first answered on the ticket (`None` until then).
    pub first_response_at: Option<i64>,
    pub customer_name: String,
    pub customer_email: String,
    /// Whether that email is proven: a verified account's, or vouched for
    /// by the host site (`domain::identity`); a typed one is not.
    pub customer_verified: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A conversation waiting for a person, as the queue shows it.
#[derive(Debug, Clone)]
pub struct QueueEntry {
    pub conversation_id: ConversationId,
    pub site_id: SiteId,
    pub site_name: String,
    pub ticket_number: Option<TicketNumber>,
    pub customer_name: String,
    pub customer_email: String,
    pub waiting_since: i64,
    pub preview: String,
}
