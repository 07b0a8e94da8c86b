//! The API's tickets as read: the list (filtered, a page at a time) and one
//! ticket with its messages and timeline, as the caller may see them.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::domain::shapes::{ApiEvent, ApiMessage, ApiTicket};
use crate::domain::tickets;
use crate::domain::{DomainError, invalid};
use crate::model::{Priority, TicketStatus};
use crate::model::{TicketNumber, UserId};
use crate::store::{AssigneeFilter, TicketCursor, TicketFilter};
use crate::web::AppState;
use crate::web::error::ApiError;
use crate::web::session::ApiUser;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/tickets", get(list))
        .route("/api/v1/tickets/{number}", get(show))
}

#[derive(Serialize)]
struct ApiTicketView {
    ticket: ApiTicket,
    messages: Vec<ApiMessage>,
    timeline: Vec<ApiEvent>,
}

/// The list's query, every value read as text so that a bad one is named
/// in the JSON error rather than refused by the extractor.
#[derive(Deserialize, Serialize, Default)]
struct ListQuery {
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    priority: Option<String>,
    /// `me`, `unassigned` or an agent's id (staff).
    #[serde(skip_serializing_if = "Option::is_none")]
    assignee: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    q: Option<String>,
    /// A site's id: only tickets whose conversation came from it.
    #[serde(skip_serializing_if = "Option::is_none")]
    site: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    limit: Option<String>,
    /// Where the previous page ended (its `Link: rel="next"` carries it).
    #[serde(skip_serializing_if = "Option::is_none")]
    cursor: Option<String>,
    /// The older way to page; kept for callers that use it.
    #[serde(skip_serializing_if = "Option::is_none")]
    offset: Option<String>,
}

/// Tickets per page unless `limit` says otherwise, and the most it may say.
const PAGE: i64 = 50;
const MAX_PAGE: i64 = 100;

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

/// A filter's value, empty as none.
fn given(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

fn filter_of(query: &ListQuery) -> Result<TicketFilter, DomainError> {
    let limit = match given(&query.limit) {
        None => PAGE,
        Some(l) => l
            .parse()
            .ok()
            .filter(|l| (1..=MAX_PAGE).contains(l))
            .ok_or_else(|| invalid("limit", format!("limit must be 1 to {MAX_PAGE}")))?,
    };
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

/// The tickets the caller may see, newest change first, a page at a time:
/// when more follow, `Link: <…&cursor=…>; rel="next"` gives the next page.
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
    let mut response = Json(tickets).into_response();
    if let Some(next) = next {
        query.cursor = Some(cursor_text(next));
        query.offset = None;
        let link = format!(
            "</api/v1/tickets?{}>; rel=\"next\"",
            serde_urlencoded::to_string(&query).unwrap_or_default()
        );
        if let Ok(value) = HeaderValue::from_str(&link) {
            response.headers_mut().insert(header::LINK, value);
        }
    }
    Ok(response)
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
