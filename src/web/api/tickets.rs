//! The API's tickets as read: the list (filtered, a page at a time) and one
//! ticket with its messages and timeline, as the caller may see them.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, OpenApi, ToSchema};

use super::paging::{given, page_size, paged};
use crate::domain::shapes::{ApiEvent, ApiMessage, ApiTicket};
use crate::domain::tickets;
use crate::domain::{DomainError, invalid};
use crate::model::{Priority, TicketStatus};
use crate::model::{TicketNumber, UserId};
use crate::store::{AssigneeFilter, TicketCursor, TicketFilter};
use crate::web::AppState;
use crate::web::error::{ApiError, ErrorBody};
use crate::web::session::ApiUser;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/tickets", get(list))
        .route("/api/v1/tickets/{number}", get(show))
}

/// This file's routes in the OpenAPI document (`super::openapi`).
#[derive(OpenApi)]
#[openapi(paths(list, show))]
pub(super) struct Doc;

#[derive(Serialize, ToSchema)]
#[schema(as = TicketView)]
struct ApiTicketView {
    ticket: ApiTicket,
    messages: Vec<ApiMessage>,
    timeline: Vec<ApiEvent>,
}

/// The list's query, every value read as text so that a bad one is named
/// in the JSON error rather than refused by the extractor.
#[derive(Deserialize, Serialize, Default, IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// Only tickets with this status.
    #[param(value_type = Option<TicketStatus>)]
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<String>,
    /// Only tickets with this priority.
    #[param(value_type = Option<Priority>)]
    #[serde(skip_serializing_if = "Option::is_none")]
    priority: Option<String>,
    /// `me`, `unassigned` or an agent's id (staff).
    #[serde(skip_serializing_if = "Option::is_none")]
    assignee: Option<String>,
    /// A number (`1042` or `#1042`), or words of the subject or the
    /// customer's email.
    #[serde(skip_serializing_if = "Option::is_none")]
    q: Option<String>,
    /// A site's id: only tickets whose conversation came from it.
    #[serde(skip_serializing_if = "Option::is_none")]
    site: Option<String>,
    /// A label's id (`GET /api/v1/labels`): only tickets carrying it.
    #[param(value_type = Option<i64>)]
    #[serde(skip_serializing_if = "Option::is_none")]
    label: Option<String>,
    /// At most this many (1 to 100; 50 when missing).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100)]
    #[serde(skip_serializing_if = "Option::is_none")]
    limit: Option<String>,
    /// Where the previous page ended: the `cursor` of the `Link: <…>;
    /// rel="next"` header the previous page came with (opaque).
    #[serde(skip_serializing_if = "Option::is_none")]
    cursor: Option<String>,
    /// The older way to page (skip this many); a cursor neither skips nor
    /// repeats a ticket that changes meanwhile, and stays fast deep down.
    #[param(value_type = Option<i64>, minimum = 0)]
    #[serde(skip_serializing_if = "Option::is_none")]
    offset: Option<String>,
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

/// A page's end as the API hands it out: opaque to callers.
fn cursor_text(cursor: TicketCursor) -> String {
    format!("{}.{}", cursor.updated_at, cursor.id)
}

fn cursor_field(text: &str) -> Result<TicketCursor, DomainError> {
    text.split_once('.')
        .and_then(|(at, id)| {
            Some(TicketCursor {
                updated_at: at.parse().ok()?,
                id: id.parse().ok()?,
            })
        })
        .ok_or_else(|| {
            invalid(
                "cursor",
                "cursor must be one a list answered with (its Link header, rel=\"next\")",
            )
        })
}

fn filter_of(query: &ListQuery) -> Result<TicketFilter, DomainError> {
    let limit = page_size(&query.limit)?;
    let assignee = match given(&query.assignee) {
        None => AssigneeFilter::Anyone,
        Some("me") => AssigneeFilter::Me,
        Some("unassigned") => AssigneeFilter::Unassigned,
        Some(id) => AssigneeFilter::User(UserId(id.parse().map_err(|_| {
            invalid(
                "assignee",
                "assignee must be me, unassigned or an agent's id",
            )
        })?)),
    };
    Ok(TicketFilter {
        status: given(&query.status).map(status_field).transpose()?,
        priority: given(&query.priority).map(priority_field).transpose()?,
        assignee,
        site: given(&query.site)
            .map(|s| {
                s.parse().map_err(|_| {
                    invalid(
                        "site",
                        "site must be a site's id, as the ticket's `site.id` gives it",
                    )
                })
            })
            .transpose()?,
        label: given(&query.label)
            .map(|l| {
                l.parse().map_err(|_| {
                    invalid(
                        "label",
                        "label must be a label's id, as GET /api/v1/labels gives it",
                    )
                })
            })
            .transpose()?,
        query: given(&query.q).map(str::to_string),
        // One more than the page: whether another page follows.
        limit: limit + 1,
        offset: given(&query.offset)
            .map(|o| {
                o.parse::<i64>()
                    .ok()
                    .filter(|o| *o >= 0)
                    .ok_or_else(|| invalid("offset", "offset must be 0 or more"))
            })
            .transpose()?
            .unwrap_or(0),
        after: given(&query.cursor).map(cursor_field).transpose()?,
        ..TicketFilter::default()
    })
}

/// List tickets
///
/// The tickets the caller may see, most recently changed first (staff see
/// every ticket, a customer their own), a page at a time: when more
/// follow, the `Link: <…&cursor=…>; rel="next"` header gives the next page.
#[utoipa::path(
    get,
    path = "/api/v1/tickets",
    operation_id = "list_tickets",
    tag = "tickets",
    params(ListQuery),
    responses(
        (status = 200, description = "The tickets, newest change first", body = Vec<ApiTicket>,
            headers(("Link" = String, description = "`<path?…&cursor=…>; rel=\"next\"` when another page follows"))),
        (status = 401, description = "No valid session or token", body = ErrorBody),
        (status = 422, description = "A filter, limit or cursor is not one the API knows (the field names it)", body = ErrorBody),
        (status = 429, description = "Too many requests with this token", body = ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds to wait"))),
    ),
    security(("token" = ["read"]), ("session" = [])),
)]
async fn list(
    State(state): State<AppState>,
    ApiUser { user, .. }: ApiUser,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(mut query) =
        query.map_err(|e| invalid("query", format!("unreadable query: {}", e.body_text())))?;
    let filter = filter_of(&query)?;
    let page = (filter.limit - 1) as usize;
    let staff = user.role.is_staff();
    let mut found = tickets::list(state.store(), &user, filter).await?;
    let next = (found.len() > page).then(|| TicketCursor::of(&found[page - 1]));
    found.truncate(page);
    let tickets: Vec<ApiTicket> = found
        .into_iter()
        .map(|t| ApiTicket::new(t, staff))
        .collect();
    if let Some(next) = next {
        query.cursor = Some(cursor_text(next));
        query.offset = None;
    }
    Ok(paged(tickets, "/api/v1/tickets", next.map(|_| &query)))
}

/// Read a ticket
///
/// One ticket with its messages and timeline, as the caller may see them
/// (private notes and staff ids only for staff). Not the caller's to see,
/// or no such ticket: 404 alike.
#[utoipa::path(
    get,
    path = "/api/v1/tickets/{number}",
    operation_id = "show_ticket",
    tag = "tickets",
    params(("number" = i64, Path, description = "The ticket's number (`1042`)")),
    responses(
        (status = 200, description = "The ticket, its messages and timeline", body = ApiTicketView),
        (status = 401, description = "No valid session or token", body = ErrorBody),
        (status = 404, description = "No such ticket, or not the caller's to see", body = ErrorBody),
        (status = 422, description = "A number that is not a number", body = ErrorBody),
        (status = 429, description = "Too many requests with this token", body = ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds to wait"))),
    ),
    security(("token" = ["read"]), ("session" = [])),
)]
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
