//! What a conversation and its messages look like on the wire, to each
//! audience: visitors see public messages in their own numbering and no
//! staff ids; staff see everything.

use super::Chat;
use crate::domain::DomainResult;
use crate::model::{AttachmentRef, Conversation, Message, SenderKind};
use crate::protocol::{
    self, Assignee, AttachmentInfo, ConversationFrame, Customer, MessageFrame, QueueItem, Sender,
    ServerFrame, SiteRef,
};
use crate::store::Store;

/// Who a frame is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    Visitor,
    Staff,
}

/// A message's file as `audience` fetches it: visitors with their token,
/// cross-origin (the widget); staff and portal users with their session.
pub fn attachment_info(a: &AttachmentRef, audience: Audience) -> AttachmentInfo {
    let url = match audience {
        Audience::Visitor => format!("/api/widget/v1/attachments/{}", a.id),
        Audience::Staff => format!("/attachments/{}", a.id),
    };
    AttachmentInfo {
        id: a.id.clone(),
        name: a.name.clone(),
        size: a.size,
        content_type: a.content_type.clone(),
        image: a.is_image(),
        url,
    }
}

impl Chat {
    pub fn conversation_frame(&self, c: &Conversation, audience: Audience) -> ConversationFrame {
        let staff = audience == Audience::Staff;
        ConversationFrame {
            id: c.id.to_string(),
            status: c.status.as_str(),
            assignee: c.assignee_id.map(|id| Assignee {
                id: staff.then(|| id.to_string()),
                name: c.assignee_name.clone().unwrap_or_default(),
            }),
            ticket_number: c.ticket_number.map(|n| n.0),
            last_seq: if staff { c.last_seq } else { c.last_public_seq },
            customer: staff.then(|| Customer {
                contact_id: c.visitor_id.to_string(),
                name: c.customer_name.clone(),
                email: c.customer_email.clone(),
                verified: c.customer_verified,
            }),
            unread: staff.then(|| (c.last_seq - c.agent_read_seq).max(0)),
            site: staff.then(|| SiteRef {
                id: c.site_id.to_string(),
                name: c.site_name.clone(),
            }),
        }
    }

    /// The frame for `message` as `audience` sees it; `None` when that
    /// audience must not see it (a private note for a visitor).
    pub fn message_frame(&self, message: &Message, audience: Audience) -> Option<ServerFrame> {
        let staff = audience == Audience::Staff;
        let seq = if staff {
            Some(message.seq)
        } else {
            message.public_seq
        }?;
        let sender_id = match message.sender_kind {
            SenderKind::Agent if staff => message.sender_user_id.map(|id| id.to_string()),
            _ => None,
        };
        Some(ServerFrame::Message(MessageFrame {
            conversation_id: message.conversation_id.to_string(),
            seq,
            id: message.id.to_string(),
            sender: Sender {
                kind: message.sender_kind.as_str(),
                id: sender_id,
                name: message.sender_name.clone(),
            },
            body: message.body.clone(),
            private: message.private,
            attachment: message
                .attachment
                .as_ref()
                .map(|a| attachment_info(a, audience)),
            options: message.options.clone(),
            client_msg_id: message.client_msg_id.clone(),
            at: protocol::rfc3339(message.created_at),
        }))
    }
}

/// The live queue as a frame: waiting, unassigned conversations.
pub(super) async fn queue_frame(store: &Store) -> DomainResult<ServerFrame> {
    let waiting = store
        .queue()
        .await?
        .into_iter()
        .map(|q| QueueItem {
            conversation_id: q.conversation_id.to_string(),
            site: SiteRef {
                id: q.site_id.to_string(),
                name: q.site_name,
            },
            ticket_number: q.ticket_number.map(|n| n.0),
            customer: if q.customer_name.is_empty() {
                q.customer_email
            } else {
                q.customer_name
            },
            waiting_since: protocol::rfc3339(q.waiting_since),
            preview: q.preview.chars().take(140).collect(),
        })
        .collect();
    Ok(ServerFrame::Queue { waiting })
}
