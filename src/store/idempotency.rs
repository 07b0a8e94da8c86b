//! Answers kept by Idempotency-Key (web::idempotency): the first request
//! with a key claims it; its answer is kept for the retries.

use sqlx::Row;

use super::{Store, StoreResult, now_ms};
use crate::model::UserId;

/// What a key holds.
#[derive(Debug, Clone, PartialEq)]
pub enum Claimed {
    /// Ours now: run the request.
    Fresh,
    /// Another request with this key is still running.
    Running,
    /// Answered before: (what it asked, status, body).
    Answered(String, u16, String),
}

impl Store {
    /// Claims `key` for `user`'s request `request` (method and path).
    pub async fn claim_idempotency_key(
        &self,
        user: UserId,
        key: &str,
        request: &str,
    ) -> StoreResult<Claimed> {
        let inserted = {
            let _turn = self.write_turn().await;
            sqlx::query(self.sql(
                "INSERT INTO idempotency_keys (user_id, idem_key, request, status, body, created_at)
                 VALUES (?, ?, ?, 0, '', ?)",
            ))
            .bind(user.0)
            .bind(key)
            .bind(request)
            .bind(now_ms())
            .execute(&self.pool)
            .await
        };
        match inserted {
            Ok(_) => return Ok(Claimed::Fresh),
            Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {}
            Err(e) => return Err(e.into()),
        }
        let row = sqlx::query(self.sql(
            "SELECT request, status, body FROM idempotency_keys WHERE user_id = ? AND idem_key = ?",
        ))
        .bind(user.0)
        .bind(key)
        .fetch_one(&self.pool)
        .await?;
        let status: i64 = row.try_get("status")?;
        if status == 0 {
            return Ok(Claimed::Running);
        }
        Ok(Claimed::Answered(
            row.try_get("request")?,
            u16::try_from(status).unwrap_or(500),
            row.try_get("body")?,
        ))
    }

    /// Keeps the answer to `key`'s request.
    pub async fn answer_idempotency_key(
        &self,
        user: UserId,
        key: &str,
        status: u16,
        body: &str,
    ) -> StoreResult<()> {
        let _turn = self.write_turn().await;
        sqlx::query(self.sql(
            "UPDATE idempotency_keys SET status = ?, body = ? WHERE user_id = ? AND idem_key = ?",
        ))
        .bind(i64::from(status))
        .bind(body)
        .bind(user.0)
        .bind(key)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Lets `key` go (its request failed on this side: a retry may run).
    pub async fn release_idempotency_key(&self, user: UserId, key: &str) -> StoreResult<()> {
        let _turn = self.write_turn().await;
        sqlx::query(self.sql("DELETE FROM idempotency_keys WHERE user_id = ? AND idem_key = ?"))
            .bind(user.0)
            .bind(key)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
