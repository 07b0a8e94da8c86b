//! The JSON API's directory, for staff: the agents with their presence and
//! load, and the sites. Customers get 404, as for every staff route.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use utoipa::{OpenApi, ToSchema};

use crate::domain::DomainError;
use crate::web::AppState;
use crate::web::error::{ApiError, ErrorBody};
use crate::web::session::ApiUser;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/agents", get(agents))
        .route("/api/v1/sites", get(sites))
}

/// This file's routes in the OpenAPI document (`super::openapi`).
#[derive(OpenApi)]
#[openapi(paths(agents, sites))]
pub(super) struct Doc;

#[derive(Serialize, ToSchema)]
#[schema(as = Agent)]
struct ApiAgent {
    id: i64,
    name: String,
    email: String,
    role: crate::model::Role,
    /// `online`, `away` or `offline`.
    #[schema(value_type = String, pattern = "^(online|away|offline)$")]
    presence: &'static str,
    /// Live chats now, and how many they may hold at once.
    live_chats: i64,
    chats_at_once: i64,
}

/// List the agents
///
/// Every agent and admin with their presence and load (staff).
#[utoipa::path(
    get,
    path = "/api/v1/agents",
    operation_id = "list_agents",
    tag = "directory",
    responses(
        (status = 200, description = "The agents and admins", body = Vec<ApiAgent>),
        (status = 401, description = "No valid session or token", body = ErrorBody),
        (status = 404, description = "The caller is not staff", body = ErrorBody),
        (status = 429, description = "Too many requests with this token", body = ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds to wait"))),
    ),
    security(("token" = ["read", "staff"]), ("session" = ["staff"])),
)]
async fn agents(
    State(state): State<AppState>,
    ApiUser { user, .. }: ApiUser,
) -> Result<Json<Vec<ApiAgent>>, ApiError> {
    let staff = state.chat().staff_presence(&user).await?;
    Ok(Json(
        staff
            .into_iter()
            .map(|(u, presence, live_chats, chats_at_once)| ApiAgent {
                id: u.id.0,
                name: u.name,
                email: u.email,
                role: u.role,
                presence,
                live_chats,
                chats_at_once,
            })
            .collect(),
    ))
}

#[derive(Serialize, ToSchema)]
#[schema(as = Site)]
struct ApiSite {
    id: i64,
    name: String,
    key: String,
    allowed_origins: Vec<String>,
    archived: bool,
}

/// List the sites
///
/// The sites the widget runs on, archived ones too (staff).
#[utoipa::path(
    get,
    path = "/api/v1/sites",
    operation_id = "list_sites",
    tag = "directory",
    responses(
        (status = 200, description = "The sites", body = Vec<ApiSite>),
        (status = 401, description = "No valid session or token", body = ErrorBody),
        (status = 404, description = "The caller is not staff", body = ErrorBody),
        (status = 429, description = "Too many requests with this token", body = ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds to wait"))),
    ),
    security(("token" = ["read", "staff"]), ("session" = ["staff"])),
)]
async fn sites(
    State(state): State<AppState>,
    ApiUser { user, .. }: ApiUser,
) -> Result<Json<Vec<ApiSite>>, ApiError> {
    if !user.role.is_staff() {
        return Err(ApiError(DomainError::NotFound));
    }
    let sites = state.store().sites().await.map_err(DomainError::from)?;
    Ok(Json(
        sites
            .into_iter()
            .map(|s| ApiSite {
                archived: s.is_archived(),
                id: s.id.0,
                name: s.name,
                key: s.key,
                allowed_origins: s.allowed_origins,
            })
            .collect(),
    ))
}
