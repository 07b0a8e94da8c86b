//! Attachment rows: one upload into one conversation, bound to at most one
//! message (in the message's own transaction, see `append_message`).

use sqlx::Row;
use sqlx::any::AnyRow;

use super::rows::{flag, text_enum};
use super::{Store, StoreResult};
use crate::domain::SenderKind;
use crate::domain::attachments::Attachment;

const ATTACHMENT_SELECT: &str = "
SELECT a.id, a.conversation_id, a.uploader_kind, a.uploader_user_id, a.name, a.content_type,
       a.size, a.sha256, a.message_id, COALESCE(m.private, 0) AS private, a.created_at
FROM attachments a
LEFT JOIN messages m ON m.id = a.message_id";

fn attachment(row: &AnyRow) -> Result<Attachment, sqlx::Error> {
    Ok(Attachment {
        id: row.try_get("id")?,
        conversation_id: row.try_get("conversation_id")?,
        uploader_kind: text_enum(row, "uploader_kind", SenderKind::parse)?,
        uploader_user_id: row.try_get("uploader_user_id")?,
        name: row.try_get("name")?,
        content_type: row.try_get("content_type")?,
        size: row.try_get("size")?,
        sha256: row.try_get("sha256")?,
        message_id: row.try_get("message_id")?,
        private: flag(row, "private")?,
        created_at: row.try_get("created_at")?,
    })
}

impl Store {
    /// Records an upload whose bytes are already in the blob store.
    pub async fn insert_attachment(&self, a: &Attachment) -> StoreResult<()> {
        sqlx::query(self.sql(
            "INSERT INTO attachments (id, conversation_id, uploader_kind, uploader_user_id, name, content_type, size, sha256, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        ))
        .bind(&a.id)
        .bind(a.conversation_id)
        .bind(a.uploader_kind.as_str())
        .bind(a.uploader_user_id)
        .bind(&a.name)
        .bind(&a.content_type)
        .bind(a.size)
        .bind(&a.sha256)
        .bind(a.created_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn attachment(&self, id: &str) -> StoreResult<Option<Attachment>> {
        let row = sqlx::query(self.sql(&format!("{ATTACHMENT_SELECT} WHERE a.id = ?")))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(attachment).transpose()?)
    }

    /// Uploads into a conversation since `since_ms` that no message carries
    /// (a bound on what one conversation can pile up unsent).
    pub async fn unsent_uploads_since(
        &self,
        conversation_id: i64,
        since_ms: i64,
    ) -> StoreResult<i64> {
        let row = sqlx::query(self.sql(
            "SELECT COUNT(*) AS n FROM attachments
             WHERE conversation_id = ? AND message_id IS NULL AND created_at > ?",
        ))
        .bind(conversation_id)
        .bind(since_ms)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get("n")?)
    }
}
