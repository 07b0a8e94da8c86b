//! The JSON API's labels, for staff: the labels admins defined, and a label
//! put on or taken off a ticket (a write token, or the session with its
//! CSRF token), by the same rules as the ticket page (`domain::labels`).

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::routing::{get, put};
use axum::{Json, Router};
use utoipa::OpenApi;

use crate::domain::invalid;
use crate::domain::labels;
use crate::domain::shapes::{ApiLabel, ApiTicket};
use crate::model::{LabelId, TicketNumber};
use crate::web::AppState;
use crate::web::error::{ApiError, ErrorBody};
use crate::web::session::ApiUser;

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/labels", get(list)).route(
        "/api/v1/tickets/{number}/labels/{label_id}",
        put(add).delete(remove),
    )
}

/// This file's routes in the OpenAPI document (`super::openapi`).
#[derive(OpenApi)]
#[openapi(paths(list, add, remove))]
pub(super) struct Doc;

/// List the labels
///
/// Every label admins defined, by name (staff).
#[utoipa::path(
    get,
    path = "/api/v1/labels",
    operation_id = "list_labels",
    tag = "tickets",
    responses(
        (status = 200, description = "The labels, by name", body = Vec<ApiLabel>),
        (status = 401, description = "No valid session or token", body = ErrorBody),
        (status = 404, description = "The caller is not staff", body = ErrorBody),
        (status = 429, description = "Too many requests with this token", body = ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds to wait"))),
    ),
    security(("token" = ["read", "staff"]), ("session" = ["staff"])),
)]
async fn list(
    State(state): State<AppState>,
    ApiUser { user, .. }: ApiUser,
) -> Result<Json<Vec<ApiLabel>>, ApiError> {
    let all = labels::list(state.store(), &user).await?;
    Ok(Json(all.into_iter().map(ApiLabel::from).collect()))
}

/// The path's ticket number and label id, or the error naming the bad one.
fn path_of(
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<(TicketNumber, LabelId), ApiError> {
    let Ok(Path((number, label))) = path else {
        return Err(ApiError(invalid(
            "path",
            "expected /tickets/{number}/labels/{label_id}",
        )));
    };
    let number = number
        .trim()
        .parse()
        .map_err(|_| invalid("number", "number must be a ticket's number"))?;
    let label = label.trim().parse().map_err(|_| {
        invalid(
            "label_id",
            "label_id must be a label's id (GET /api/v1/labels)",
        )
    })?;
    Ok((number, label))
}

/// Put a label on a ticket
///
/// Puts the label on the ticket (staff), with a private entry on its
/// timeline. Already there: nothing changes, and the answer is the same.
#[utoipa::path(
    put,
    path = "/api/v1/tickets/{number}/labels/{label_id}",
    operation_id = "add_ticket_label",
    tag = "tickets",
    params(
        ("number" = i64, Path, description = "The ticket's number"),
        ("label_id" = i64, Path, description = "The label's id (`GET /api/v1/labels`)"),
    ),
    responses(
        (status = 200, description = "The ticket as it is now, with its labels", body = ApiTicket),
        (status = 401, description = "No valid session or token", body = ErrorBody),
        (status = 403, description = "A read-only token, or a session without its CSRF token", body = ErrorBody),
        (status = 404, description = "No such ticket, or the caller is not staff", body = ErrorBody),
        (status = 422, description = "No such label, or a number or id that is not one (the field names it)", body = ErrorBody),
        (status = 429, description = "Too many requests with this token", body = ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds to wait"))),
    ),
    security(("token" = ["write", "staff"]), ("session" = ["staff"], "csrf" = [])),
)]
async fn add(
    State(state): State<AppState>,
    caller: ApiUser,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Json<ApiTicket>, ApiError> {
    set(&state, &caller, path, true).await
}

/// Take a label off a ticket
///
/// Takes the label off the ticket (staff), with a private entry on its
/// timeline. Not there: nothing changes, and the answer is the same.
#[utoipa::path(
    delete,
    path = "/api/v1/tickets/{number}/labels/{label_id}",
    operation_id = "remove_ticket_label",
    tag = "tickets",
    params(
        ("number" = i64, Path, description = "The ticket's number"),
        ("label_id" = i64, Path, description = "The label's id (`GET /api/v1/labels`)"),
    ),
    responses(
        (status = 200, description = "The ticket as it is now, with its labels", body = ApiTicket),
        (status = 401, description = "No valid session or token", body = ErrorBody),
        (status = 403, description = "A read-only token, or a session without its CSRF token", body = ErrorBody),
        (status = 404, description = "No such ticket, or the caller is not staff", body = ErrorBody),
        (status = 422, description = "No such label, or a number or id that is not one (the field names it)", body = ErrorBody),
        (status = 429, description = "Too many requests with this token", body = ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds to wait"))),
    ),
    security(("token" = ["write", "staff"]), ("session" = ["staff"], "csrf" = [])),
)]
async fn remove(
    State(state): State<AppState>,
    caller: ApiUser,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Json<ApiTicket>, ApiError> {
    set(&state, &caller, path, false).await
}

async fn set(
    state: &AppState,
    caller: &ApiUser,
    path: Result<Path<(String, String)>, PathRejection>,
    on: bool,
) -> Result<Json<ApiTicket>, ApiError> {
    // A customer is told "not found" before anything of the path is read,
    // as on every staff route.
    if !caller.user.role.is_staff() {
        return Err(ApiError(crate::domain::DomainError::NotFound));
    }
    let (number, label) = path_of(path)?;
    let (ticket, _) = labels::set_on_ticket(state.store(), &caller.user, number, label, on).await?;
    Ok(Json(ApiTicket::new(ticket, true)))
}
