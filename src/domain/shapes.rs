//! The public JSON shapes of tickets, their messages and timelines: what
//! the REST API answers and what webhooks carry, decided once for both.
//! `staff` says who reads: a customer never gets staff ids, staff emails,
//! private notes or staff-side sequence numbers. Each shape also
//! describes itself (`ToSchema`) for the API's OpenAPI document.

use serde::Serialize;
use utoipa::ToSchema;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};

use super::chat::{Audience, attachment_info};
use crate::model::{Message, Ticket, TicketEvent, TicketNumber};
use crate::model::{Priority, TicketStatus};
use crate::protocol::AttachmentInfo;

#[derive(Serialize, ToSchema)]
pub struct ApiPerson {
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<i64>,
    /// Staff only, for the customer: whether the email is proven.
    #[serde(skip_serializing_if = "Option::is_none")]
    verified: Option<bool>,
}

#[derive(Serialize, ToSchema)]
pub struct ApiTicket {
    /// The number people see (`#1042`); the API's paths take it.
    #[schema(value_type = i64, example = 1042)]
    number: TicketNumber,
    subject: String,
    status: TicketStatus,
    priority: Priority,
    customer: ApiPerson,
    assignee: Option<ApiPerson>,
    /// The site its conversation came from (its id for staff only).
    site: ApiSite,
    /// Times are unix milliseconds.
    created_at: i64,
    updated_at: i64,
    first_response_at: Option<i64>,
    resolved_at: Option<i64>,
    /// Its labels, by name (staff only: always empty for a customer).
    labels: Vec<ApiLabel>,
}

/// A label admins defined; `colour` is one of the palette's names.
#[derive(Serialize, ToSchema)]
#[schema(as = Label)]
pub struct ApiLabel {
    id: i64,
    name: String,
    colour: crate::model::LabelColour,
}

impl From<crate::model::Label> for ApiLabel {
    fn from(label: crate::model::Label) -> ApiLabel {
        ApiLabel {
            id: label.id.0,
            name: label.name,
            colour: label.colour,
        }
    }
}

#[derive(Serialize, ToSchema)]
#[schema(as = TicketSite)]
pub struct ApiSite {
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<i64>,
}

impl ApiTicket {
    pub fn new(ticket: Ticket, staff: bool) -> ApiTicket {
        ApiTicket {
            number: ticket.number,
            subject: ticket.subject,
            status: ticket.status,
            priority: ticket.priority,
            customer: ApiPerson {
                name: ticket.customer.name,
                email: Some(ticket.customer.email),
                id: None,
                verified: staff.then_some(ticket.customer_verified),
            },
            assignee: ticket.assignee.map(|a| ApiPerson {
                name: a.name,
                email: staff.then_some(a.email),
                id: if staff { a.id.map(|id| id.0) } else { None },
                verified: None,
            }),
            site: ApiSite {
                name: ticket.site_name,
                id: staff.then_some(ticket.site_id.0),
            },
            created_at: ticket.created_at,
            updated_at: ticket.updated_at,
            first_response_at: ticket.first_response_at,
            resolved_at: ticket.resolved_at,
            labels: if staff {
                ticket.labels.into_iter().map(ApiLabel::from).collect()
            } else {
                Vec::new()
            },
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct ApiMessage {
    /// The caller's own numbering: customers count public messages only.
    seq: i64,
    sender: ApiSender,
    body: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    private: bool,
    at: i64,
    /// A file sent with the message, read at its `url` with the same session.
    #[serde(skip_serializing_if = "Option::is_none")]
    attachment: Option<AttachmentInfo>,
    /// The buttons a bot's question offered (labels only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    options: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ApiSender {
    kind: crate::model::SenderKind,
    name: String,
}

impl ApiMessage {
    pub fn new(message: Message, staff: bool) -> Option<ApiMessage> {
        let seq = if staff {
            Some(message.seq)
        } else {
            message.public_seq
        }?;
        Some(ApiMessage {
            seq,
            sender: ApiSender {
                kind: message.sender_kind,
                name: message.sender_name,
            },
            attachment: message
                .attachment
                .as_ref()
                // The session door: staff and portal customers alike.
                .map(|a| attachment_info(a, Audience::Staff)),
            body: message.body,
            private: message.private,
            at: message.created_at,
            options: message.options,
        })
    }
}

#[derive(Serialize, ToSchema)]
pub struct ApiEvent {
    at: i64,
    actor: String,
    kind: crate::model::EventKind,
    text: String,
    old_value: Option<String>,
    new_value: Option<String>,
}

impl From<TicketEvent> for ApiEvent {
    fn from(event: TicketEvent) -> ApiEvent {
        ApiEvent {
            text: event.describe(),
            at: event.at,
            actor: event.actor,
            kind: event.kind,
            old_value: event.old_value,
            new_value: event.new_value,
        }
    }
}

/// A contact (a customer behind conversations), for staff.
#[derive(Serialize, ToSchema)]
#[schema(as = Contact)]
pub struct ApiContact {
    id: i64,
    name: String,
    email: String,
    /// A verified account's, or signed by the host site.
    email_verified: bool,
    /// The host site's user id, when it signed who this is.
    external_id: Option<String>,
    /// Whether they have a Careline account (and so log in to the portal).
    has_account: bool,
    site: ApiSite,
    /// What an integration set: names of lower-case letters, digits and
    /// `_`; values text, numbers or true/false.
    #[schema(value_type = Object, example = json!({"plan": "pro", "seats": 5}))]
    attributes: serde_json::Map<String, serde_json::Value>,
    created_at: i64,
}

impl ApiContact {
    pub fn new(contact: crate::store::Contact) -> ApiContact {
        ApiContact {
            id: contact.id.0,
            name: contact.name,
            email: contact.email,
            email_verified: contact.email_verified,
            external_id: contact.external_id,
            has_account: contact.account.is_some(),
            site: ApiSite {
                name: contact.site_name,
                id: Some(contact.site_id.0),
            },
            attributes: serde_json::from_str(&contact.attributes).unwrap_or_default(),
            created_at: contact.created_at,
        }
    }
}

/// A note staff wrote on a contact (never shown to the customer).
#[derive(Serialize, ToSchema)]
#[schema(as = ContactNote)]
pub struct ApiContactNote {
    id: i64,
    /// The name of the agent or admin who wrote it.
    author: String,
    body: String,
    created_at: i64,
}

impl ApiContactNote {
    pub fn new(note: crate::store::ContactNote) -> ApiContactNote {
        ApiContactNote {
            id: note.id,
            author: note.author,
            body: note.body,
            created_at: note.created_at,
        }
    }
}

/// What merging a contact into another did.
#[derive(Serialize, ToSchema)]
#[schema(as = ContactMerge)]
pub struct ApiContactMerge {
    /// The contact merged into, as it is now.
    contact: ApiContact,
    /// How many of the other contact's conversations, tickets and notes
    /// moved to it.
    moved_conversations: usize,
    moved_tickets: usize,
    moved_notes: u64,
}

impl ApiContactMerge {
    pub fn new(merged: super::contact_merge::Merged) -> ApiContactMerge {
        ApiContactMerge {
            contact: ApiContact::new(merged.contact),
            moved_conversations: merged.moved.conversations.len(),
            moved_tickets: merged.moved.tickets.len(),
            moved_notes: merged.moved.notes,
        }
    }
}
/// The model's words (statuses, priorities, kinds) as the document's
/// enums, listed from their own `ALL`, so the document cannot name a word
/// the code does not have or miss one it has.
macro_rules! word_schema {
    ($($word:ty => $description:literal),+ $(,)?) => {$(
        impl utoipa::PartialSchema for $word {
            fn schema() -> RefOr<Schema> {
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .description(Some($description))
                    .enum_values(Some(<$word>::ALL.iter().map(|w| w.as_str())))
                    .into()
            }
        }
        impl ToSchema for $word {}
    )+};
}

word_schema!(
    TicketStatus => "Where a ticket stands.",
    Priority => "How urgent a ticket is.",
    crate::model::SenderKind => "Who wrote a message.",
    crate::model::EventKind => "What happened to a ticket.",
    crate::model::Role => "What a person may do.",
    crate::model::LabelColour => "A label's colour, from the fixed palette.",
);
