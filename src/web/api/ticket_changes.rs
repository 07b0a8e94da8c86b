//! The JSON API's ticket changes: reply, note, and status, priority or
//! assignee, by the same domain rules as the ticket pages. A session
//! caller sends the page's CSRF token (`X-CSRF-Token`); a token caller
//! needs a write token. A reply or note may carry an `Idempotency-Key`.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use utoipa::{OpenApi, ToSchema};

use super::body::{Body, Unreadable};
use super::tickets::{priority_field, status_field};
use crate::domain::shapes::ApiTicket;
use crate::domain::tickets::{self, TicketUpdate};
use crate::domain::{DomainError, invalid};
use crate::model::{TicketNumber, UserId};
use crate::web::AppState;
use crate::web::error::{ApiError, ErrorBody};
use crate::web::session::ApiUser;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/tickets/{number}/replies", post(reply))
        .route("/api/v1/tickets/{number}/notes", post(note))
        .route("/api/v1/tickets/{number}", axum::routing::patch(update))
}

/// This file's routes in the OpenAPI document (`super::openapi`).
#[derive(OpenApi)]
#[openapi(paths(reply, note, update))]
pub(super) struct Doc;

/// A reply or a note.
#[derive(Deserialize, ToSchema)]
#[schema(as = ReplyOrNote, example = json!({"body": "We have sent a new part."}))]
struct Written {
    /// The text (up to 8,000 characters).
    body: String,
    /// A file uploaded to the ticket's conversation
    /// (`POST /api/v1/conversations/{id}/attachments`), sent with it.
    #[serde(default)]
    attachment_id: Option<String>,
}

fn answer(result: Result<ApiTicket, DomainError>, created: bool) -> Response {
    match result {
        Ok(ticket) => {
            let status = if created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            (status, Json(ticket)).into_response()
        }
        Err(e) => ApiError(e).into_response(),
    }
}

fn body_of(body: Result<Body<Written>, Unreadable>) -> Result<Written, ApiError> {
    body.map(|Body(w)| w).map_err(|e| {
        ApiError(invalid(
            "body",
            format!("expected {{\"body\": \"…\"}}: {}", e.body_text()),
        ))
    })
}

/// Which of the two is written.
#[derive(Clone, Copy)]
enum Kind {
    Reply,
    Note,
}

/// Reply to a ticket
///
/// A reply as the caller: staff to the customer (emailed when they are
/// away); the customer reopens a pending or resolved ticket.
#[utoipa::path(
    post,
    path = "/api/v1/tickets/{number}/replies",
    operation_id = "reply_to_ticket",
    tag = "tickets",
    params(
        ("number" = i64, Path, description = "The ticket's number"),
        ("Idempotency-Key" = Option<String>, Header,
            description = "1–255 visible characters (a UUID is usual): a retry with the same key answers the first request again (`Idempotent-Replayed: true`)"),
    ),
    request_body = Written,
    responses(
        (status = 201, description = "Written; the ticket as it is now", body = ApiTicket),
        (status = 401, description = "No valid session or token", body = ErrorBody),
        (status = 403, description = "A read-only token, or a session without its CSRF token", body = ErrorBody),
        (status = 404, description = "No such ticket, or not the caller's", body = ErrorBody),
        (status = 409, description = "A request with this Idempotency-Key is still running", body = ErrorBody),
        (status = 413, description = "The body is longer than 8,000 characters", body = ErrorBody),
        (status = 422, description = "An empty body, an unknown attachment, or a key reused for another request (the field names it)", body = ErrorBody),
        (status = 429, description = "Too many requests with this token", body = ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds to wait"))),
    ),
    security(("token" = ["write"]), ("session" = [], "csrf" = [])),
)]
async fn reply(
    state: State<AppState>,
    caller: ApiUser,
    number: Path<TicketNumber>,
    headers: HeaderMap,
    body: Result<Body<Written>, Unreadable>,
) -> Response {
    write(Kind::Reply, state, caller, number, headers, body).await
}

/// Add a private note
///
/// A note on the ticket for staff only: never shown to the customer.
#[utoipa::path(
    post,
    path = "/api/v1/tickets/{number}/notes",
    operation_id = "add_ticket_note",
    tag = "tickets",
    params(
        ("number" = i64, Path, description = "The ticket's number"),
        ("Idempotency-Key" = Option<String>, Header,
            description = "1–255 visible characters (a UUID is usual): a retry with the same key answers the first request again (`Idempotent-Replayed: true`)"),
    ),
    request_body = Written,
    responses(
        (status = 201, description = "Written; the ticket as it is now", body = ApiTicket),
        (status = 401, description = "No valid session or token", body = ErrorBody),
        (status = 403, description = "A read-only token, or a session without its CSRF token", body = ErrorBody),
        (status = 404, description = "No such ticket, or not the caller's", body = ErrorBody),
        (status = 409, description = "A request with this Idempotency-Key is still running", body = ErrorBody),
        (status = 413, description = "The body is longer than 8,000 characters", body = ErrorBody),
        (status = 422, description = "An empty body, an unknown attachment, or a key reused for another request (the field names it)", body = ErrorBody),
        (status = 429, description = "Too many requests with this token", body = ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds to wait"))),
    ),
    security(("token" = ["write", "staff"]), ("session" = ["staff"], "csrf" = [])),
)]
async fn note(
    state: State<AppState>,
    caller: ApiUser,
    number: Path<TicketNumber>,
    headers: HeaderMap,
    body: Result<Body<Written>, Unreadable>,
) -> Response {
    write(Kind::Note, state, caller, number, headers, body).await
}

async fn write(
    kind: Kind,
    State(state): State<AppState>,
    caller: ApiUser,
    Path(number): Path<TicketNumber>,
    headers: HeaderMap,
    body: Result<Body<Written>, Unreadable>,
) -> Response {
    let written = match body_of(body) {
        Ok(w) => w,
        Err(refused) => return refused.into_response(),
    };
    let path = match kind {
        Kind::Reply => "replies",
        Kind::Note => "notes",
    };
    let request = format!("POST /api/v1/tickets/{}/{path}", number.0);
    let user = caller.user.clone();
    super::idempotency::once(&state, &caller.user, &headers, &request, || async {
        let staff = user.role.is_staff();
        let (body, file) = (&written.body, written.attachment_id.as_deref());
        let result = match kind {
            Kind::Reply => tickets::reply(state.chat(), &user, number, body, file).await,
            Kind::Note => tickets::note(state.chat(), &user, number, body, file).await,
        };
        answer(result.map(|t| ApiTicket::new(t, staff)), true)
    })
    .await
}

/// What to change; a missing field stays as it is.
#[derive(Deserialize, ToSchema)]
#[schema(as = TicketChanges, example = json!({"status": "pending", "priority": "high"}))]
struct Changes {
    #[serde(default)]
    #[schema(value_type = Option<crate::model::TicketStatus>)]
    status: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<crate::model::Priority>)]
    priority: Option<String>,
    /// An agent's or admin's id; `null` unassigns.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i64>)]
    assignee_id: Option<Option<i64>>,
}

/// Tells `"assignee_id": null` (unassign) from no field at all.
fn present<'de, D>(d: D) -> Result<Option<Option<i64>>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    Option::<i64>::deserialize(d).map(Some)
}

/// What `changes` asks of a ticket, each field read as the list's filter
/// reads it.
fn update_of(changes: Changes) -> Result<TicketUpdate, DomainError> {
    Ok(TicketUpdate {
        status: changes.status.as_deref().map(status_field).transpose()?,
        priority: changes
            .priority
            .as_deref()
            .map(priority_field)
            .transpose()?,
        assignee: changes.assignee_id.map(|a| a.map(UserId)),
    })
}

/// Change a ticket
///
/// Its status, priority or assignee (staff), each change on the ticket's
/// timeline.
#[utoipa::path(
    patch,
    path = "/api/v1/tickets/{number}",
    operation_id = "change_ticket",
    tag = "tickets",
    params(("number" = i64, Path, description = "The ticket's number")),
    request_body = Changes,
    responses(
        (status = 200, description = "Changed; the ticket as it is now", body = ApiTicket),
        (status = 401, description = "No valid session or token", body = ErrorBody),
        (status = 403, description = "A read-only token, or a session without its CSRF token", body = ErrorBody),
        (status = 404, description = "No such ticket, or the caller is not staff", body = ErrorBody),
        (status = 409, description = "Someone changed the ticket at the same moment; read it and retry", body = ErrorBody),
        (status = 422, description = "A status, priority or assignee the API does not know (the field names it)", body = ErrorBody),
        (status = 429, description = "Too many requests with this token", body = ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds to wait"))),
    ),
    security(("token" = ["write", "staff"]), ("session" = ["staff"], "csrf" = [])),
)]
async fn update(
    State(state): State<AppState>,
    caller: ApiUser,
    Path(number): Path<TicketNumber>,
    body: Result<Body<Changes>, Unreadable>,
) -> Response {
    let Ok(Body(changes)) = body else {
        return ApiError(invalid(
            "body",
            "expected {\"status\"?, \"priority\"?, \"assignee_id\"?}",
        ))
        .into_response();
    };
    let parsed = update_of(changes);
    let result = match parsed {
        Ok(update) => tickets::update(state.chat(), &caller.user, number, update)
            .await
            .map(|t| ApiTicket::new(t, true)),
        Err(e) => Err(e),
    };
    answer(result, false)
}
