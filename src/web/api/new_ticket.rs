//! `POST /api/v1/tickets`: a customer raises a ticket for themselves, as on
//! the portal; staff (an integration) open one for a customer named by
//! email. An `Idempotency-Key` makes a retried create one ticket.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use utoipa::{OpenApi, ToSchema};

use super::body::{Body, Unreadable};
use super::tickets::priority_field;
use crate::domain::shapes::ApiTicket;
use crate::domain::{DomainError, invalid, tickets};
use crate::model::Priority;
use crate::web::AppState;
use crate::web::error::{ApiError, ErrorBody};
use crate::web::session::ApiUser;

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/tickets", post(create))
}

/// This file's routes in the OpenAPI document (`super::openapi`).
#[derive(OpenApi)]
#[openapi(paths(create))]
pub(super) struct Doc;

#[derive(Deserialize, ToSchema)]
#[schema(example = json!({
    "subject": "Invoice 7 is wrong",
    "description": "I was charged twice.",
    "priority": "high",
    "customer": {"email": "mia@example.com", "name": "Mia"}
}))]
struct NewTicket {
    /// A few words (up to 200 characters).
    subject: String,
    /// What it is about (up to 8,000 characters).
    description: String,
    /// `normal` when missing.
    #[serde(default)]
    #[schema(value_type = Option<Priority>)]
    priority: Option<String>,
    /// Whom the ticket is for: staff must say, a customer must not (theirs).
    #[serde(default)]
    customer: Option<Customer>,
}

/// The customer a ticket is opened for; an address new to Careline gets a
/// customer account (they set its password by "Forgot password").
#[derive(Deserialize, ToSchema)]
#[schema(as = TicketFor)]
struct Customer {
    email: String,
    /// Used when the address is new; their name otherwise stays.
    #[serde(default)]
    name: String,
}

async fn open(
    state: &AppState,
    caller: &ApiUser,
    new: &NewTicket,
) -> Result<ApiTicket, DomainError> {
    let priority = match new.priority.as_deref().map(str::trim) {
        None | Some("") => Priority::Normal,
        Some(p) => priority_field(p)?,
    };
    let written = (new.subject.as_str(), new.description.as_str());
    let user = &caller.user;
    let ticket = match (&new.customer, user.role.is_staff()) {
        (Some(c), _) => {
            tickets::raise_for(state.chat(), user, (&c.email, &c.name), written, priority).await?
        }
        (None, false) => tickets::raise(state.chat(), user, written.0, written.1, priority).await?,
        (None, true) => {
            return Err(invalid(
                "customer",
                "say whom the ticket is for: {\"customer\": {\"email\": \"…\", \"name\"?: \"…\"}}",
            ));
        }
    };
    Ok(ApiTicket::new(ticket, user.role.is_staff()))
}

/// Open a ticket
///
/// A customer raises a ticket for themselves (as on the portal); staff
/// open one for the customer named by `customer.email`. It waits in the
/// queue like an escalated chat.
#[utoipa::path(
    post,
    path = "/api/v1/tickets",
    operation_id = "create_ticket",
    tag = "tickets",
    params(
        ("Idempotency-Key" = Option<String>, Header,
            description = "1–255 visible characters (a UUID is usual): a retry with the same key answers the first request again (`Idempotent-Replayed: true`) rather than opening a second ticket"),
    ),
    request_body = NewTicket,
    responses(
        (status = 201, description = "Opened", body = ApiTicket),
        (status = 401, description = "No valid session or token", body = ErrorBody),
        (status = 403, description = "A read-only token, a session without its CSRF token, or a customer naming someone else", body = ErrorBody),
        (status = 409, description = "A request with this Idempotency-Key is still running", body = ErrorBody),
        (status = 413, description = "The request is larger than the server reads", body = ErrorBody),
        (status = 422, description = "A field is missing or wrong, or too long (the field names it: `subject`, `description`, `priority`, `customer`, `customer.email`)", body = ErrorBody),
        (status = 429, description = "Too many requests with this token", body = ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds to wait"))),
    ),
    security(("token" = ["write"]), ("session" = [], "csrf" = [])),
)]
async fn create(
    State(state): State<AppState>,
    caller: ApiUser,
    headers: HeaderMap,
    body: Result<Body<NewTicket>, Unreadable>,
) -> Response {
    let new = match body {
        Ok(Body(new)) => new,
        Err(e) => {
            return ApiError(invalid(
                "body",
                format!(
                    "expected {{\"subject\", \"description\", \"priority\"?, \"customer\"?: {{\"email\", \"name\"?}}}}: {}",
                    e.body_text()
                ),
            ))
            .into_response();
        }
    };
    let user = caller.user.clone();
    super::idempotency::once(&state, &user, &headers, "POST /api/v1/tickets", || async {
        match open(&state, &caller, &new).await {
            Ok(ticket) => (StatusCode::CREATED, Json(ticket)).into_response(),
            Err(e) => ApiError(e).into_response(),
        }
    })
    .await
}
