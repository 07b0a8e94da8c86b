//! Email that came in, one row each by its message key: taken once however
//! often it is delivered, and what became of it (domain::inbound_email).

use sqlx::Row;

use super::{Store, StoreError, StoreResult, now_ms};
use crate::model::ConversationId;

/// What became of an email that came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InboundOutcome {
    /// It entered a conversation as the customer's message.
    Appended,
    /// It opened a ticket.
    Opened,
    /// Machine mail, or nothing to take: no message, no answer.
    Ignored,
    /// It could not be read; the raw mail is kept for an admin.
    Failed,
}

impl InboundOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            InboundOutcome::Appended => "appended",
            InboundOutcome::Opened => "opened",
            InboundOutcome::Ignored => "ignored",
            InboundOutcome::Failed => "failed",
        }
    }
}

/// An email that came in, as recorded.
#[derive(Debug, Clone)]
pub struct InboundRecord<'a> {
    pub message_key: &'a str,
    pub from_email: &'a str,
    pub outcome: InboundOutcome,
    pub conversation_id: Option<ConversationId>,
    pub detail: &'a str,
    /// The raw mail, kept only when it could not be read.
    pub raw: Option<&'a str>,
    /// The original kept in the blob store (named first with
    /// [`Store::name_email_original`]), for an email that was taken.
    pub original_sha256: Option<&'a str>,
    /// The staff `seq` of the message its text became in `conversation_id`.
    pub message_seq: Option<i64>,
}

/// The original of an email that was taken, as its viewers need it.
#[derive(Debug, Clone)]
pub struct InboundOriginal {
    pub id: i64,
    pub conversation_id: ConversationId,
    pub from_email: String,
    pub sha256: String,
    pub size: i64,
    pub received_at: i64,
}

/// An email that came in, as the admin page lists it.
#[derive(Debug, Clone)]
pub struct InboundEmail {
    pub from_email: String,
    pub outcome: String,
    pub conversation_id: Option<ConversationId>,
    pub detail: String,
    pub raw: Option<String>,
    pub received_at: i64,
}

impl Store {
    /// The newest emails that came in, first.
    pub async fn recent_inbound_emails(&self, limit: i64) -> StoreResult<Vec<InboundEmail>> {
        let rows = sqlx::query(self.sql(
            "SELECT from_email, outcome, conversation_id, detail, raw, received_at
             FROM inbound_emails ORDER BY id DESC LIMIT ?",
        ))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(InboundEmail {
                    from_email: row.try_get("from_email")?,
                    outcome: row.try_get("outcome")?,
                    conversation_id: row.try_get("conversation_id")?,
                    detail: row.try_get("detail")?,
                    raw: row.try_get("raw")?,
                    received_at: row.try_get("received_at")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Into::into)
    }

    /// Whether an email with this key was taken before.
    pub async fn inbound_email_seen(&self, message_key: &str) -> StoreResult<bool> {
        let row =
            sqlx::query(self.sql("SELECT COUNT(*) AS n FROM inbound_emails WHERE message_key = ?"))
                .bind(message_key)
                .fetch_one(&self.pool)
                .await?;
        Ok(row.try_get::<i64, _>("n")? > 0)
    }

    /// Records what became of an email; `false` if one with its key was
    /// recorded meanwhile (two deliveries of it at once).
    pub async fn record_inbound_email(&self, record: &InboundRecord<'_>) -> StoreResult<bool> {
        let _turn = self.write_turn().await;
        let inserted = sqlx::query(self.sql(
            "INSERT INTO inbound_emails (message_key, from_email, outcome, conversation_id, detail, raw, original_sha256, message_seq, received_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        ))
        .bind(record.message_key)
        .bind(record.from_email)
        .bind(record.outcome.as_str())
        .bind(record.conversation_id)
        .bind(record.detail)
        .bind(record.raw)
        .bind(record.original_sha256)
        .bind(record.message_seq)
        .bind(now_ms())
        .execute(&self.pool)
        .await;
        match inserted {
            Ok(_) => Ok(true),
            Err(sqlx::Error::Database(db)) if db.is_unique_violation() => Ok(false),
            Err(e) => Err(StoreError::Database(e)),
        }
    }

    /// The outcome recorded for an email, if any (for tests and admins).
    pub async fn inbound_email_outcome(&self, message_key: &str) -> StoreResult<Option<String>> {
        let row = sqlx::query(self.sql("SELECT outcome FROM inbound_emails WHERE message_key = ?"))
            .bind(message_key)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get("outcome")).transpose()?)
    }

    /// The original that inbound email `id` kept, if it kept one.
    pub async fn inbound_original(&self, id: i64) -> StoreResult<Option<InboundOriginal>> {
        let row = sqlx::query(self.sql(
            "SELECT i.id, i.conversation_id, i.from_email, i.original_sha256, o.size, i.received_at
             FROM inbound_emails i JOIN email_originals o ON o.sha256 = i.original_sha256
             WHERE i.id = ? AND i.conversation_id IS NOT NULL",
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(InboundOriginal {
            id: row.try_get("id")?,
            conversation_id: row.try_get("conversation_id")?,
            from_email: row.try_get("from_email")?,
            sha256: row.try_get("original_sha256")?,
            size: row.try_get("size")?,
            received_at: row.try_get("received_at")?,
        }))
    }

    /// The messages of a conversation that came by email and kept their
    /// original: (staff `seq`, inbound email id), in `seq` order.
    pub async fn emailed_messages(
        &self,
        conversation_id: ConversationId,
    ) -> StoreResult<Vec<(i64, i64)>> {
        let rows = sqlx::query(self.sql(
            "SELECT message_seq, id FROM inbound_emails
             WHERE conversation_id = ? AND message_seq IS NOT NULL AND original_sha256 IS NOT NULL
             ORDER BY message_seq",
        ))
        .bind(conversation_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| Ok((row.try_get("message_seq")?, row.try_get("id")?)))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Into::into)
    }

    /// The detail recorded for an email, if any (for tests and admins).
    pub async fn inbound_email_detail(&self, message_key: &str) -> StoreResult<Option<String>> {
        let row = sqlx::query(self.sql("SELECT detail FROM inbound_emails WHERE message_key = ?"))
            .bind(message_key)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get("detail")).transpose()?)
    }
}
