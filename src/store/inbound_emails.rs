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
            "INSERT INTO inbound_emails (message_key, from_email, outcome, conversation_id, detail, raw, received_at)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        ))
        .bind(record.message_key)
        .bind(record.from_email)
        .bind(record.outcome.as_str())
        .bind(record.conversation_id)
        .bind(record.detail)
        .bind(record.raw)
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
}
