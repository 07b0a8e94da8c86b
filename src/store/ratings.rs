//! Customer satisfaction: the rating a customer gives a conversation (one
//! per conversation, the last one counts), noted on its ticket's timeline.

use sqlx::Row;

use super::ticket_activity::TicketActivity;
use super::{Store, StoreResult, now_ms};
use crate::model::{ConversationId, EventKind};

impl Store {
    /// Stores the customer's rating; a second rating replaces the first.
    pub async fn rate(
        &self,
        conversation_id: ConversationId,
        score: i64,
        comment: &str,
        actor_name: &str,
    ) -> StoreResult<()> {
        let now = now_ms();
        let (mut tx, _turn) = self.write_tx().await?;
        // The conversation first, as every change to it (journal order).
        self.lock_conversation(&mut tx, conversation_id).await?;
        sqlx::query(self.sql(&self.backend.upsert(
            "INSERT INTO csat_ratings (conversation_id, score, comment, created_at) VALUES (?, ?, ?, ?)",
            &["conversation_id"],
            &["score", "comment", "created_at"],
        )))
        .bind(conversation_id)
        .bind(score)
        .bind(comment)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if let Some(ticket_id) = self.ticket_id_of(&mut tx, conversation_id).await? {
            let mut activity = TicketActivity::system(actor_name);
            activity.event(EventKind::Rated, None, Some(format!("{score}/5")), false);
            self.apply_ticket_activity(&mut tx, ticket_id, conversation_id, activity)
                .await?;
        }
        let refs = serde_json::json!({ "score": score, "comment": comment });
        self.journal(
            &mut tx,
            "rating.received",
            Some(conversation_id),
            refs,
            false,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn rating(
        &self,
        conversation_id: ConversationId,
    ) -> StoreResult<Option<(i64, String)>> {
        let row = sqlx::query(
            self.sql("SELECT score, comment FROM csat_ratings WHERE conversation_id = ?"),
        )
        .bind(conversation_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| Ok((r.try_get("score")?, r.try_get("comment")?)))
            .transpose()
    }
}
