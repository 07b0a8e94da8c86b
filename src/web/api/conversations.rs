//! The JSON API's live conversations, for staff: read one with its
//! messages (a page after a `seq`), write in it as an agent, resolve it,
//! transfer it, by the same domain rules as the console's socket. A write
//! carries `client_msg_id` (or an `Idempotency-Key`, used as it): the
//! chat's own retry rule then makes a retried message one message.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, OpenApi, ToSchema};

use super::body::{Body, Unreadable};
use crate::domain::chat::Audience;
use crate::domain::{DomainError, invalid};
use crate::model::{ConversationId, UserId};
use crate::protocol::{ConversationFrame, MessageFrame, ServerFrame};
use crate::web::AppState;
use crate::web::error::{ApiError, ErrorBody};
use crate::web::session::ApiUser;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/conversations/{id}", get(show))
        .route("/api/v1/conversations/{id}/messages", post(write))
        .route("/api/v1/conversations/{id}/resolve", post(resolve))
        .route("/api/v1/conversations/{id}/transfer", post(transfer))
}

/// This file's routes in the OpenAPI document (`super::openapi`).
#[derive(OpenApi)]
#[openapi(paths(show, write, resolve, transfer))]
pub(super) struct Doc;

/// The most messages one page holds.
const PAGE: i64 = 200;

#[derive(Deserialize, Default, IntoParams)]
#[into_params(parameter_in = Query)]
struct PageQuery {
    /// Only messages after this `seq` (0, or missing: from the first).
    #[serde(default)]
    after_seq: Option<i64>,
    /// At most this many (1 to 200; 200 when missing).
    #[serde(default)]
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
}

#[derive(Serialize, ToSchema)]
#[schema(as = Conversation)]
struct ApiConversation {
    conversation: ConversationFrame,
    /// Message frames as the console gets them, oldest first.
    messages: Vec<Frame>,
    /// Whether later messages remain (ask with `after_seq`).
    more: bool,
}

/// A message as the console's socket frames it (`"type": "message"`).
#[derive(Serialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
#[schema(as = MessageFrameTagged)]
enum Frame {
    Message(MessageFrame),
}

fn id_of(raw: &str) -> Result<ConversationId, ApiError> {
    raw.parse::<i64>()
        .map(ConversationId)
        .map_err(|_| ApiError(DomainError::NotFound))
}

/// Read a conversation
///
/// The conversation (as the console's `conversation` frame) and a page of
/// its messages after `after_seq`, private notes included (staff).
#[utoipa::path(
    get,
    path = "/api/v1/conversations/{id}",
    operation_id = "show_conversation",
    tag = "conversations",
    params(("id" = String, Path, description = "The conversation's id"), PageQuery),
    responses(
        (status = 200, description = "The conversation and a page of its messages", body = ApiConversation),
        (status = 401, description = "No valid session or token", body = ErrorBody),
        (status = 404, description = "No such conversation, or the caller is not staff", body = ErrorBody),
        (status = 422, description = "A `limit` outside 1 to 200", body = ErrorBody),
        (status = 429, description = "Too many requests with this token", body = ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds to wait"))),
    ),
    security(("token" = ["read", "staff"]), ("session" = ["staff"])),
)]
async fn show(
    State(state): State<AppState>,
    ApiUser { user, .. }: ApiUser,
    Path(id): Path<String>,
    Query(page): Query<PageQuery>,
) -> Result<Json<ApiConversation>, ApiError> {
    let chat = state.chat();
    let c = chat.staff_conversation(&user, id_of(&id)?).await?;
    let limit = page.limit.unwrap_or(PAGE);
    if !(1..=PAGE).contains(&limit) {
        return Err(ApiError(invalid(
            "limit",
            format!("limit must be 1 to {PAGE}"),
        )));
    }
    let mut messages = state
        .store()
        .messages_after(c.id, page.after_seq.unwrap_or(0).max(0), true, limit + 1)
        .await
        .map_err(DomainError::from)?;
    let more = messages.len() as i64 > limit;
    messages.truncate(limit as usize);
    Ok(Json(ApiConversation {
        conversation: chat.conversation_frame(&c, Audience::Staff),
        messages: messages
            .iter()
            .filter_map(|m| match chat.message_frame(m, Audience::Staff) {
                Some(ServerFrame::Message(frame)) => Some(Frame::Message(frame)),
                _ => None,
            })
            .collect(),
        more,
    }))
}

#[derive(Deserialize, ToSchema)]
#[schema(as = NewMessage, example = json!({"body": "Hello, how can I help?"}))]
struct Message {
    /// The text (up to 8,000 characters).
    body: String,
    /// A private note, for staff only.
    #[serde(default)]
    private: bool,
    /// The caller's id for the message: the same id again is the same
    /// message (`Idempotency-Key` serves when it is missing).
    #[serde(default)]
    client_msg_id: Option<String>,
    /// A file uploaded to this conversation, sent with it.
    #[serde(default)]
    attachment_id: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[schema(as = MessageWritten)]
struct Written {
    id: String,
    seq: i64,
    /// The message was written before (the same `client_msg_id`).
    duplicate: bool,
}

/// Write in a conversation
///
/// A message (or private note) as the calling agent, as the console writes
/// it: a waiting conversation is claimed; someone else's is refused.
#[utoipa::path(
    post,
    path = "/api/v1/conversations/{id}/messages",
    operation_id = "write_message",
    tag = "conversations",
    params(
        ("id" = String, Path, description = "The conversation's id"),
        ("Idempotency-Key" = Option<String>, Header,
            description = "Taken as `client_msg_id` when the body has none"),
    ),
    request_body = Message,
    responses(
        (status = 201, description = "Written", body = Written),
        (status = 200, description = "The same `client_msg_id` again: the message written before", body = Written),
        (status = 401, description = "No valid session or token", body = ErrorBody),
        (status = 403, description = "A read-only token, or a session without its CSRF token", body = ErrorBody),
        (status = 404, description = "No such conversation, or the caller is not staff", body = ErrorBody),
        (status = 409, description = "Another agent has the conversation", body = ErrorBody),
        (status = 413, description = "The body is longer than 8,000 characters", body = ErrorBody),
        (status = 422, description = "An empty body or an unknown attachment (the field names it)", body = ErrorBody),
        (status = 429, description = "Too many requests with this token", body = ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds to wait"))),
    ),
    security(("token" = ["write", "staff"]), ("session" = ["staff"], "csrf" = [])),
)]
async fn write(
    State(state): State<AppState>,
    ApiUser { user, .. }: ApiUser,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Body<Message>, Unreadable>,
) -> Result<Response, ApiError> {
    let id = id_of(&id)?;
    let Body(message) = body.map_err(|e| {
        ApiError(invalid(
            "body",
            format!(
                "expected {{\"body\": \"…\", \"private\"?: false, \"client_msg_id\"?: \"…\"}}: {}",
                e.body_text()
            ),
        ))
    })?;
    let key = headers
        .get("idempotency-key")
        .and_then(|k| k.to_str().ok())
        .map(str::to_string);
    let client_msg_id = message
        .client_msg_id
        .or(key)
        .unwrap_or_else(|| format!("api-{}", crate::auth::random_token(12)));
    let sent = state
        .chat()
        .send_as_agent(
            &user,
            id,
            &client_msg_id,
            &message.body,
            message.private,
            message.attachment_id.as_deref(),
        )
        .await?;
    let status = if sent.duplicate {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((
        status,
        Json(Written {
            id: sent.message.id.to_string(),
            seq: sent.message.seq,
            duplicate: sent.duplicate,
        }),
    )
        .into_response())
}

/// Resolve a conversation
///
/// By the console's rules; the customer is asked for a rating.
#[utoipa::path(
    post,
    path = "/api/v1/conversations/{id}/resolve",
    operation_id = "resolve_conversation",
    tag = "conversations",
    params(("id" = String, Path, description = "The conversation's id")),
    responses(
        (status = 200, description = "Resolved", body = ConversationFrame),
        (status = 401, description = "No valid session or token", body = ErrorBody),
        (status = 403, description = "A read-only token, or a session without its CSRF token", body = ErrorBody),
        (status = 404, description = "No such conversation, or the caller is not staff", body = ErrorBody),
        (status = 409, description = "Another agent has the conversation", body = ErrorBody),
        (status = 429, description = "Too many requests with this token", body = ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds to wait"))),
    ),
    security(("token" = ["write", "staff"]), ("session" = ["staff"], "csrf" = [])),
)]
async fn resolve(
    State(state): State<AppState>,
    ApiUser { user, .. }: ApiUser,
    Path(id): Path<String>,
) -> Result<Json<ConversationFrame>, ApiError> {
    let chat = state.chat();
    let c = chat.resolve(&user, id_of(&id)?).await?;
    Ok(Json(chat.conversation_frame(&c, Audience::Staff)))
}

#[derive(Deserialize, ToSchema)]
#[schema(as = TransferTo, example = json!({"agent_id": 2}))]
struct Transfer {
    /// The agent or admin to hand it to.
    agent_id: i64,
}

/// Transfer a conversation
///
/// Hand it to another agent, by the console's rules.
#[utoipa::path(
    post,
    path = "/api/v1/conversations/{id}/transfer",
    operation_id = "transfer_conversation",
    tag = "conversations",
    params(("id" = String, Path, description = "The conversation's id")),
    request_body = Transfer,
    responses(
        (status = 200, description = "Handed over", body = ConversationFrame),
        (status = 401, description = "No valid session or token", body = ErrorBody),
        (status = 403, description = "A read-only token, or a session without its CSRF token", body = ErrorBody),
        (status = 404, description = "No such conversation or agent, or the caller is not staff", body = ErrorBody),
        (status = 409, description = "Another agent has the conversation, or it cannot take one more", body = ErrorBody),
        (status = 422, description = "No `agent_id`", body = ErrorBody),
        (status = 429, description = "Too many requests with this token", body = ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds to wait"))),
    ),
    security(("token" = ["write", "staff"]), ("session" = ["staff"], "csrf" = [])),
)]
async fn transfer(
    State(state): State<AppState>,
    ApiUser { user, .. }: ApiUser,
    Path(id): Path<String>,
    body: Result<Body<Transfer>, Unreadable>,
) -> Result<Json<ConversationFrame>, ApiError> {
    let Body(to) = body.map_err(|_| {
        ApiError(invalid(
            "agent_id",
            "expected {\"agent_id\": <an agent's id>}",
        ))
    })?;
    let chat = state.chat();
    let c = chat
        .transfer(&user, id_of(&id)?, UserId(to.agent_id))
        .await?;
    Ok(Json(chat.conversation_frame(&c, Audience::Staff)))
}
