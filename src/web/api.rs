//! The JSON API (v1), for the portal's scripts and integrations. It uses
//! the same session cookie and the same authorization as the pages.

use axum::extract::{Path, Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;

use super::AppState;
use super::error::ApiError;
use super::session::ApiUser;
use crate::domain::tickets::{self, Ticket, TicketView};
use crate::domain::{Priority, TicketStatus, invalid};
use crate::store::TicketFilter;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/tickets", get(list))
        .route("/api/v1/tickets/{number}", get(show))
}

#[derive(Deserialize, Default)]
struct ListQuery {
    status: Option<String>,
    priority: Option<String>,
    q: Option<String>,
    limit: Option<i64>,
    offset: Option<i64>,
}

async fn list(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    Query(query): Query<ListQuery>,
) -> Result<Json<Vec<Ticket>>, ApiError> {
    let status = match query.status.as_deref() {
        None | Some("") => None,
        Some(s) => Some(TicketStatus::parse(s).ok_or_else(|| {
            invalid("status", "status must be open, pending, resolved or closed")
        })?),
    };
    let priority =
        match query.priority.as_deref() {
            None | Some("") => None,
            Some(p) => Some(Priority::parse(p).ok_or_else(|| {
                invalid("priority", "priority must be low, normal, high or urgent")
            })?),
        };
    let filter = TicketFilter {
        status,
        priority,
        query: query.q,
        limit: query.limit.unwrap_or(50),
        offset: query.offset.unwrap_or(0),
        ..TicketFilter::default()
    };
    Ok(Json(tickets::list(state.store(), &user, filter).await?))
}

async fn show(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    Path(number): Path<i64>,
) -> Result<Json<TicketView>, ApiError> {
    Ok(Json(tickets::view(state.store(), &user, number).await?))
}
