//! The API's contacts, for staff: list and search them (a page at a time),
//! read one, correct their details and attributes, and read their
//! conversations. The rules are `domain::contacts`'.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::domain::chat::Audience;
use crate::domain::contacts::{self, ContactChange};
use crate::domain::shapes::ApiContact;
use crate::domain::{DomainError, invalid};
use crate::model::{ConversationId, VisitorId};
use crate::store::ContactFilter;
use crate::web::AppState;
use crate::web::error::ApiError;
use crate::web::session::ApiUser;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/contacts", get(list))
        .route("/api/v1/contacts/{id}", get(show).patch(update))
        .route("/api/v1/contacts/{id}/conversations", get(conversations))
}

const PAGE: i64 = 50;
const MAX_PAGE: i64 = 100;

#[derive(Deserialize, Serialize, Default)]
struct ListQuery {
    #[serde(skip_serializing_if = "Option::is_none")]
    q: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    site: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    limit: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cursor: Option<String>,
}

fn given(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

fn limit_of(limit: &Option<String>) -> Result<i64, DomainError> {
    match given(limit) {
        None => Ok(PAGE),
        Some(l) => l
            .parse()
            .ok()
            .filter(|l| (1..=MAX_PAGE).contains(l))
            .ok_or_else(|| invalid("limit", format!("limit must be 1 to {MAX_PAGE}"))),
    }
}

fn id_field(field: &'static str, text: &str) -> Result<i64, DomainError> {
    text.parse()
        .map_err(|_| invalid(field, format!("{field} must be one the API answered with")))
}

/// A contact's id from the path; anything else is simply not found.
fn contact_id(raw: &str) -> Result<VisitorId, ApiError> {
    raw.parse::<i64>()
        .map(VisitorId)
        .map_err(|_| ApiError(DomainError::NotFound))
}

/// `answer` with `Link: <path?…cursor=…>; rel="next"` when a page follows.
fn paged<T: Serialize>(answer: Vec<T>, next: Option<String>) -> Response {
    let mut response = Json(answer).into_response();
    if let Some(value) = next.and_then(|n| HeaderValue::from_str(&n).ok()) {
        response.headers_mut().insert(header::LINK, value);
    }
    response
}

fn next_link(path: &str, query: &impl Serialize) -> String {
    format!(
        "<{path}?{}>; rel=\"next\"",
        serde_urlencoded::to_string(query).unwrap_or_default()
    )
}

/// Contacts who said who they are, newest first; `q` searches names and
/// emails.
async fn list(
    State(state): State<AppState>,
    ApiUser { user, .. }: ApiUser,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(mut query) =
        query.map_err(|e| invalid("query", format!("unreadable query: {}", e.body_text())))?;
    let limit = limit_of(&query.limit)?;
    let filter = ContactFilter {
        query: given(&query.q).map(str::to_string),
        site: given(&query.site)
            .map(|s| id_field("site", s).map(crate::model::SiteId))
            .transpose()?,
        before: given(&query.cursor)
            .map(|c| id_field("cursor", c).map(VisitorId))
            .transpose()?,
        limit: limit + 1,
    };
    let mut found = contacts::list(state.store(), &user, filter).await?;
    let next = (found.len() as i64 > limit).then(|| {
        query.cursor = Some(found[limit as usize - 1].id.0.to_string());
        next_link("/api/v1/contacts", &query)
    });
    found.truncate(limit as usize);
    Ok(paged(
        found.into_iter().map(ApiContact::new).collect(),
        next,
    ))
}

async fn show(
    State(state): State<AppState>,
    ApiUser { user, .. }: ApiUser,
    Path(id): Path<String>,
) -> Result<Json<ApiContact>, ApiError> {
    let contact = contacts::find(state.store(), &user, contact_id(&id)?).await?;
    Ok(Json(ApiContact::new(contact)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Change {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    attributes: Option<Map<String, Value>>,
}

async fn update(
    State(state): State<AppState>,
    ApiUser { user, .. }: ApiUser,
    Path(id): Path<String>,
    body: Result<Json<Change>, JsonRejection>,
) -> Result<Json<ApiContact>, ApiError> {
    let id = contact_id(&id)?;
    let Json(change) = body.map_err(|e| {
        invalid(
            "body",
            format!(
                "expected {{\"name\"?, \"email\"?, \"attributes\"?: {{\"key\": value or null}}}}: {}",
                e.body_text()
            ),
        )
    })?;
    let change = ContactChange {
        name: change.name,
        email: change.email,
        attributes: change.attributes,
    };
    let contact = contacts::update(state.store(), &user, id, change).await?;
    Ok(Json(ApiContact::new(contact)))
}

#[derive(Deserialize, Serialize, Default)]
struct PageQuery {
    #[serde(skip_serializing_if = "Option::is_none")]
    limit: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cursor: Option<String>,
}

/// The contact's conversations, newest first, as the console sees them.
async fn conversations(
    State(state): State<AppState>,
    ApiUser { user, .. }: ApiUser,
    Path(id): Path<String>,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let id = contact_id(&id)?;
    let Query(mut query) =
        query.map_err(|e| invalid("query", format!("unreadable query: {}", e.body_text())))?;
    let limit = limit_of(&query.limit)?;
    let before = given(&query.cursor)
        .map(|c| id_field("cursor", c).map(ConversationId))
        .transpose()?;
    let mut found = contacts::conversations(state.store(), &user, id, before, limit + 1).await?;
    let next = (found.len() as i64 > limit).then(|| {
        query.cursor = Some(found[limit as usize - 1].id.0.to_string());
        next_link(&format!("/api/v1/contacts/{}/conversations", id.0), &query)
    });
    found.truncate(limit as usize);
    let chat = state.chat();
    Ok(paged(
        found
            .iter()
            .map(|c| chat.conversation_frame(c, Audience::Staff))
            .collect(),
        next,
    ))
}
