//! The JSON API (v1), for the portal's scripts and integrations. It takes
//! the session cookie or a personal API token (`Authorization: Bearer
//! clt_…`, made on the account page), the same authorization as the pages, and
//! its own response shapes: a customer never gets staff ids, staff emails,
//! private notes or staff-side sequence numbers.

use axum::extract::{Path, Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::AppState;
use super::error::ApiError;
use super::session::ApiUser;
use crate::domain::chat::{Audience, attachment_info};
use crate::domain::invalid;
use crate::domain::tickets;
use crate::model::{Message, Ticket, TicketEvent, TicketNumber};
use crate::model::{Priority, TicketStatus};
use crate::protocol::AttachmentInfo;
use crate::store::TicketFilter;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/tickets", get(list))
        .route("/api/v1/tickets/{number}", get(show))
}

#[derive(Serialize)]
struct ApiPerson {
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<i64>,
    /// Staff only, for the customer: whether the email is proven.
    #[serde(skip_serializing_if = "Option::is_none")]
    verified: Option<bool>,
}

#[derive(Serialize)]
pub(super) struct ApiTicket {
    number: TicketNumber,
    subject: String,
    status: TicketStatus,
    priority: Priority,
    customer: ApiPerson,
    assignee: Option<ApiPerson>,
    /// The site its conversation came from (its id for staff only).
    site: ApiSite,
    created_at: i64,
    updated_at: i64,
    first_response_at: Option<i64>,
    resolved_at: Option<i64>,
}

#[derive(Serialize)]
struct ApiSite {
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<i64>,
}

impl ApiTicket {
    pub(super) fn new(ticket: Ticket, staff: bool) -> ApiTicket {
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
        }
    }
}

#[derive(Serialize)]
struct ApiMessage {
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

#[derive(Serialize)]
struct ApiSender {
    kind: crate::model::SenderKind,
    name: String,
}

impl ApiMessage {
    fn new(message: Message, staff: bool) -> Option<ApiMessage> {
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

#[derive(Serialize)]
struct ApiEvent {
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

#[derive(Serialize)]
struct ApiTicketView {
    ticket: ApiTicket,
    messages: Vec<ApiMessage>,
    timeline: Vec<ApiEvent>,
}

#[derive(Deserialize, Default)]
struct ListQuery {
    status: Option<String>,
    priority: Option<String>,
    q: Option<String>,
    /// A site's id: only tickets whose conversation came from it.
    site: Option<String>,
    limit: Option<i64>,
    offset: Option<i64>,
}

/// A ticket status as the API spells it, or the error naming the field
/// (the list's filter and a ticket's change read it alike).
pub(super) fn status_field(s: &str) -> Result<TicketStatus, crate::domain::DomainError> {
    TicketStatus::parse(s)
        .ok_or_else(|| invalid("status", "status must be open, pending, resolved or closed"))
}

/// A priority as the API spells it, or the error naming the field.
pub(super) fn priority_field(p: &str) -> Result<Priority, crate::domain::DomainError> {
    Priority::parse(p)
        .ok_or_else(|| invalid("priority", "priority must be low, normal, high or urgent"))
}

async fn list(
    State(state): State<AppState>,
    ApiUser { user, .. }: ApiUser,
    Query(query): Query<ListQuery>,
) -> Result<Json<Vec<ApiTicket>>, ApiError> {
    let status = match query.status.as_deref() {
        None | Some("") => None,
        Some(s) => Some(status_field(s)?),
    };
    let priority = match query.priority.as_deref() {
        None | Some("") => None,
        Some(p) => Some(priority_field(p)?),
    };
    let site = match query.site.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(s) => Some(s.parse().map_err(|_| {
            invalid(
                "site",
                "site must be a site's id, as the ticket's `site.id` gives it",
            )
        })?),
    };
    let filter = TicketFilter {
        status,
        priority,
        site,
        query: query.q,
        limit: query.limit.unwrap_or(50),
        offset: query.offset.unwrap_or(0),
        ..TicketFilter::default()
    };
    let staff = user.role.is_staff();
    let found = tickets::list(state.store(), &user, filter).await?;
    Ok(Json(
        found
            .into_iter()
            .map(|t| ApiTicket::new(t, staff))
            .collect(),
    ))
}

async fn show(
    State(state): State<AppState>,
    ApiUser { user, .. }: ApiUser,
    Path(number): Path<TicketNumber>,
) -> Result<Json<ApiTicketView>, ApiError> {
    let staff = user.role.is_staff();
    let view = tickets::view(state.store(), &user, number).await?;
    Ok(Json(ApiTicketView {
        ticket: ApiTicket::new(view.ticket, staff),
        messages: view
            .messages
            .into_iter()
            .filter_map(|m| ApiMessage::new(m, staff))
            .collect(),
        timeline: view.timeline.into_iter().map(ApiEvent::from).collect(),
    }))
}
