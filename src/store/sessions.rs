//! Login sessions. Only a SHA-256 hash of each token is stored, so a copy of
//! the database does not let anyone log in.

use sqlx::Row;

use super::rows::{self, USER_COLUMNS};
use super::{Store, StoreResult, now_ms};
use crate::model::{User, UserId};

impl Store {
    pub async fn create_session(
        &self,
        token_hash: &str,
        user: UserId,
        expires_at: i64,
    ) -> StoreResult<()> {
        sqlx::query(self.sql(
            "INSERT INTO sessions (token_hash, user_id, created_at, expires_at) VALUES (?, ?, ?, ?)",
        ))
        .bind(token_hash)
        .bind(user.0)
        .bind(now_ms())
        .bind(expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The user behind a live session, if the session exists and has not expired.
    pub async fn session_user(&self, token_hash: &str) -> StoreResult<Option<User>> {
        Ok(self.live_session(token_hash).await?.map(|(user, _)| user))
    }

    /// The user behind a live session and when the session expires (ms).
    pub async fn live_session(&self, token_hash: &str) -> StoreResult<Option<(User, i64)>> {
        let cols = USER_COLUMNS
            .split(", ")
            .map(|c| format!("u.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let row = sqlx::query(self.sql(&format!(
            "SELECT {cols}, s.expires_at FROM sessions s JOIN users u ON u.id = s.user_id
             WHERE s.token_hash = ? AND s.expires_at > ?"
        )))
        .bind(token_hash)
        .bind(now_ms())
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some((rows::user(&row)?, row.try_get("expires_at")?)))
    }

    /// Ends a session; returns whose it was, if it existed.
    pub async fn delete_session(&self, token_hash: &str) -> StoreResult<Option<UserId>> {
        let delete = sqlx::query(
            self.sql(
                &self
                    .backend
                    .returning("DELETE FROM sessions WHERE token_hash = ?", "user_id"),
            ),
        )
        .bind(token_hash);
        let select = sqlx::query(self.sql("SELECT user_id FROM sessions WHERE token_hash = ?"))
            .bind(token_hash);
        let row = self
            .deleted_row(delete, select, &mut *self.pool.acquire().await?)
            .await?;
        Ok(row
            .map(|r| r.try_get::<i64, _>("user_id"))
            .transpose()?
            .map(UserId))
    }

    /// Removes expired sessions; returns how many.
    pub async fn delete_expired_sessions(&self) -> StoreResult<u64> {
        let done = sqlx::query(self.sql("DELETE FROM sessions WHERE expires_at <= ?"))
            .bind(now_ms())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}
