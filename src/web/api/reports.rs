//! `GET /api/v1/reports?days=7|30|90`: the admins' report figures as JSON,
//! the same numbers `/admin/reports` shows (for a dashboard or a BI tool).
//! Durations are milliseconds; a figure with nothing to measure is `null`.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, OpenApi, ToSchema};

use crate::domain::invalid;
use crate::domain::reports::{self, Period, Report, Satisfaction, Spread};
use crate::store::now_ms;
use crate::web::AppState;
use crate::web::error::{ApiError, ErrorBody};
use crate::web::session::ApiUser;

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/reports", get(report))
}

/// This file's routes in the OpenAPI document (`super::openapi`).
#[derive(OpenApi)]
#[openapi(paths(report))]
pub(super) struct Doc;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ReportQuery {
    /// The last 7, 30 or 90 days (7 when missing).
    #[param(value_type = Option<i64>)]
    #[serde(default)]
    days: Option<String>,
}

/// The middle and the 90th percentile of some durations.
#[derive(Serialize, ToSchema)]
#[schema(as = Durations)]
struct ApiSpread {
    median_ms: i64,
    p90_ms: i64,
    count: usize,
}

/// Ratings of 1 to 5 stars.
#[derive(Serialize, ToSchema)]
#[schema(as = Satisfaction)]
struct ApiSatisfaction {
    ratings: usize,
    average: f64,
    satisfied_percent: f64,
}

fn spread(s: Option<Spread>) -> Option<ApiSpread> {
    s.map(|s| ApiSpread {
        median_ms: s.median,
        p90_ms: s.p90,
        count: s.count,
    })
}

fn satisfaction(s: Option<Satisfaction>) -> Option<ApiSatisfaction> {
    s.map(|s| ApiSatisfaction {
        ratings: s.ratings,
        average: s.average,
        satisfied_percent: s.satisfied_percent,
    })
}

/// One agent's or admin's figures (tickets by who has them now).
#[derive(Serialize, ToSchema)]
#[schema(as = PersonFigures)]
struct ApiPersonFigures {
    name: String,
    email: String,
    tickets_resolved: usize,
    first_response: Option<ApiSpread>,
    satisfaction: Option<ApiSatisfaction>,
}

/// One site's figures (by the site each conversation came from).
#[derive(Serialize, ToSchema)]
#[schema(as = SiteFigures)]
struct ApiSiteFigures {
    id: i64,
    name: String,
    archived: bool,
    conversations: i64,
    bot_only: i64,
    tickets_opened: i64,
    tickets_resolved: usize,
    first_response: Option<ApiSpread>,
    satisfaction: Option<ApiSatisfaction>,
}

/// The team's figures over the period.
#[derive(Serialize, ToSchema)]
#[schema(as = Report)]
struct ApiReport {
    days: i64,
    /// The period's end (now), in milliseconds since the epoch.
    until: i64,
    conversations: i64,
    bot_only: i64,
    tickets_opened: i64,
    tickets_resolved: usize,
    awaiting_first_response: i64,
    first_response: Option<ApiSpread>,
    resolution: Option<ApiSpread>,
    satisfaction: Option<ApiSatisfaction>,
    people: Vec<ApiPersonFigures>,
    sites: Vec<ApiSiteFigures>,
}

impl ApiReport {
    fn new(report: Report, until: i64) -> ApiReport {
        ApiReport {
            days: report.period.days(),
            until,
            conversations: report.conversations,
            bot_only: report.bot_only,
            tickets_opened: report.tickets_opened,
            tickets_resolved: report.tickets_resolved,
            awaiting_first_response: report.awaiting_first_response,
            first_response: spread(report.first_response),
            resolution: spread(report.resolution),
            satisfaction: satisfaction(report.satisfaction),
            people: report
                .people
                .into_iter()
                .map(|p| ApiPersonFigures {
                    name: p.name,
                    email: p.email,
                    tickets_resolved: p.resolved,
                    first_response: spread(p.first_response),
                    satisfaction: satisfaction(p.satisfaction),
                })
                .collect(),
            sites: report
                .sites
                .into_iter()
                .map(|s| ApiSiteFigures {
                    id: s.id.0,
                    name: s.name,
                    archived: s.archived,
                    conversations: s.conversations,
                    bot_only: s.bot_only,
                    tickets_opened: s.tickets_opened,
                    tickets_resolved: s.tickets_resolved,
                    first_response: spread(s.first_response),
                    satisfaction: satisfaction(s.satisfaction),
                })
                .collect(),
        }
    }
}

/// Read the report
///
/// The figures of `/admin/reports` (admins only: anyone else gets 404, as
/// for the page): chats the bot answered alone, tickets opened and
/// resolved, first response and resolution times, satisfaction, per
/// person and per site.
#[utoipa::path(
    get,
    path = "/api/v1/reports",
    operation_id = "read_report",
    tag = "reports",
    params(ReportQuery),
    responses(
        (status = 200, description = "The figures", body = ApiReport),
        (status = 401, description = "No valid session or token", body = ErrorBody),
        (status = 404, description = "The caller is not an admin", body = ErrorBody),
        (status = 422, description = "`days` is not 7, 30 or 90", body = ErrorBody),
        (status = 429, description = "Too many requests with this token", body = ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds to wait"))),
    ),
    security(("token" = ["read", "admins"]), ("session" = ["admins"])),
)]
async fn report(
    State(state): State<AppState>,
    ApiUser { user, .. }: ApiUser,
    query: Result<Query<ReportQuery>, QueryRejection>,
) -> Result<Json<ApiReport>, ApiError> {
    let Query(query) =
        query.map_err(|e| invalid("query", format!("unreadable query: {}", e.body_text())))?;
    let period = Period::parse(query.days.as_deref())?;
    let until = now_ms();
    let report = reports::report(state.store(), &user, period, until).await?;
    Ok(Json(ApiReport::new(report, until)))
}
