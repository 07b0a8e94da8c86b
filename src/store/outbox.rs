//! The email outbox: every email Careline sends is first a row here, so
//! that nothing is lost when the mail service is down. The delivery worker
//! (and the SendGrid adapter) come with the email issue; until then the
//! default mailer keeps them here for admins to read.

use sqlx::Row;

use super::{Store, StoreResult, now_ms};

#[derive(Debug, Clone)]
pub struct OutboxEmail {
    pub id: i64,
    pub to_email: String,
    pub template: String,
    pub payload: String,
    pub status: String,
    pub created_at: i64,
}

impl Store {
    pub async fn enqueue_email(
        &self,
        to_email: &str,
        template: &str,
        payload: &serde_json::Value,
    ) -> StoreResult<()> {
        let now = now_ms();
        sqlx::query(self.sql(
            "INSERT INTO email_outbox (to_email, template, payload, next_attempt_at, created_at) VALUES (?, ?, ?, ?, ?)",
        ))
        .bind(to_email)
        .bind(template)
        .bind(payload.to_string())
        .bind(now)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn outbox_pending(&self) -> StoreResult<i64> {
        let row =
            sqlx::query(self.sql(
                "SELECT COUNT(*) AS n FROM email_outbox WHERE status IN ('pending', 'sending')",
            ))
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("n")?)
    }

    /// The newest emails first, for the admin page and tests.
    pub async fn outbox(&self, limit: i64) -> StoreResult<Vec<OutboxEmail>> {
        let rows = sqlx::query(self.sql(
            "SELECT id, to_email, template, payload, status, created_at FROM email_outbox ORDER BY id DESC LIMIT ?",
        ))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(OutboxEmail {
                    id: r.try_get("id")?,
                    to_email: r.try_get("to_email")?,
                    template: r.try_get("template")?,
                    payload: r.try_get("payload")?,
                    status: r.try_get("status")?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect()
    }
}
