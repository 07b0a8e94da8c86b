//! The live queue: conversations waiting for an agent, longest waiting
//! first, each with its customer and the last thing they wrote, as the
//! agents' console lists them.

use sqlx::Row;

use super::{Store, StoreResult};
use crate::model::QueueEntry;

impl Store {
    /// The live queue: waiting, unassigned conversations, longest waiting first.
    pub async fn queue(&self) -> StoreResult<Vec<QueueEntry>> {
        let rows = sqlx::query(self.sql(
            "SELECT c.id, c.site_id, s.name AS site_name, c.waiting_since, c.created_at, t.number AS ticket_number,
                    COALESCE(cu.name, v.name) AS customer_name,
                    COALESCE(cu.email, v.email) AS customer_email,
                    (SELECT m.body FROM messages m WHERE m.conversation_id = c.id AND m.sender_kind = 'customer'
                     ORDER BY m.seq DESC LIMIT 1) AS preview
             FROM conversations c
             JOIN sites s ON s.id = c.site_id
             JOIN visitors v ON v.id = c.visitor_id
             LEFT JOIN users cu ON cu.id = v.user_id
             LEFT JOIN tickets t ON t.conversation_id = c.id
             WHERE c.status = 'waiting' AND c.assignee_id IS NULL
             ORDER BY COALESCE(c.waiting_since, c.created_at), c.id
             LIMIT 200",
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let waiting_since: Option<i64> = row.try_get("waiting_since")?;
                Ok(QueueEntry {
                    conversation_id: row.try_get("id")?,
                    site_id: row.try_get("site_id")?,
                    site_name: row.try_get("site_name")?,
                    ticket_number: row.try_get("ticket_number")?,
                    customer_name: row.try_get("customer_name")?,
                    customer_email: row.try_get("customer_email")?,
                    waiting_since: waiting_since.unwrap_or(row.try_get("created_at")?),
                    preview: row
                        .try_get::<Option<String>, _>("preview")?
                        .unwrap_or_default(),
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Into::into)
    }
}
