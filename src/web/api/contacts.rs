//! The API's contacts, for staff: list and search them (a page at a time),
//! read one, correct their details and attributes, read their
//! conversations, keep notes on them, and merge a duplicate into one. The
//! rules are `domain::contacts`' and `domain::contact_merge`'s.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, OpenApi, ToSchema};

use super::body::{Body, Unreadable};
use super::paging::{given, page_size, paged};
use crate::domain::chat::Audience;
use crate::domain::contact_merge;
use crate::domain::contacts::{self, ContactChange};
use crate::domain::shapes::{ApiContact, ApiContactMerge, ApiContactNote};
use crate::domain::{DomainError, invalid};
use crate::model::{ConversationId, VisitorId};
use crate::protocol::ConversationFrame;
use crate::store::ContactFilter;
use crate::web::AppState;
use crate::web::error::{ApiError, ErrorBody};
use crate::web::session::ApiUser;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/contacts", get(list))
        .route("/api/v1/contacts/{id}", get(show).patch(update))
        .route("/api/v1/contacts/{id}/conversations", get(conversations))
        .route("/api/v1/contacts/{id}/notes", get(notes).post(add_note))
        .route("/api/v1/contacts/{id}/merge", post(merge))
}

/// This file's routes in the OpenAPI document (`super::openapi`).
#[derive(OpenApi)]
#[openapi(paths(list, show, update, conversations, notes, add_note, merge))]
pub(super) struct Doc;

#[derive(Deserialize, Serialize, Default, IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// Words of the name or email.
    #[serde(skip_serializing_if = "Option::is_none")]
    q: Option<String>,
    /// A site's id: only contacts who came from it.
    #[param(value_type = Option<i64>)]
    #[serde(skip_serializing_if = "Option::is_none")]
    site: Option<String>,
    /// At most this many (1 to 100; 50 when missing).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100)]
    #[serde(skip_serializing_if = "Option::is_none")]
    limit: Option<String>,
    /// Where the previous page ended (from its `Link` header; opaque).
    #[serde(skip_serializing_if = "Option::is_none")]
    cursor: Option<String>,
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

/// List contacts
///
/// The contacts who said who they are (a name, an email or an account),
/// newest first, a page at a time (`Link: <…>; rel="next"`); `q` searches
/// names and emails.
#[utoipa::path(
    get,
    path = "/api/v1/contacts",
    operation_id = "list_contacts",
    tag = "contacts",
    params(ListQuery),
    responses(
        (status = 200, description = "The contacts, newest first", body = Vec<ApiContact>,
            headers(("Link" = String, description = "`<path?…&cursor=…>; rel=\"next\"` when another page follows"))),
        (status = 401, description = "No valid session or token", body = ErrorBody),
        (status = 404, description = "The caller is not staff", body = ErrorBody),
        (status = 422, description = "A limit, site or cursor is not one the API knows (the field names it)", body = ErrorBody),
        (status = 429, description = "Too many requests with this token", body = ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds to wait"))),
    ),
    security(("token" = ["read", "staff"]), ("session" = ["staff"])),
)]
async fn list(
    State(state): State<AppState>,
    ApiUser { user, .. }: ApiUser,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(mut query) =
        query.map_err(|e| invalid("query", format!("unreadable query: {}", e.body_text())))?;
    let limit = page_size(&query.limit)?;
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
    let more = found.len() as i64 > limit;
    if more {
        query.cursor = Some(found[limit as usize - 1].id.0.to_string());
    }
    found.truncate(limit as usize);
    Ok(paged(
        found.into_iter().map(ApiContact::new).collect(),
        "/api/v1/contacts",
        more.then_some(&query),
    ))
}

/// Read a contact
#[utoipa::path(
    get,
    path = "/api/v1/contacts/{id}",
    operation_id = "show_contact",
    tag = "contacts",
    params(("id" = i64, Path, description = "The contact's id")),
    responses(
        (status = 200, description = "The contact", body = ApiContact),
        (status = 401, description = "No valid session or token", body = ErrorBody),
        (status = 404, description = "No such contact, or the caller is not staff", body = ErrorBody),
        (status = 429, description = "Too many requests with this token", body = ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds to wait"))),
    ),
    security(("token" = ["read", "staff"]), ("session" = ["staff"])),
)]
async fn show(
    State(state): State<AppState>,
    ApiUser { user, .. }: ApiUser,
    Path(id): Path<String>,
) -> Result<Json<ApiContact>, ApiError> {
    let contact = contacts::find(state.store(), &user, contact_id(&id)?).await?;
    Ok(Json(ApiContact::new(contact)))
}

/// What to change; a missing field stays as it is.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ContactChanges, example = json!({"name": "Grace Hopper", "attributes": {"plan": "pro", "trial": null}}))]
struct Change {
    #[serde(default)]
    name: Option<String>,
    /// A typed email only: an account's, or one the host site signed, is
    /// changed where it is proven. A new one is unverified.
    #[serde(default)]
    email: Option<String>,
    /// Merged key by key: `null` removes a key. At most 50 keys.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    attributes: Option<Map<String, Value>>,
}

/// Change a contact
///
/// Correct a contact's name or typed email, and set or remove attributes.
#[utoipa::path(
    patch,
    path = "/api/v1/contacts/{id}",
    operation_id = "update_contact",
    tag = "contacts",
    params(("id" = i64, Path, description = "The contact's id")),
    request_body = Change,
    responses(
        (status = 200, description = "The contact as it is now", body = ApiContact),
        (status = 401, description = "No valid session or token", body = ErrorBody),
        (status = 403, description = "A read-only token, or a session without its CSRF token", body = ErrorBody),
        (status = 404, description = "No such contact, or the caller is not staff", body = ErrorBody),
        (status = 422, description = "A value is not acceptable (the field names it: `name`, `email`, `attributes`, `body`)", body = ErrorBody),
        (status = 429, description = "Too many requests with this token", body = ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds to wait"))),
    ),
    security(("token" = ["write", "staff"]), ("session" = ["staff"], "csrf" = [])),
)]
async fn update(
    State(state): State<AppState>,
    ApiUser { user, .. }: ApiUser,
    Path(id): Path<String>,
    body: Result<Body<Change>, Unreadable>,
) -> Result<Json<ApiContact>, ApiError> {
    let id = contact_id(&id)?;
    let Body(change) = body.map_err(|e| {
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

#[derive(Deserialize, Serialize, Default, IntoParams)]
#[into_params(parameter_in = Query)]
struct PageQuery {
    /// At most this many (1 to 100; 50 when missing).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100)]
    #[serde(skip_serializing_if = "Option::is_none")]
    limit: Option<String>,
    /// Where the previous page ended (from its `Link` header; opaque).
    #[serde(skip_serializing_if = "Option::is_none")]
    cursor: Option<String>,
}

/// A contact's conversations
///
/// Their conversations, newest first, as the console sees them, a page at
/// a time (`Link: <…>; rel="next"`).
#[utoipa::path(
    get,
    path = "/api/v1/contacts/{id}/conversations",
    operation_id = "list_contact_conversations",
    tag = "contacts",
    params(("id" = i64, Path, description = "The contact's id"), PageQuery),
    responses(
        (status = 200, description = "Their conversations, newest first", body = Vec<ConversationFrame>,
            headers(("Link" = String, description = "`<path?…&cursor=…>; rel=\"next\"` when another page follows"))),
        (status = 401, description = "No valid session or token", body = ErrorBody),
        (status = 404, description = "No such contact, or the caller is not staff", body = ErrorBody),
        (status = 422, description = "A limit or cursor is not one the API knows (the field names it)", body = ErrorBody),
        (status = 429, description = "Too many requests with this token", body = ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds to wait"))),
    ),
    security(("token" = ["read", "staff"]), ("session" = ["staff"])),
)]
async fn conversations(
    State(state): State<AppState>,
    ApiUser { user, .. }: ApiUser,
    Path(id): Path<String>,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let id = contact_id(&id)?;
    let Query(mut query) =
        query.map_err(|e| invalid("query", format!("unreadable query: {}", e.body_text())))?;
    let limit = page_size(&query.limit)?;
    let before = given(&query.cursor)
        .map(|c| id_field("cursor", c).map(ConversationId))
        .transpose()?;
    let mut found = contacts::conversations(state.store(), &user, id, before, limit + 1).await?;
    let more = found.len() as i64 > limit;
    if more {
        query.cursor = Some(found[limit as usize - 1].id.0.to_string());
    }
    found.truncate(limit as usize);
    let chat = state.chat();
    Ok(paged(
        found
            .iter()
            .map(|c| chat.conversation_frame(c, Audience::Staff))
            .collect(),
        &format!("/api/v1/contacts/{}/conversations", id.0),
        more.then_some(&query),
    ))
}

/// Notes on a contact
///
/// What staff wrote on the person, newest first (at most 500).
#[utoipa::path(
    get,
    path = "/api/v1/contacts/{id}/notes",
    operation_id = "list_contact_notes",
    tag = "contacts",
    params(("id" = i64, Path, description = "The contact's id")),
    responses(
        (status = 200, description = "The notes, newest first", body = Vec<ApiContactNote>),
        (status = 401, description = "No valid session or token", body = ErrorBody),
        (status = 404, description = "No such contact, or the caller is not staff", body = ErrorBody),
        (status = 429, description = "Too many requests with this token", body = ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds to wait"))),
    ),
    security(("token" = ["read", "staff"]), ("session" = ["staff"])),
)]
async fn notes(
    State(state): State<AppState>,
    ApiUser { user, .. }: ApiUser,
    Path(id): Path<String>,
) -> Result<Json<Vec<ApiContactNote>>, ApiError> {
    let found = contacts::notes(state.store(), &user, contact_id(&id)?).await?;
    Ok(Json(found.into_iter().map(ApiContactNote::new).collect()))
}

/// A note on a contact.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = NewContactNote, example = json!({"body": "Prefers email to phone; on the enterprise plan since March."}))]
struct NewNote {
    /// 1 to 5000 characters; lines are kept.
    body: String,
}

/// Add a note on a contact
///
/// Staff's free text on the person, never shown to them. An
/// `Idempotency-Key` makes a retried request one note.
#[utoipa::path(
    post,
    path = "/api/v1/contacts/{id}/notes",
    operation_id = "add_contact_note",
    tag = "contacts",
    params(
        ("id" = i64, Path, description = "The contact's id"),
        ("Idempotency-Key" = Option<String>, Header,
            description = "Any unique text (a UUID): a retry with the same key gets the first answer instead of a second note"),
    ),
    request_body = NewNote,
    responses(
        (status = 201, description = "The note", body = ApiContactNote),
        (status = 401, description = "No valid session or token", body = ErrorBody),
        (status = 403, description = "A read-only token, or a session without its CSRF token", body = ErrorBody),
        (status = 404, description = "No such contact, or the caller is not staff", body = ErrorBody),
        (status = 409, description = "A request with this Idempotency-Key is still running", body = ErrorBody),
        (status = 422, description = "The note is empty or too long (`note`), or the body is not `{\"body\": text}` (`body`)", body = ErrorBody),
        (status = 429, description = "Too many requests with this token", body = ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds to wait"))),
    ),
    security(("token" = ["write", "staff"]), ("session" = ["staff"], "csrf" = [])),
)]
async fn add_note(
    State(state): State<AppState>,
    ApiUser { user, .. }: ApiUser,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Body<NewNote>, Unreadable>,
) -> Result<Response, ApiError> {
    let id = contact_id(&id)?;
    let Body(note) = body.map_err(|e| {
        invalid(
            "body",
            format!("expected {{\"body\": text}}: {}", e.body_text()),
        )
    })?;
    let request = format!("POST /api/v1/contacts/{}/notes", id.0);
    Ok(
        super::idempotency::once(&state, &user, &headers, &request, || async {
            match contacts::add_note(state.store(), &user, id, &note.body).await {
                Ok(note) => (StatusCode::CREATED, Json(ApiContactNote::new(note))).into_response(),
                Err(e) => ApiError(e).into_response(),
            }
        })
        .await,
    )
}

/// Which contact goes into this one.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ContactMergeRequest, example = json!({"from": 2}))]
struct MergeRequest {
    /// The id of the contact to merge into this one; it stops being a
    /// contact.
    from: i64,
}

/// Merge a contact into this one
///
/// The other contact's conversations, tickets, notes and attributes move
/// here (this contact's details and attributes win where both have one),
/// in one transaction; each moved ticket's timeline says so and who did
/// it. The other contact's id then answers 404, and its widget token ends.
/// Refused (422, field `from`) for the contact itself, a contact of
/// another site, and two contacts that are provably different people: each
/// with their own account, or with different user ids signed by the host
/// site.
#[utoipa::path(
    post,
    path = "/api/v1/contacts/{id}/merge",
    operation_id = "merge_contacts",
    tag = "contacts",
    params(("id" = i64, Path, description = "The id of the contact that stays")),
    request_body = MergeRequest,
    responses(
        (status = 200, description = "The merged contact and what moved to it", body = ApiContactMerge),
        (status = 401, description = "No valid session or token", body = ErrorBody),
        (status = 403, description = "A read-only token, or a session without its CSRF token", body = ErrorBody),
        (status = 404, description = "No such contact, or the caller is not staff", body = ErrorBody),
        (status = 409, description = "One of the contacts changed meanwhile; read them again and retry", body = ErrorBody),
        (status = 422, description = "These two may not be merged, and why (`from`), or the body is not `{\"from\": id}` (`body`)", body = ErrorBody),
        (status = 429, description = "Too many requests with this token", body = ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds to wait"))),
    ),
    security(("token" = ["write", "staff"]), ("session" = ["staff"], "csrf" = [])),
)]
async fn merge(
    State(state): State<AppState>,
    ApiUser { user, .. }: ApiUser,
    Path(id): Path<String>,
    body: Result<Body<MergeRequest>, Unreadable>,
) -> Result<Json<ApiContactMerge>, ApiError> {
    let id = contact_id(&id)?;
    let Body(request) = body.map_err(|e| {
        invalid(
            "body",
            format!("expected {{\"from\": id}}: {}", e.body_text()),
        )
    })?;
    let merged = contact_merge::merge(state.chat(), &user, id, VisitorId(request.from)).await?;
    Ok(Json(ApiContactMerge::new(merged)))
}
