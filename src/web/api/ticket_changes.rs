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

use super::tickets::{priority_field, status_field};
use crate::domain::shapes::ApiTicket;
use crate::domain::tickets::{self, TicketUpdate};
use crate::domain::{DomainError, invalid};
use crate::model::{TicketNumber, UserId};
use crate::web::AppState;
use crate::web::error::ApiError;
use crate::web::session::ApiUser;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/tickets/{number}/replies", post(reply))
        .route("/api/v1/tickets/{number}/notes", post(note))
        .route("/api/v1/tickets/{number}", axum::routing::patch(update))
}

#[derive(Deserialize)]
struct Written {
    body: String,
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

fn body_of(
    body: Result<Json<Written>, axum::extract::rejection::JsonRejection>,
) -> Result<Written, ApiError> {
    body.map(|Json(w)| w).map_err(|e| {
        ApiError(invalid(
            "body",
            format!("expected {{\"body\": \"…\"}}: {}", e.body_text()),
        ))
    })
}

/// A reply or a note.
#[derive(Clone, Copy)]
enum Kind {
    Reply,
    Note,
}

async fn reply(
    state: State<AppState>,
    caller: ApiUser,
    number: Path<TicketNumber>,
    headers: HeaderMap,
    body: Result<Json<Written>, axum::extract::rejection::JsonRejection>,
) -> Response {
    write(Kind::Reply, state, caller, number, headers, body).await
}

async fn note(
    state: State<AppState>,
    caller: ApiUser,
    number: Path<TicketNumber>,
    headers: HeaderMap,
    body: Result<Json<Written>, axum::extract::rejection::JsonRejection>,
) -> Response {
    write(Kind::Note, state, caller, number, headers, body).await
}

async fn write(
    kind: Kind,
    State(state): State<AppState>,
    caller: ApiUser,
    Path(number): Path<TicketNumber>,
    headers: HeaderMap,
    body: Result<Json<Written>, axum::extract::rejection::JsonRejection>,
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

/// `null` unassigns; a missing field leaves it as it is.
#[derive(Deserialize)]
struct Changes {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    priority: Option<String>,
    #[serde(default, deserialize_with = "present")]
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

async fn update(
    State(state): State<AppState>,
    caller: ApiUser,
    Path(number): Path<TicketNumber>,
    body: Result<Json<Changes>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Ok(Json(changes)) = body else {
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
