//! The API's tickets as read: the list (filtered, a page at a time) and one
//! ticket with its messages and timeline, as the caller may see them.

use axum::extract::{Path, Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, OpenApi, ToSchema};

use crate::domain::invalid;
use crate::domain::shapes::{ApiEvent, ApiMessage, ApiTicket};
use crate::domain::tickets;
use crate::model::TicketNumber;
use crate::model::{Priority, TicketStatus};
use crate::store::TicketFilter;
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

#[derive(Deserialize, Default, IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// Only tickets with this status.
    #[param(value_type = Option<TicketStatus>)]
    status: Option<String>,
    /// Only tickets with this priority.
    #[param(value_type = Option<Priority>)]
    priority: Option<String>,
    /// A number (`1042` or `#1042`), or words of the subject or the
    /// customer's email.
    q: Option<String>,
    /// A site's id: only tickets whose conversation came from it.
    site: Option<String>,
    /// At most this many (1 to 200; 50 when missing, zero or below).
    limit: Option<i64>,
    /// Skip this many (below zero counts as zero).
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

/// List tickets
///
/// The tickets the caller may see, most recently changed first: staff see
/// every ticket, a customer their own.
#[utoipa::path(
    get,
    path = "/api/v1/tickets",
    operation_id = "list_tickets",
    tag = "tickets",
    params(ListQuery),
    responses(
        (status = 200, description = "The tickets, newest change first", body = Vec<ApiTicket>),
        (status = 401, description = "No valid session or token", body = ErrorBody),
        (status = 422, description = "A filter is not one the API knows (the field names it)", body = ErrorBody),
        (status = 429, description = "Too many requests with this token", body = ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds to wait"))),
    ),
    security(("token" = ["read"]), ("session" = [])),
)]
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
