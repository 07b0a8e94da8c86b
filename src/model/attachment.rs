//! Files sent with messages: the upload as stored, and what a message
//! carries of it.

use serde::{Deserialize, Serialize};

use super::{ConversationId, MessageId, SenderKind, UserId};

/// What a message carries of its attachment (stored with the message, shown
/// in `message` frames and on ticket pages).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachmentRef {
    pub id: String,
    pub name: String,
    pub size: i64,
    pub content_type: String,
}

impl AttachmentRef {
    /// Whether browsers may show it inline (a thumbnail), not only download it.
    pub fn is_image(&self) -> bool {
        is_inline_image(&self.content_type)
    }
}

/// One upload, as stored.
#[derive(Debug, Clone)]
pub struct Attachment {
    pub id: String,
    pub conversation_id: ConversationId,
    /// `Customer` or `Agent`.
    pub uploader_kind: SenderKind,
    pub uploader_user_id: Option<UserId>,
    pub name: String,
    pub content_type: String,
    pub size: i64,
    pub sha256: String,
    /// The message it was sent with; `None` while it is only uploaded.
    pub message_id: Option<MessageId>,
    /// Whether that message is a private note (staff only).
    pub private: bool,
    pub created_at: i64,
}

impl Attachment {
    pub fn reference(&self) -> AttachmentRef {
        AttachmentRef {
            id: self.id.clone(),
            name: self.name.clone(),
            size: self.size,
            content_type: self.content_type.clone(),
        }
    }
}

/// Only raster images are ever shown inline; everything else is a
/// download, so nothing uploaded can run as a page of Careline's origin.
const INLINE_IMAGES: [&str; 4] = ["image/png", "image/jpeg", "image/gif", "image/webp"];

pub fn is_inline_image(content_type: &str) -> bool {
    INLINE_IMAGES.contains(&content_type)
}
