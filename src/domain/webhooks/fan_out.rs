//! From the journal to deliveries: each waiting event becomes one delivery
//! per enabled endpoint that wants it, whose body is built here, once, from
//! the API's own shapes, and frozen: every retry sends the same bytes with
//! the same event id.

use serde_json::{Value, json};

use crate::domain::DomainError;
use crate::domain::chat::{Audience, Chat};
use crate::domain::shapes::{ApiContact, ApiMessage, ApiTicket};
use crate::model::{MessageId, VisitorId};
use crate::store::{JournalEvent, WebhookEndpoint};

/// Events claimed at a time.
const BATCH: i64 = 50;
/// How long a claimed event is this worker's: building its bodies takes a
/// few reads, so a worker that dies leaves it waiting for seconds only.
const LEASE_MS: i64 = 30_000;

/// The body of every delivery.
pub(super) fn envelope(id: i64, kind: &str, created_at: i64, data: Value) -> String {
    json!({ "id": id, "type": kind, "created_at": created_at, "data": data }).to_string()
}

/// One pass over the journal; returns how many events it took.
pub(super) async fn fan_out(chat: &Chat) -> Result<usize, DomainError> {
    let store = chat.store();
    let events = store.claim_webhook_events(BATCH, LEASE_MS).await?;
    if events.is_empty() {
        return Ok(0);
    }
    let endpoints: Vec<WebhookEndpoint> = store
        .webhook_endpoints()
        .await?
        .into_iter()
        .filter(|e| e.enabled)
        .collect();
    for event in &events {
        let private = event.refs["private"].as_i64() == Some(1);
        let subscribers: Vec<i64> = endpoints
            .iter()
            .filter(|e| e.events.contains(&event.kind) && (!private || e.include_private))
            .map(|e| e.id)
            .collect();
        let mut deliveries = Vec::new();
        if !subscribers.is_empty() {
            // Gone meanwhile (a visitor merged away): nothing to tell.
            if let Some(data) = data(chat, event).await? {
                let body = envelope(event.id, &event.kind, event.created_at, data);
                deliveries = subscribers
                    .into_iter()
                    .map(|id| (id, body.clone()))
                    .collect();
            }
        }
        store.record_fan_out(event, &deliveries).await?;
    }
    Ok(events.len())
}

/// The event's `data`: the API's shapes of what it is about, as staff see
/// them, with what the event changed (`changes`) where it says.
async fn data(chat: &Chat, event: &JournalEvent) -> Result<Option<Value>, DomainError> {
    let store = chat.store();
    let refs = &event.refs;
    if event.kind == "contact.created" {
        let id = VisitorId(refs["visitor_id"].as_i64().unwrap_or_default());
        // The API's own contact, as `GET /api/v1/contacts/{id}` answers.
        return Ok(store
            .contact(id)
            .await?
            .map(|c| json!({ "contact": ApiContact::new(c) })));
    }
    let Some(conversation_id) = event.conversation_id else {
        return Ok(None);
    };
    let Some(conversation) = store.conversation(conversation_id).await? else {
        return Ok(None);
    };
    let frame = serde_json::to_value(chat.conversation_frame(&conversation, Audience::Staff))
        .map_err(|e| DomainError::Internal(e.to_string()))?;
    let mut data = match event.kind.as_str() {
        "message.created" => {
            let id = MessageId(refs["message_id"].as_i64().unwrap_or_default());
            let Some(message) = store
                .message_by_id(id)
                .await?
                .and_then(|m| ApiMessage::new(m, true))
            else {
                return Ok(None);
            };
            json!({ "conversation": frame, "message": message })
        }
        "ticket.created" | "ticket.status_changed" => {
            let Some(number) = conversation.ticket_number else {
                return Ok(None);
            };
            let Some(ticket) = store.ticket_by_number(number).await? else {
                return Ok(None);
            };
            json!({ "ticket": ApiTicket::new(ticket, true), "conversation_id": conversation_id.to_string() })
        }
        "rating.received" => json!({
            "conversation": frame,
            "rating": { "score": refs["score"], "comment": refs["comment"] },
        }),
        _ => json!({ "conversation": frame }),
    };
    for key in ["changes", "reason"] {
        if !refs[key].is_null() {
            data[key] = refs[key].clone();
        }
    }
    Ok(Some(data))
}
