//! A contact's profile beyond their details: agents' notes on the person,
//! and merging one contact into another (`domain::contacts` decides which
//! merges are allowed and what the merged contact keeps).

use sqlx::{Any, Row, Transaction};

use super::ticket_activity::TicketActivity;
use super::{Store, StoreError, StoreResult, now_ms};
use crate::model::{ConversationId, EventKind, User, UserId, VisitorId};

/// A note an agent wrote on a contact, for staff only.
#[derive(Debug, Clone, PartialEq)]
pub struct ContactNote {
    pub id: i64,
    pub author: String,
    pub body: String,
    pub created_at: i64,
}

/// Who a contact is, as a merge decided on it: if any of it changed
/// before the merge's transaction locked the rows, the merge is refused.
#[derive(Debug, Clone, PartialEq)]
pub struct MergeSide {
    pub id: VisitorId,
    pub account: Option<UserId>,
    pub external_id: Option<String>,
}

/// What the contact merged into is after the merge.
#[derive(Debug, Clone)]
pub struct MergedDetails {
    /// A name for a contact that had none (`None`: theirs stays).
    pub name: Option<String>,
    /// An email and whether it is proven, replacing theirs (`None`: theirs
    /// stays).
    pub email: Option<(String, bool)>,
    pub account: Option<UserId>,
    pub external_id: Option<String>,
    pub attributes: String,
}

/// What a merge moved.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MergeMoved {
    pub conversations: Vec<ConversationId>,
    pub tickets: Vec<i64>,
    pub notes: u64,
}

impl Store {
    /// The notes on a contact, newest first.
    pub async fn contact_notes(&self, id: VisitorId) -> StoreResult<Vec<ContactNote>> {
        let rows = sqlx::query(self.sql(
            "SELECT id, author_name, body, created_at FROM contact_notes
             WHERE visitor_id = ? ORDER BY id DESC LIMIT 500",
        ))
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(ContactNote {
                    id: row.try_get("id")?,
                    author: row.try_get("author_name")?,
                    body: row.try_get("body")?,
                    created_at: row.try_get("created_at")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    pub async fn add_contact_note(
        &self,
        id: VisitorId,
        author: &User,
        body: &str,
    ) -> StoreResult<ContactNote> {
        let now = now_ms();
        let insert = sqlx::query(self.sql(&self.backend.returning(
            "INSERT INTO contact_notes (visitor_id, author_id, author_name, body, created_at)
             VALUES (?, ?, ?, ?, ?)",
            "id",
        )))
        .bind(id)
        .bind(author.id.0)
        .bind(author.name.as_str())
        .bind(body)
        .bind(now);
        let (mut tx, _turn) = self.write_tx().await?;
        let note_id = self.inserted_id(insert, &mut tx).await?;
        tx.commit().await?;
        Ok(ContactNote {
            id: note_id,
            author: author.name.clone(),
            body: body.to_string(),
            created_at: now,
        })
    }

    /// Moves everything of `from` to `into` in one transaction: its
    /// conversations, tickets (each with a staff-only timeline entry naming
    /// both and `actor`) and notes; `into` takes `details`, and `from` is
    /// marked merged, its widget tokens ended. [`StoreError::Conflict`] when
    /// either side is not as `expect` says any more (or already merged).
    pub async fn merge_contacts(
        &self,
        actor: &User,
        expect: (&MergeSide, &MergeSide),
        details: &MergedDetails,
        labels: (&str, &str),
    ) -> StoreResult<MergeMoved> {
        let (into, from) = expect;
        let (mut tx, _turn) = self.write_tx().await?;
        // Both rows locked in id order, so that two merges of the same pair
        // (either way round) wait for each other instead of deadlocking.
        let (first, second) = if into.id.0 < from.id.0 {
            (into, from)
        } else {
            (from, into)
        };
        for side in [first, second] {
            self.lock_unchanged(&mut tx, side).await?;
        }
        let moved_tickets = sqlx::query(self.sql("SELECT id FROM tickets WHERE customer_id = ?"))
            .bind(from.id)
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|r| r.try_get("id"))
            .collect::<Result<Vec<i64>, _>>()?;
        let moved_conversations =
            sqlx::query(self.sql("SELECT id FROM conversations WHERE visitor_id = ?"))
                .bind(from.id)
                .fetch_all(&mut *tx)
                .await?
                .iter()
                .map(|r| r.try_get("id"))
                .collect::<Result<Vec<ConversationId>, _>>()?;
        for (table, column) in [("conversations", "visitor_id"), ("tickets", "customer_id")] {
            sqlx::query(self.sql(&format!(
                "UPDATE {table} SET {column} = ? WHERE {column} = ?"
            )))
            .bind(into.id)
            .bind(from.id)
            .execute(&mut *tx)
            .await?;
        }
        let notes =
            sqlx::query(self.sql("UPDATE contact_notes SET visitor_id = ? WHERE visitor_id = ?"))
                .bind(into.id)
                .bind(from.id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        // `from` lets go of its account, signed id and tokens first: each is
        // unique per site, and `into` may be taking them over.
        sqlx::query(self.sql(
            "UPDATE visitors SET user_id = NULL, external_id = NULL, token_hash = NULL,
                 merged_into = ? WHERE id = ?",
        ))
        .bind(into.id)
        .bind(from.id)
        .execute(&mut *tx)
        .await?;
        sqlx::query(self.sql("DELETE FROM visitor_tokens WHERE visitor_id = ?"))
            .bind(from.id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(self.sql(
            "UPDATE visitors SET name = COALESCE(?, name),
                 email_verified = CASE WHEN ? IS NULL THEN email_verified ELSE ? END,
                 email = COALESCE(?, email),
                 user_id = ?, external_id = ?, attributes = ? WHERE id = ?",
        ))
        .bind(details.name.as_deref())
        .bind(details.email.as_ref().map(|(e, _)| e.as_str()))
        .bind(i64::from(details.email.as_ref().is_some_and(|(_, v)| *v)))
        .bind(details.email.as_ref().map(|(e, _)| e.as_str()))
        .bind(details.account.map(|a| a.0))
        .bind(details.external_id.as_deref())
        .bind(&details.attributes)
        .bind(into.id)
        .execute(&mut *tx)
        .await?;
        let (from_label, into_label) = labels;
        let now = now_ms();
        for &ticket_id in &moved_tickets {
            let mut activity = TicketActivity::new(actor);
            activity.event(
                EventKind::ContactMerged,
                Some(from_label.to_string()),
                Some(into_label.to_string()),
                true,
            );
            self.insert_activity_events(&mut tx, ticket_id, &activity, now)
                .await?;
        }
        sqlx::query(self.sql(
            "INSERT INTO audit_log (at, actor_user_id, action, detail) VALUES (?, ?, ?, ?)",
        ))
        .bind(now)
        .bind(actor.id.0)
        .bind("contact.merged")
        .bind(format!(
            "{} merged contact {from_label} into {into_label}: {} conversations, {} tickets, {notes} notes moved",
            actor.email,
            moved_conversations.len(),
            moved_tickets.len()
        ))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(MergeMoved {
            conversations: moved_conversations,
            tickets: moved_tickets,
            notes,
        })
    }

    /// Locks one visitor row (PostgreSQL, MariaDB; SQLite's write
    /// transaction holds everything) and checks it is still as the merge
    /// was decided on, and not merged already.
    async fn lock_unchanged(
        &self,
        tx: &mut Transaction<'static, Any>,
        side: &MergeSide,
    ) -> StoreResult<()> {
        let row = sqlx::query(self.sql(&format!(
            "SELECT user_id, external_id, merged_into FROM visitors WHERE id = ?{}",
            self.backend.for_update()
        )))
        .bind(side.id)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or(StoreError::NotFound)?;
        let account = row.try_get::<Option<i64>, _>("user_id")?.map(UserId);
        let external_id: Option<String> = row.try_get("external_id")?;
        let merged_into: Option<i64> = row.try_get("merged_into")?;
        if account != side.account || external_id != side.external_id || merged_into.is_some() {
            return Err(StoreError::Conflict);
        }
        Ok(())
    }
}
