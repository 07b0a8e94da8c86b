//! Agents' presence: the heartbeat their open console writes, and who is
//! online with room for another conversation (what automatic assignment
//! picks from). Presence is in the database so that every instance sees it.

use sqlx::Row;

use super::rows;
use super::{Store, StoreResult, now_ms};
use crate::model::{User, UserId};

impl Store {
    /// Records an agent's presence (a heartbeat while their console is open).
    pub async fn set_presence(&self, agent: UserId, online: bool) -> StoreResult<()> {
        let _turn = self.write_turn().await;
        let status = if online { "online" } else { "away" };
        sqlx::query(self.sql(&self.backend.upsert(
            "INSERT INTO agent_presence (user_id, status, updated_at) VALUES (?, ?, ?)",
            &["user_id"],
            &["status", "updated_at"],
        )))
        .bind(agent.0)
        .bind(status)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Online agents with room for another conversation, least busy first.
    /// Presence older than `fresh_ms` counts as away (a crashed console).
    pub async fn available_agents(&self, fresh_ms: i64) -> StoreResult<Vec<User>> {
        let cols = rows::USER_COLUMNS
            .split(", ")
            .map(|c| format!("u.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        // One query: every handoff runs it, so it stays a single round trip.
        let rows = sqlx::query(self.sql(&format!(
            "SELECT {cols}, u.capacity AS capacity,
                    (SELECT COUNT(*) FROM conversations c WHERE c.assignee_id = u.id AND c.status = 'live') AS active
             FROM users u JOIN agent_presence p ON p.user_id = u.id
             WHERE p.status = 'online' AND p.updated_at > ? AND u.role IN ('agent', 'admin')
             ORDER BY active, u.id"
        )))
        .bind(now_ms() - fresh_ms)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::new();
        for row in &rows {
            let active: i64 = row.try_get("active")?;
            let capacity: i64 = row.try_get("capacity")?;
            if active < capacity {
                out.push(rows::user(row)?);
            }
        }
        Ok(out)
    }

    /// Every agent and admin with their presence (`online`, `away`, or
    /// `offline` when there is none fresher than `fresh_ms`), their live
    /// chats and how many they may hold, by name.
    pub async fn staff_presence(
        &self,
        fresh_ms: i64,
    ) -> StoreResult<Vec<(User, &'static str, i64, i64)>> {
        let cols = rows::USER_COLUMNS
            .split(", ")
            .map(|c| format!("u.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let rows = sqlx::query(self.sql(&format!(
            "SELECT {cols}, u.capacity AS capacity, p.status AS status, p.updated_at AS seen,
                    (SELECT COUNT(*) FROM conversations c WHERE c.assignee_id = u.id AND c.status = 'live') AS active
             FROM users u LEFT JOIN agent_presence p ON p.user_id = u.id
             WHERE u.role IN ('agent', 'admin') ORDER BY u.name, u.id"
        )))
        .fetch_all(&self.pool)
        .await?;
        let fresh_after = now_ms() - fresh_ms;
        let mut out = Vec::new();
        for row in &rows {
            let seen: Option<i64> = row.try_get("seen")?;
            let status: Option<String> = row.try_get("status")?;
            let presence = match (status.as_deref(), seen) {
                (Some("online"), Some(at)) if at > fresh_after => "online",
                (Some(_), Some(at)) if at > fresh_after => "away",
                _ => "offline",
            };
            out.push((
                rows::user(row)?,
                presence,
                row.try_get("active")?,
                row.try_get("capacity")?,
            ));
        }
        Ok(out)
    }

    pub async fn any_agent_online(&self, fresh_ms: i64) -> StoreResult<bool> {
        let row = sqlx::query(self.sql(
            "SELECT COUNT(*) AS n FROM agent_presence WHERE status = 'online' AND updated_at > ?",
        ))
        .bind(now_ms() - fresh_ms)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get::<i64, _>("n")? > 0)
    }
}
