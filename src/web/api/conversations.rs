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

use crate::domain::chat::Audience;
use crate::domain::{DomainError, invalid};
use crate::model::{ConversationId, UserId};
use crate::protocol::{ConversationFrame, ServerFrame};
use crate::web::AppState;
use crate::web::error::ApiError;
use crate::web::session::ApiUser;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/conversations/{id}", get(show))
        .route("/api/v1/conversations/{id}/messages", post(write))
        .route("/api/v1/conversations/{id}/resolve", post(resolve))
        .route("/api/v1/conversations/{id}/transfer", post(transfer))
}

/// The most messages one page holds.
const PAGE: i64 = 200;

#[derive(Deserialize, Default)]
struct PageQuery {
    #[serde(default)]
    after_seq: Option<i64>,
    #[serde(default)]
    limit: Option<i64>,
}

#[derive(Serialize)]
struct ApiConversation {
    conversation: ConversationFrame,
    /// Message frames as the console gets them, oldest first.
    messages: Vec<ServerFrame>,
    /// Whether later messages remain (ask with `after_seq`).
    more: bool,
}

fn id_of(raw: &str) -> Result<ConversationId, ApiError> {
    raw.parse::<i64>()
        .map(ConversationId)
        .map_err(|_| ApiError(DomainError::NotFound))
}

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
            .filter_map(|m| chat.message_frame(m, Audience::Staff))
            .collect(),
        more,
    }))
}

#[derive(Deserialize)]
struct Message {
    body: String,
    #[serde(default)]
    private: bool,
    #[serde(default)]
    client_msg_id: Option<String>,
    #[serde(default)]
    attachment_id: Option<String>,
}

#[derive(Serialize)]
struct Written {
    id: String,
    seq: i64,
    /// The message was written before (the same `client_msg_id`).
    duplicate: bool,
}

async fn write(
    State(state): State<AppState>,
    ApiUser { user, .. }: ApiUser,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Json<Message>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let id = id_of(&id)?;
    let Json(message) = body.map_err(|e| {
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

async fn resolve(
    State(state): State<AppState>,
    ApiUser { user, .. }: ApiUser,
    Path(id): Path<String>,
) -> Result<Json<ConversationFrame>, ApiError> {
    let chat = state.chat();
    let c = chat.resolve(&user, id_of(&id)?).await?;
    Ok(Json(chat.conversation_frame(&c, Audience::Staff)))
}

#[derive(Deserialize)]
struct Transfer {
    agent_id: i64,
}

async fn transfer(
    State(state): State<AppState>,
    ApiUser { user, .. }: ApiUser,
    Path(id): Path<String>,
    body: Result<Json<Transfer>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<ConversationFrame>, ApiError> {
    let Json(to) = body.map_err(|_| {
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
