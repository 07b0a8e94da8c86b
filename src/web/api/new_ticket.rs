//! `POST /api/v1/tickets`: a customer raises a ticket for themselves, as on
//! the portal; staff (an integration) open one for a customer named by
//! email. An `Idempotency-Key` makes a retried create one ticket.

use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;

use super::tickets::priority_field;
use crate::domain::shapes::ApiTicket;
use crate::domain::{DomainError, invalid, tickets};
use crate::model::Priority;
use crate::web::AppState;
use crate::web::error::ApiError;
use crate::web::session::ApiUser;

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/tickets", post(create))
}

#[derive(Deserialize)]
struct NewTicket {
    subject: String,
    description: String,
    #[serde(default)]
    priority: Option<String>,
    /// Staff only: whom the ticket is for.
    #[serde(default)]
    customer: Option<Customer>,
}

#[derive(Deserialize)]
struct Customer {
    email: String,
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

async fn create(
    State(state): State<AppState>,
    caller: ApiUser,
    headers: HeaderMap,
    body: Result<Json<NewTicket>, JsonRejection>,
) -> Response {
    let new = match body {
        Ok(Json(new)) => new,
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
