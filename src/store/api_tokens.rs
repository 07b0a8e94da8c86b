//! Personal API tokens (domain::api_tokens): kept as the SHA-256 of the
//! token, with their owner, scope, expiry, last use and revocation.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreResult, now_ms};
use crate::model::UserId;

/// A token as its owner's account page lists it (never the token itself).
#[derive(Debug, Clone, PartialEq)]
pub struct ApiToken {
    pub id: i64,
    pub user_id: UserId,
    pub name: String,
    /// `read`, `write` or `admin`.
    pub scope: String,
    pub expires_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub created_at: i64,
}

const COLUMNS: &str = "id, user_id, name, scope, expires_at, last_used_at, revoked_at, created_at";

fn api_token(row: &AnyRow) -> Result<ApiToken, sqlx::Error> {
    Ok(ApiToken {
        id: row.try_get("id")?,
        user_id: UserId(row.try_get("user_id")?),
        name: row.try_get("name")?,
        scope: row.try_get("scope")?,
        expires_at: row.try_get("expires_at")?,
        last_used_at: row.try_get("last_used_at")?,
        revoked_at: row.try_get("revoked_at")?,
        created_at: row.try_get("created_at")?,
    })
}

impl Store {
    pub async fn create_api_token(
        &self,
        user_id: UserId,
        name: &str,
        token_hash: &str,
        scope: &str,
        expires_at: i64,
    ) -> StoreResult<i64> {
        let _turn = self.write_turn().await;
        let insert = sqlx::query(self.sql(&self.backend.returning(
            "INSERT INTO api_tokens (user_id, name, token_hash, scope, expires_at, created_at)
             VALUES (?, ?, ?, ?, ?, ?)",
            "id",
        )))
        .bind(user_id.0)
        .bind(name)
        .bind(token_hash)
        .bind(scope)
        .bind(expires_at)
        .bind(now_ms());
        let mut conn = self.pool.acquire().await?;
        self.inserted_id(insert, &mut conn).await
    }

    /// The token with this hash, whatever its state (the caller decides).
    pub async fn api_token_by_hash(&self, token_hash: &str) -> StoreResult<Option<ApiToken>> {
        let row = sqlx::query(self.sql(&format!(
            "SELECT {COLUMNS} FROM api_tokens WHERE token_hash = ?"
        )))
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(api_token).transpose()?)
    }

    /// A user's tokens, newest first.
    pub async fn api_tokens_of(&self, user_id: UserId) -> StoreResult<Vec<ApiToken>> {
        let rows = sqlx::query(self.sql(&format!(
            "SELECT {COLUMNS} FROM api_tokens WHERE user_id = ? ORDER BY id DESC"
        )))
        .bind(user_id.0)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(api_token).collect::<Result<_, _>>()?)
    }

    /// Revokes token `id` if it is `user_id`'s; `false` if it is not theirs
    /// (or was revoked already).
    pub async fn revoke_api_token(&self, id: i64, user_id: UserId) -> StoreResult<bool> {
        let _turn = self.write_turn().await;
        let done = sqlx::query(self.sql(
            "UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND user_id = ? AND revoked_at IS NULL",
        ))
        .bind(now_ms())
        .bind(id)
        .bind(user_id.0)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Notes that token `id` was used now.
    pub async fn touch_api_token(&self, id: i64) -> StoreResult<()> {
        let _turn = self.write_turn().await;
        sqlx::query(self.sql("UPDATE api_tokens SET last_used_at = ? WHERE id = ?"))
            .bind(now_ms())
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
