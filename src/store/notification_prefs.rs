//! Which emails each person wants about their own work (the account page's
//! two checkboxes), and what deciding a "customer wrote while you were away"
//! email needs to know in one read: who owns the conversation, their
//! presence and their choices. The rule itself is `domain::notifications`.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::rows::{self, USER_COLUMNS};
use super::{Store, StoreResult, now_ms};
use crate::model::{ConversationId, ConversationStatus, TicketNumber, User, UserId};

/// What a person wants emailed; both on unless they turned them off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotificationPrefs {
    /// A conversation or ticket is assigned to them by someone else (or by routing).
    pub assigned: bool,
    /// A customer writes on a conversation they own while they are away.
    pub customer_wrote: bool,
}

impl Default for NotificationPrefs {
    fn default() -> Self {
        NotificationPrefs {
            assigned: true,
            customer_wrote: true,
        }
    }
}

/// A conversation's owner as a customer's message finds them.
#[derive(Debug, Clone)]
pub struct ConversationOwner {
    pub owner: User,
    pub status: ConversationStatus,
    pub ticket_number: Option<TicketNumber>,
    /// The owner's console as last heard: (online, when, ms), or `None`
    /// when they never opened one.
    pub presence: Option<(bool, i64)>,
    pub prefs: NotificationPrefs,
}

fn prefs(row: &AnyRow) -> Result<NotificationPrefs, sqlx::Error> {
    let on = |column: &str| -> Result<bool, sqlx::Error> {
        Ok(row
            .try_get::<Option<i64>, _>(column)?
            .is_none_or(|v| v != 0))
    };
    Ok(NotificationPrefs {
        assigned: on("n_assigned")?,
        customer_wrote: on("n_customer_wrote")?,
    })
}

impl Store {
    /// `user`'s choices (the defaults when they never changed them).
    pub async fn notification_prefs(&self, user: UserId) -> StoreResult<NotificationPrefs> {
        let row = sqlx::query(self.sql(
            "SELECT assigned AS n_assigned, customer_wrote AS n_customer_wrote
             FROM notification_prefs WHERE user_id = ?",
        ))
        .bind(user.0)
        .fetch_optional(&self.pool)
        .await?;
        Ok(match row {
            Some(row) => prefs(&row)?,
            None => NotificationPrefs::default(),
        })
    }

    pub async fn set_notification_prefs(
        &self,
        user: UserId,
        prefs: NotificationPrefs,
    ) -> StoreResult<()> {
        let _turn = self.write_turn().await;
        sqlx::query(self.sql(&self.backend.upsert(
            "INSERT INTO notification_prefs (user_id, assigned, customer_wrote, updated_at) VALUES (?, ?, ?, ?)",
            &["user_id"],
            &["assigned", "customer_wrote", "updated_at"],
        )))
        .bind(user.0)
        .bind(i64::from(prefs.assigned))
        .bind(i64::from(prefs.customer_wrote))
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The staff member who owns conversation `id`, with their presence and
    /// choices (one round trip: a customer's message asks it); `None` when
    /// nobody owns it.
    pub async fn conversation_owner(
        &self,
        id: ConversationId,
    ) -> StoreResult<Option<ConversationOwner>> {
        let cols = USER_COLUMNS
            .split(", ")
            .map(|c| format!("u.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let row = sqlx::query(self.sql(&format!(
            "SELECT {cols}, c.status AS conversation_status, t.number AS ticket_number,
                    p.status AS presence_status, p.updated_at AS presence_at,
                    n.assigned AS n_assigned, n.customer_wrote AS n_customer_wrote
             FROM conversations c
             JOIN users u ON u.id = c.assignee_id
             LEFT JOIN tickets t ON t.conversation_id = c.id
             LEFT JOIN agent_presence p ON p.user_id = u.id
             LEFT JOIN notification_prefs n ON n.user_id = u.id
             WHERE c.id = ?"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let presence = match row.try_get::<Option<String>, _>("presence_status")? {
            Some(status) => Some((status == "online", row.try_get("presence_at")?)),
            None => None,
        };
        Ok(Some(ConversationOwner {
            owner: rows::user(&row)?,
            status: rows::text_enum(&row, "conversation_status", ConversationStatus::parse)?,
            ticket_number: row.try_get("ticket_number")?,
            presence,
            prefs: prefs(&row)?,
        }))
    }
}
