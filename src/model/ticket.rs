//! Tickets: what a customer raised, who works on it, where it stands, and
//! its timeline.

use super::{ConversationId, Label, SiteId, TicketNumber, UserId, VisitorId};

text_enum!(
    TicketStatus { Open = "open", Pending = "pending", Resolved = "resolved", Closed = "closed" }
);

text_enum!(
    Priority { Low = "low", Normal = "normal", High = "high", Urgent = "urgent" }
);

#[derive(Debug, Clone)]
pub struct Person {
    pub id: Option<UserId>,
    pub name: String,
    pub email: String,
}

#[derive(Debug, Clone)]
pub struct Ticket {
    pub id: i64,
    pub number: TicketNumber,
    pub conversation_id: ConversationId,
    /// The site its conversation came from.
    pub site_id: SiteId,
    pub site_name: String,
    pub subject: String,
    pub status: TicketStatus,
    pub priority: Priority,
    pub customer: Person,
    /// The customer's contact (visitor) record, for staff's profile link.
    pub customer_contact: VisitorId,
    /// Whether the customer's email is proven (a verified account's, or
    /// vouched for by the host site); a typed one is shown as unverified.
    pub customer_verified: bool,
    pub assignee: Option<Person>,
    pub created_at: i64,
    pub updated_at: i64,
    pub first_response_at: Option<i64>,
    pub resolved_at: Option<i64>,
    /// Its labels, by name (staff only: a customer is never shown them).
    pub labels: Vec<Label>,
}

impl Ticket {
    /// The agent the ticket (and its conversation) is assigned to, if any.
    pub fn assignee_id(&self) -> Option<UserId> {
        self.assignee.as_ref().and_then(|a| a.id)
    }
}

/// One entry of a ticket's progress timeline.
#[derive(Debug, Clone)]
pub struct TicketEvent {
    pub at: i64,
    pub actor: String,
    pub kind: EventKind,
    pub old_value: Option<String>,
    pub new_value: Option<String>,
    pub private: bool,
}

text_enum!(
    EventKind {
        Opened = "opened",
        Assigned = "assigned",
        Status = "status",
        Priority = "priority",
        CustomerReply = "customer_reply",
        AgentReply = "agent_reply",
        Note = "note",
        Rated = "rated",
        LabelAdded = "label_added",
        LabelRemoved = "label_removed",
        ContactMerged = "contact_merged",
    }
);

impl TicketEvent {
    /// The timeline line people read, e.g. "Status changed from open to pending".
    pub fn describe(&self) -> String {
        let old = self.old_value.as_deref().unwrap_or("");
        let new = self.new_value.as_deref().unwrap_or("");
        match self.kind {
            EventKind::Opened => "Ticket opened".into(),
            EventKind::Assigned if new.is_empty() => format!("Unassigned (was {old})"),
            EventKind::Assigned => format!("Assigned to {new}"),
            EventKind::Status => format!("Status changed from {old} to {new}"),
            EventKind::Priority => format!("Priority changed from {old} to {new}"),
            EventKind::CustomerReply => "Customer replied".into(),
            EventKind::AgentReply => "Support replied".into(),
            EventKind::Note => "Private note added".into(),
            EventKind::Rated => format!("Customer rated the help {new}"),
            EventKind::LabelAdded => format!("Label added: {new}"),
            EventKind::LabelRemoved => format!("Label removed: {old}"),
            EventKind::ContactMerged => format!("Contact merged: {old} into {new}"),
        }
    }
}
