//! Changes to a ticket: each goes through [`Store::record_ticket_activity`],
//! one transaction that writes the message (with the next `seq` of its
//! conversation), the ticket's new fields and the timeline entries together.

use sqlx::{Any, Row, Transaction};

use super::messages::MessageRow;
use super::outbox::NewEmail;
use super::rows::text_enum;
use super::{Store, StoreError, StoreResult, now_ms};
use crate::auth::random_token;
use crate::model::{
    AttachmentRef, ConversationId, ConversationStatus, EventKind, Message, Priority, SenderKind,
};
use crate::model::{Ticket, TicketStatus, User, UserId};

pub(super) struct NewMessage {
    pub sender_kind: SenderKind,
    pub body: String,
    pub private: bool,
    pub attachment: Option<AttachmentRef>,
}

struct NewEvent {
    kind: EventKind,
    old_value: Option<String>,
    new_value: Option<String>,
    private: bool,
}

/// Everything one action does to a ticket, applied atomically.
pub struct TicketActivity {
    actor: Option<UserId>,
    actor_name: String,
    message: Option<NewMessage>,
    events: Vec<NewEvent>,
    pub status: Option<TicketStatus>,
    pub priority: Option<Priority>,
    pub assignee: Option<Option<UserId>>,
    pub first_response: bool,
    /// Emails the action causes, queued in its transaction.
    pub emails: Vec<NewEmail>,
    /// The ticket's (status, priority, assignee) the action was decided on;
    /// if it changed meanwhile the action fails with [`StoreError::Conflict`].
    pub expect: Option<(TicketStatus, Priority, Option<UserId>)>,
    /// The customer's email (its `Message-ID`) the action answers: the
    /// emails it causes thread under it and say they are automatic.
    pub answering: Option<String>,
}

impl TicketActivity {
    pub fn new(actor: &User) -> TicketActivity {
        TicketActivity::by(Some(actor.id), &actor.name)
    }

    /// An action taken by Careline itself or by a visitor without an account.
    pub fn system(actor_name: &str) -> TicketActivity {
        TicketActivity::by(None, actor_name)
    }

    pub fn with_event(mut self, kind: EventKind) -> TicketActivity {
        self.event(kind, None, None, false);
        self
    }

    fn by(actor: Option<UserId>, actor_name: &str) -> TicketActivity {
        TicketActivity {
            actor,
            actor_name: actor_name.to_string(),
            message: None,
            events: Vec::new(),
            status: None,
            priority: None,
            assignee: None,
            first_response: false,
            emails: Vec::new(),
            expect: None,
            answering: None,
        }
    }

    pub fn message(&mut self, sender_kind: SenderKind, body: String, private: bool) {
        self.message = Some(NewMessage {
            sender_kind,
            body,
            private,
            attachment: None,
        });
    }

    /// An upload (checked by the caller) goes out with the message.
    pub fn attach(&mut self, attachment: AttachmentRef) {
        if let Some(message) = &mut self.message {
            message.attachment = Some(attachment);
        }
    }

    pub fn event(
        &mut self,
        kind: EventKind,
        old_value: Option<String>,
        new_value: Option<String>,
        private: bool,
    ) {
        self.events.push(NewEvent {
            kind,
            old_value,
            new_value,
            private,
        });
    }

    pub fn is_empty(&self) -> bool {
        self.message.is_none() && self.events.is_empty()
    }
}

/// The conversation status that mirrors a ticket's status.
pub(super) fn conversation_status(status: TicketStatus, assigned: bool) -> ConversationStatus {
    match status {
        TicketStatus::Resolved => ConversationStatus::Resolved,
        TicketStatus::Closed => ConversationStatus::Closed,
        TicketStatus::Open | TicketStatus::Pending if assigned => ConversationStatus::Live,
        TicketStatus::Open | TicketStatus::Pending => ConversationStatus::Waiting,
    }
}

impl Store {
    /// Applies one action on a ticket atomically: its message (with the next
    /// `seq`), the changed fields, the mirrored conversation state and the
    /// timeline entries.
    /// Returns the message it wrote, if any, for live delivery.
    pub async fn record_ticket_activity(
        &self,
        ticket: &Ticket,
        activity: TicketActivity,
    ) -> StoreResult<Option<Message>> {
        let (mut tx, _turn) = self.write_tx().await?;
        let message = self
            .apply_ticket_activity(&mut tx, ticket.id, ticket.conversation_id, activity)
            .await?;
        tx.commit().await?;
        Ok(message)
    }

    /// [`Store::record_ticket_activity`] inside a transaction the caller owns
    /// (chat actions combine it with their own conditional updates).
    pub(super) async fn apply_ticket_activity(
        &self,
        tx: &mut Transaction<'static, Any>,
        ticket_id: i64,
        conversation_id: ConversationId,
        activity: TicketActivity,
    ) -> StoreResult<Option<Message>> {
        let now = now_ms();
        // Rows are locked conversation first, then ticket, on every path
        // (chat actions update the conversation first too), so two actions
        // on PostgreSQL never wait on each other in a cycle.
        self.lock_conversation(tx, conversation_id).await?;
        if let Some((status, priority, assignee)) = activity.expect {
            let unchanged = sqlx::query(self.sql(
                "UPDATE tickets SET updated_at = updated_at
                 WHERE id = ? AND status = ? AND priority = ? AND COALESCE(assignee_id, 0) = ?",
            ))
            .bind(ticket_id)
            .bind(status.as_str())
            .bind(priority.as_str())
            .bind(assignee.map_or(0, |a| a.0))
            .execute(&mut **tx)
            .await?
            .rows_affected()
                == 1;
            if !unchanged {
                return Err(StoreError::Conflict);
            }
        }
        let old_status = match activity.status {
            Some(_) => Some(self.ticket_status(tx, ticket_id).await?),
            None => None,
        };
        let mut written = None;
        if let Some(message) = &activity.message {
            let seqs = self
                .next_seqs(tx, conversation_id, message.private, now)
                .await?;
            let author = (activity.actor, activity.actor_name.as_str());
            written = Some(
                self.insert_message(tx, conversation_id, seqs, author, message, now)
                    .await?,
            );
        }
        for email in &activity.emails {
            self.insert_email(tx, email).await?;
        }

        // A private note is no news for the customer: "last update" stays.
        let only_private = activity.message.as_ref().is_some_and(|m| m.private)
            && activity.events.iter().all(|e| e.private);
        if !only_private {
            sqlx::query(self.sql("UPDATE tickets SET updated_at = ? WHERE id = ?"))
                .bind(now)
                .bind(ticket_id)
                .execute(&mut **tx)
                .await?;
        }
        if let Some(status) = activity.status {
            let resolved_at = match status {
                TicketStatus::Resolved | TicketStatus::Closed => Some(now),
                TicketStatus::Open | TicketStatus::Pending => None,
            };
            sqlx::query(self.sql(
                "UPDATE tickets SET status = ?, resolved_at = CASE WHEN ? = 1 THEN COALESCE(resolved_at, ?) ELSE NULL END WHERE id = ?",
            ))
            .bind(status.as_str())
            .bind(i64::from(resolved_at.is_some()))
            .bind(now)
            .bind(ticket_id)
            .execute(&mut **tx)
            .await?;
        }
        if let Some(priority) = activity.priority {
            sqlx::query(self.sql("UPDATE tickets SET priority = ? WHERE id = ?"))
                .bind(priority.as_str())
                .bind(ticket_id)
                .execute(&mut **tx)
                .await?;
        }
        if let Some(assignee) = activity.assignee {
            sqlx::query(self.sql("UPDATE tickets SET assignee_id = ? WHERE id = ?"))
                .bind(assignee.map(|a| a.0))
                .bind(ticket_id)
                .execute(&mut **tx)
                .await?;
        }
        if activity.first_response {
            sqlx::query(self.sql(
                "UPDATE tickets SET first_response_at = COALESCE(first_response_at, ?) WHERE id = ?",
            ))
            .bind(now)
            .bind(ticket_id)
            .execute(&mut **tx)
            .await?;
        }
        self.mirror_conversation(tx, ticket_id, conversation_id, now)
            .await?;
        self.insert_activity_events(tx, ticket_id, &activity, now)
            .await?;
        self.journal_ticket_changes(tx, ticket_id, conversation_id, &activity, old_status)
            .await?;
        Ok(written)
    }

    async fn ticket_status(
        &self,
        tx: &mut Transaction<'static, Any>,
        ticket_id: i64,
    ) -> StoreResult<TicketStatus> {
        let row = sqlx::query(self.sql("SELECT status FROM tickets WHERE id = ?"))
            .bind(ticket_id)
            .fetch_one(&mut **tx)
            .await?;
        Ok(text_enum(&row, "status", TicketStatus::parse)?)
    }

    /// The webhook events of an action on a ticket: an assignment, a status
    /// that changed, and a resolution of its conversation.
    async fn journal_ticket_changes(
        &self,
        tx: &mut Transaction<'static, Any>,
        ticket_id: i64,
        conversation_id: ConversationId,
        activity: &TicketActivity,
        old_status: Option<TicketStatus>,
    ) -> StoreResult<()> {
        let conversation = Some(conversation_id);
        if let Some(Some(assignee)) = activity.assignee {
            let refs = serde_json::json!({ "assignee_id": assignee.0 });
            self.journal(tx, "conversation.assigned", conversation, refs, false)
                .await?;
        }
        if let (Some(from), Some(to)) = (old_status, activity.status)
            && from != to
        {
            let refs = serde_json::json!({
                "ticket_id": ticket_id,
                "changes": { "status": { "from": from.as_str(), "to": to.as_str() } },
            });
            self.journal(tx, "ticket.status_changed", conversation, refs, false)
                .await?;
            if to == TicketStatus::Resolved {
                let refs = serde_json::json!({});
                self.journal(tx, "conversation.resolved", conversation, refs, false)
                    .await?;
            }
        }
        Ok(())
    }

    /// Keeps the conversation's status and assignee in step with its ticket.
    async fn mirror_conversation(
        &self,
        tx: &mut Transaction<'static, Any>,
        ticket_id: i64,
        conversation_id: ConversationId,
        now: i64,
    ) -> StoreResult<()> {
        let row = sqlx::query(self.sql("SELECT status, assignee_id FROM tickets WHERE id = ?"))
            .bind(ticket_id)
            .fetch_one(&mut **tx)
            .await?;
        let status = text_enum(&row, "status", TicketStatus::parse)?;
        let assignee: Option<i64> = row.try_get("assignee_id")?;
        sqlx::query(self.sql(
            "UPDATE conversations SET status = ?, assignee_id = ?, updated_at = ? WHERE id = ?",
        ))
        .bind(conversation_status(status, assignee.is_some()).as_str())
        .bind(assignee)
        .bind(now)
        .bind(conversation_id)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    pub(super) async fn insert_message(
        &self,
        tx: &mut Transaction<'static, Any>,
        conversation_id: ConversationId,
        (seq, public_seq): (i64, Option<i64>),
        (sender_user_id, sender_name): (Option<UserId>, &str),
        message: &NewMessage,
        now: i64,
    ) -> StoreResult<Message> {
        // Portal posts are not retried by a client, so each gets a fresh id.
        let client_msg_id = format!("portal:{}", random_token(12));
        let row = MessageRow {
            sender_kind: message.sender_kind,
            sender_user_id,
            sender_name,
            body: &message.body,
            private: message.private,
            client_msg_id: &client_msg_id,
            attachment: message.attachment.as_ref(),
            options: &[],
        };
        self.insert_message_row(tx, conversation_id, (seq, public_seq), &row, now)
            .await
    }

    /// Locks the conversation row for the rest of the transaction
    /// (SQLite's write transaction already holds everything).
    pub(super) async fn lock_conversation(
        &self,
        tx: &mut Transaction<'static, Any>,
        conversation_id: ConversationId,
    ) -> StoreResult<()> {
        if self.backend != super::Backend::Sqlite {
            sqlx::query(self.sql("SELECT id FROM conversations WHERE id = ? FOR UPDATE"))
                .bind(conversation_id)
                .fetch_optional(&mut **tx)
                .await?;
        }
        Ok(())
    }

    pub(super) async fn insert_activity_events(
        &self,
        tx: &mut Transaction<'static, Any>,
        ticket_id: i64,
        activity: &TicketActivity,
        now: i64,
    ) -> StoreResult<()> {
        for event in &activity.events {
            self.insert_event(
                tx,
                ticket_id,
                activity.actor,
                &activity.actor_name,
                event,
                now,
            )
            .await?;
        }
        Ok(())
    }

    async fn insert_event(
        &self,
        tx: &mut Transaction<'static, Any>,
        ticket_id: i64,
        actor: Option<UserId>,
        actor_name: &str,
        event: &NewEvent,
        now: i64,
    ) -> StoreResult<()> {
        sqlx::query(self.sql(
            "INSERT INTO ticket_events (ticket_id, at, actor_user_id, actor_name, kind, old_value, new_value, private)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        ))
        .bind(ticket_id)
        .bind(now)
        .bind(actor.map(|a| a.0))
        .bind(actor_name)
        .bind(event.kind.as_str())
        .bind(event.old_value.as_deref())
        .bind(event.new_value.as_deref())
        .bind(i64::from(event.private))
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    pub(super) async fn ticket_id_of(
        &self,
        tx: &mut Transaction<'static, Any>,
        conversation_id: ConversationId,
    ) -> StoreResult<Option<i64>> {
        Ok(
            sqlx::query(self.sql("SELECT id FROM tickets WHERE conversation_id = ?"))
                .bind(conversation_id)
                .fetch_optional(&mut **tx)
                .await?
                .map(|r| r.try_get("id"))
                .transpose()?,
        )
    }

    /// Stamps the ticket's first response time if it has none yet. True
    /// when the conversation's ticket has one now (stamped here or before);
    /// false when it has no ticket.
    pub async fn note_first_response(&self, conversation_id: ConversationId) -> StoreResult<bool> {
        let now = now_ms();
        let stamped = {
            let _turn = self.write_turn().await;
            sqlx::query(self.sql(
                "UPDATE tickets SET first_response_at = ?, updated_at = ?
                 WHERE conversation_id = ? AND first_response_at IS NULL",
            ))
            .bind(now)
            .bind(now)
            .bind(conversation_id)
            .execute(&self.pool)
            .await?
            .rows_affected()
        };
        if stamped > 0 {
            return Ok(true);
        }
        // Stamped before, or no ticket: a read, not a write, tells which.
        let ticket = sqlx::query(self.sql("SELECT id FROM tickets WHERE conversation_id = ?"))
            .bind(conversation_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(ticket.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversation_mirrors_ticket() {
        assert_eq!(
            conversation_status(TicketStatus::Open, false),
            ConversationStatus::Waiting
        );
        assert_eq!(
            conversation_status(TicketStatus::Open, true),
            ConversationStatus::Live
        );
        assert_eq!(
            conversation_status(TicketStatus::Resolved, true),
            ConversationStatus::Resolved
        );
    }
}
