//! Conversations: the row every chat hangs on, read with its ticket,
//! customer and assignee; the bot's miss counter; how far each side has
//! read. Who owns a conversation and its state changes are in `routing`.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::rows::text_enum;
use super::{Store, StoreError, StoreResult, now_ms};
use crate::model::{Conversation, ConversationId, ConversationStatus, SiteId, UserId, VisitorId};

const CONVERSATION_SELECT: &str = "
SELECT c.id, c.site_id, s.name AS site_name, c.visitor_id, c.status, c.assignee_id, c.last_seq, c.last_public_seq, c.bot_misses,
       c.agent_read_seq, c.customer_read_seq, c.waiting_since, c.created_at, c.updated_at,
       t.number AS ticket_number, t.id AS ticket_id, t.first_response_at AS first_response_at,
       a.name AS assignee_name,
       COALESCE(cu.name, v.name) AS customer_name,
       COALESCE(cu.email, v.email) AS customer_email,
       CASE WHEN cu.id IS NOT NULL THEN cu.verified ELSE v.email_verified END AS customer_verified
FROM conversations c
JOIN sites s ON s.id = c.site_id
JOIN visitors v ON v.id = c.visitor_id
LEFT JOIN users cu ON cu.id = v.user_id
LEFT JOIN tickets t ON t.conversation_id = c.id
LEFT JOIN users a ON a.id = c.assignee_id";

fn conversation(row: &AnyRow) -> Result<Conversation, sqlx::Error> {
    Ok(Conversation {
        id: row.try_get("id")?,
        site_id: row.try_get("site_id")?,
        site_name: row.try_get("site_name")?,
        visitor_id: row.try_get("visitor_id")?,
        status: text_enum(row, "status", ConversationStatus::parse)?,
        assignee_id: row.try_get::<Option<i64>, _>("assignee_id")?.map(UserId),
        assignee_name: row.try_get("assignee_name")?,
        last_seq: row.try_get("last_seq")?,
        last_public_seq: row.try_get("last_public_seq")?,
        bot_misses: row.try_get("bot_misses")?,
        agent_read_seq: row.try_get("agent_read_seq")?,
        customer_read_seq: row.try_get("customer_read_seq")?,
        waiting_since: row.try_get("waiting_since")?,
        ticket_number: row.try_get("ticket_number")?,
        ticket_id: row.try_get("ticket_id")?,
        first_response_at: row.try_get("first_response_at")?,
        customer_name: row.try_get("customer_name")?,
        customer_email: row.try_get("customer_email")?,
        customer_verified: row.try_get::<i64, _>("customer_verified")? != 0,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

impl Store {
    pub async fn create_conversation(
        &self,
        site_id: SiteId,
        visitor_id: VisitorId,
    ) -> StoreResult<Conversation> {
        let now = now_ms();
        let insert = sqlx::query(self.sql(&self.backend.returning(
            "INSERT INTO conversations (site_id, visitor_id, status, last_seq, created_at, updated_at)
             VALUES (?, ?, 'bot', 0, ?, ?)",
            "id",
        )))
        .bind(site_id)
        .bind(visitor_id)
        .bind(now)
        .bind(now);
        let (mut tx, _turn) = self.write_tx().await?;
        let id = ConversationId(self.inserted_id(insert, &mut tx).await?);
        self.journal(
            &mut tx,
            "conversation.started",
            Some(id),
            serde_json::json!({}),
            false,
        )
        .await?;
        tx.commit().await?;
        self.conversation(id).await?.ok_or(StoreError::NotFound)
    }

    /// The visitor's conversation whose messages include `client_msg_id`
    /// (a retried `start`).
    pub async fn conversation_with_message(
        &self,
        visitor_id: VisitorId,
        client_msg_id: &str,
    ) -> StoreResult<Option<Conversation>> {
        let row = sqlx::query(self.sql(
            "SELECT c.id FROM conversations c JOIN messages m ON m.conversation_id = c.id
             WHERE c.visitor_id = ? AND m.client_msg_id = ? LIMIT 1",
        ))
        .bind(visitor_id)
        .bind(client_msg_id)
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(row) => self.conversation(row.try_get("id")?).await,
            None => Ok(None),
        }
    }

    pub async fn conversation(&self, id: ConversationId) -> StoreResult<Option<Conversation>> {
        let row = sqlx::query(self.sql(&format!("{CONVERSATION_SELECT} WHERE c.id = ?")))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(conversation).transpose()?)
    }

    /// A visitor's conversations, newest first (bounded: the widget shows recent ones).
    pub async fn visitor_conversations(
        &self,
        visitor_id: VisitorId,
    ) -> StoreResult<Vec<Conversation>> {
        self.visitor_conversations_before(visitor_id, None, 20)
            .await
    }

    /// A page of a visitor's conversations, newest first: those older than
    /// `before` (by id), at most `limit`.
    pub async fn visitor_conversations_before(
        &self,
        visitor_id: VisitorId,
        before: Option<ConversationId>,
        limit: i64,
    ) -> StoreResult<Vec<Conversation>> {
        let rows = sqlx::query(self.sql(&format!(
            "{CONVERSATION_SELECT} WHERE c.visitor_id = ? AND c.id < ? ORDER BY c.id DESC LIMIT ?"
        )))
        .bind(visitor_id)
        .bind(before.map_or(i64::MAX, |b| b.0))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(conversation).collect::<Result<_, _>>()?)
    }

    /// Conversations an agent owns that are not finished, oldest activity first.
    pub async fn agent_conversations(&self, agent: UserId) -> StoreResult<Vec<Conversation>> {
        let rows = sqlx::query(self.sql(&format!(
            "{CONVERSATION_SELECT} WHERE c.assignee_id = ? AND c.status = 'live' ORDER BY c.updated_at DESC"
        )))
        .bind(agent.0)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(conversation).collect::<Result<_, _>>()?)
    }

    /// Counts a bot miss; returns the misses in a row so far.
    pub async fn count_bot_miss(&self, conversation_id: ConversationId) -> StoreResult<i64> {
        let update = sqlx::query(self.sql(&self.backend.returning(
            &format!(
                "UPDATE conversations SET bot_misses = {} WHERE id = ?",
                self.backend.counter("bot_misses", "1")
            ),
            "bot_misses",
        )))
        .bind(conversation_id);
        self.counted(update, &mut *self.pool.acquire().await?)
            .await?
            .ok_or(StoreError::NotFound)
    }

    pub async fn reset_bot_misses(&self, conversation_id: ConversationId) -> StoreResult<()> {
        let _turn = self.write_turn().await;
        sqlx::query(
            self.sql("UPDATE conversations SET bot_misses = 0 WHERE id = ? AND bot_misses <> 0"),
        )
        .bind(conversation_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Remembers how far one side has read, in that side's numbering.
    pub async fn mark_read(
        &self,
        conversation_id: ConversationId,
        by_agent: bool,
        seq: i64,
    ) -> StoreResult<()> {
        let _turn = self.write_turn().await;
        let (column, bound) = if by_agent {
            ("agent_read_seq", "last_seq")
        } else {
            ("customer_read_seq", "last_public_seq")
        };
        sqlx::query(self.sql(&format!(
            "UPDATE conversations SET {column} = ? WHERE id = ? AND {column} < ? AND ? <= {bound}"
        )))
        .bind(seq)
        .bind(conversation_id)
        .bind(seq)
        .bind(seq)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
