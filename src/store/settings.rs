//! Settings admins change while Careline runs (the bot's), as name/value
//! pairs; callers seal secret values before they get here.

use sqlx::Row;

use super::{Store, StoreResult, now_ms};
use crate::model::ConversationId;

impl Store {
    pub async fn setting(&self, name: &str) -> StoreResult<Option<String>> {
        let row = sqlx::query(self.sql("SELECT value FROM settings WHERE name = ?"))
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get("value")).transpose()?)
    }

    /// Saves several settings at once (all or none).
    pub async fn save_settings(&self, values: &[(&str, String)]) -> StoreResult<()> {
        let (mut tx, _turn) = self.write_tx().await?;
        for (name, value) in values {
            sqlx::query(self.sql(&self.backend.upsert(
                "INSERT INTO settings (name, value, updated_at) VALUES (?, ?, ?)",
                &["name"],
                &["value", "updated_at"],
            )))
            .bind(*name)
            .bind(value)
            .bind(now_ms())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The bot's session for a conversation, if it has one.
    pub async fn bot_session(
        &self,
        conversation_id: ConversationId,
    ) -> StoreResult<Option<String>> {
        let row = sqlx::query(self.sql("SELECT bot_session FROM conversations WHERE id = ?"))
            .bind(conversation_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row
            .map(|r| r.try_get::<Option<String>, _>("bot_session"))
            .transpose()?
            .flatten())
    }

    pub async fn set_bot_session(
        &self,
        conversation_id: ConversationId,
        session: Option<&str>,
    ) -> StoreResult<()> {
        sqlx::query(self.sql("UPDATE conversations SET bot_session = ? WHERE id = ?"))
            .bind(session)
            .bind(conversation_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
