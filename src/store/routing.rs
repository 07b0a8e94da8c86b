//! Who holds a conversation and in which state: the handoff from the bot
//! (which opens its ticket), claim, assignment within an agent's capacity,
//! transfer, resolve and reopen, each with its ticket in the same transaction.
//!
//! State changes that two people may race for (claiming, transferring) are
//! conditional updates: exactly one wins.

use sqlx::{Any, Row, Transaction};

use super::Backend;
use super::outbox::NewEmail;
use super::ticket_activity::TicketActivity;
use super::{Store, StoreResult, now_ms};
use crate::model::{ConversationId, EventKind, Priority, TicketStatus, User, UserId, VisitorId};

/// Whether an assignment to an agent may wait for another one in progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    Yes,
    No,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Assignment {
    Assigned,
    /// The agent has no room left.
    AgentFull,
    /// Another assignment holds the agent right now (`Wait::No` only).
    AgentBusy,
    /// The conversation was claimed, given away or closed meanwhile: no
    /// other agent needs to be tried.
    NoLongerWaiting,
}

impl Store {
    /// Moves a conversation from the bot to the queue and opens its ticket
    /// (or reopens the one it has). Returns false when the conversation was
    /// not with the bot (someone else escalated it first).
    pub async fn escalate(
        &self,
        conversation_id: ConversationId,
        subject: &str,
        actor_name: &str,
    ) -> StoreResult<bool> {
        let now = now_ms();
        let (mut tx, _turn) = self.write_tx().await?;
        let moved = sqlx::query(self.sql(
            "UPDATE conversations SET status = 'waiting', waiting_since = ?, updated_at = ?
             WHERE id = ? AND status = 'bot'",
        ))
        .bind(now)
        .bind(now)
        .bind(conversation_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if moved == 0 {
            return Ok(false);
        }
        let existing: Option<i64> =
            sqlx::query(self.sql("SELECT id FROM tickets WHERE conversation_id = ?"))
                .bind(conversation_id)
                .fetch_optional(&mut *tx)
                .await?
                .map(|r| r.try_get("id"))
                .transpose()?;
        match existing {
            Some(ticket_id) => {
                let mut activity = TicketActivity::system(actor_name);
                activity.status = Some(TicketStatus::Open);
                activity.assignee = Some(None);
                activity.event(
                    EventKind::Status,
                    None,
                    Some(TicketStatus::Open.to_string()),
                    false,
                );
                self.apply_ticket_activity(&mut tx, ticket_id, conversation_id, activity)
                    .await?;
            }
            None => {
                let visitor_id: VisitorId =
                    sqlx::query(self.sql("SELECT visitor_id FROM conversations WHERE id = ?"))
                        .bind(conversation_id)
                        .fetch_one(&mut *tx)
                        .await?
                        .try_get("visitor_id")?;
                self.open_ticket(
                    &mut tx,
                    (conversation_id, visitor_id),
                    (subject, Priority::Normal),
                    TicketActivity::system(actor_name),
                    now,
                )
                .await?;
            }
        }
        let refs = serde_json::json!({ "reason": "escalated" });
        self.journal(
            &mut tx,
            "conversation.handed_off",
            Some(conversation_id),
            refs,
            false,
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Gives a waiting, unassigned conversation to `agent`. Atomic: of two
    /// agents claiming at once (on any instance), exactly one gets `true`.
    pub async fn claim(&self, conversation_id: ConversationId, agent: &User) -> StoreResult<bool> {
        let taken = self
            .retrying_deadlocks(|| self.take_waiting(conversation_id, agent, None))
            .await?;
        Ok(taken == Assignment::Assigned)
    }

    /// Gives a waiting conversation to `agent` only while the agent has
    /// fewer live conversations than their capacity, checked in the same
    /// transaction: a burst of handoffs cannot all land on one agent.
    /// With `Wait::No`, an agent another assignment holds right now is
    /// skipped (`AgentBusy`) instead of waited for, so that a burst of
    /// handoffs spreads over the agents instead of queueing on the first.
    pub async fn assign_within_capacity(
        &self,
        conversation_id: ConversationId,
        agent: &User,
        wait: Wait,
    ) -> StoreResult<Assignment> {
        self.retrying_deadlocks(|| self.take_waiting(conversation_id, agent, Some(wait)))
            .await
    }

    /// `capacity`: `None` claims regardless of the agent's load.
    async fn take_waiting(
        &self,
        conversation_id: ConversationId,
        agent: &User,
        capacity: Option<Wait>,
    ) -> StoreResult<Assignment> {
        let within_capacity = capacity.is_some();
        let (mut tx, _turn) = self.write_tx().await?;
        if let Some(wait) = capacity
            && self.backend != Backend::Sqlite
        {
            // Assignments to one agent take turns, so that two of them
            // cannot both see the last free place. (SQLite writers already
            // take turns.)
            let lock = match (self.backend, wait) {
                // NO KEY UPDATE: two assignments still exclude each other,
                // but the key-share lock a message's foreign key takes on
                // its sender does not wait for this one (a group commit
                // holding the waiting conversation while it checks the
                // agent's key would otherwise deadlock with us).
                (Backend::Postgres, Wait::Yes) => {
                    "SELECT id FROM users WHERE id = ? FOR NO KEY UPDATE"
                }
                (Backend::Postgres, Wait::No) => {
                    "SELECT id FROM users WHERE id = ? FOR NO KEY UPDATE SKIP LOCKED"
                }
                // InnoDB has no weaker exclusive lock; its messages are
                // written one by one, with no group commit to wait for.
                (_, Wait::Yes) => "SELECT id FROM users WHERE id = ? FOR UPDATE",
                (_, Wait::No) => "SELECT id FROM users WHERE id = ? FOR UPDATE SKIP LOCKED",
            };
            let locked = sqlx::query(self.sql(lock))
                .bind(agent.id.0)
                .fetch_optional(&mut *tx)
                .await?;
            if locked.is_none() {
                tx.rollback().await?;
                return Ok(Assignment::AgentBusy);
            }
        }
        let capacity_check = if within_capacity {
            " AND (SELECT COUNT(*) FROM conversations WHERE assignee_id = ? AND status = 'live')
                  < (SELECT capacity FROM users WHERE id = ?)"
        } else {
            ""
        };
        let mut update = sqlx::query(self.sql(&format!(
            "UPDATE conversations SET assignee_id = ?, status = 'live', updated_at = ?
             WHERE id = ? AND status = 'waiting' AND assignee_id IS NULL{capacity_check}"
        )))
        .bind(agent.id.0)
        .bind(now_ms())
        .bind(conversation_id);
        if within_capacity {
            update = update.bind(agent.id.0).bind(agent.id.0);
        }
        let won = update.execute(&mut *tx).await?.rows_affected() == 1;
        if !won {
            // Which condition failed decides whether routing goes on to the
            // next agent. (Trying every agent for a conversation someone
            // had already claimed cost 3 statements per agent per handoff,
            // and held up the customers' sends behind it: docs/benchmarks.md.)
            let waiting = sqlx::query(self.sql(
                "SELECT 1 AS waiting FROM conversations
                 WHERE id = ? AND status = 'waiting' AND assignee_id IS NULL",
            ))
            .bind(conversation_id)
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
            tx.rollback().await?;
            return Ok(if waiting {
                Assignment::AgentFull
            } else {
                Assignment::NoLongerWaiting
            });
        }
        self.ticket_follows(&mut tx, conversation_id, agent, |activity| {
            activity.assignee = Some(Some(agent.id));
            activity.event(EventKind::Assigned, None, Some(agent.name.clone()), false);
        })
        .await?;
        tx.commit().await?;
        Ok(Assignment::Assigned)
    }

    /// Hands a live conversation from its current owner to `to`. Only the
    /// owner (or staff acting for them, `from`) may; returns false otherwise.
    pub async fn transfer(
        &self,
        conversation_id: ConversationId,
        actor: &User,
        from: UserId,
        to: &User,
    ) -> StoreResult<bool> {
        let (mut tx, _turn) = self.write_tx().await?;
        let moved = sqlx::query(self.sql(
            "UPDATE conversations SET assignee_id = ?, updated_at = ? WHERE id = ? AND assignee_id = ? AND status = 'live'",
        ))
        .bind(to.id.0)
        .bind(now_ms())
        .bind(conversation_id)
        .bind(from.0)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if !moved {
            return Ok(false);
        }
        self.ticket_follows(&mut tx, conversation_id, actor, |activity| {
            activity.assignee = Some(Some(to.id));
            activity.event(EventKind::Assigned, None, Some(to.name.clone()), false);
        })
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Resolves a conversation (and its ticket), queuing `email` with it.
    pub async fn resolve(
        &self,
        conversation_id: ConversationId,
        actor: &User,
        email: Option<NewEmail>,
    ) -> StoreResult<bool> {
        let (mut tx, _turn) = self.write_tx().await?;
        let done = sqlx::query(self.sql(
            "UPDATE conversations SET status = 'resolved', updated_at = ? WHERE id = ? AND status IN ('bot', 'waiting', 'live')",
        ))
        .bind(now_ms())
        .bind(conversation_id)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if !done {
            return Ok(false);
        }
        // With a ticket, its change to resolved tells (apply_ticket_activity).
        if self.ticket_id_of(&mut tx, conversation_id).await?.is_none() {
            let refs = serde_json::json!({});
            self.journal(
                &mut tx,
                "conversation.resolved",
                Some(conversation_id),
                refs,
                false,
            )
            .await?;
        }
        self.ticket_follows(&mut tx, conversation_id, actor, |activity| {
            activity.status = Some(TicketStatus::Resolved);
            activity.emails.extend(email);
            activity.event(
                EventKind::Status,
                None,
                Some(TicketStatus::Resolved.to_string()),
                false,
            );
        })
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// The customer wrote again after resolution: back to the agent who had
    /// it (or the queue), and the ticket reopens.
    pub async fn reopen(
        &self,
        conversation_id: ConversationId,
        actor_name: &str,
    ) -> StoreResult<bool> {
        let now = now_ms();
        let (mut tx, _turn) = self.write_tx().await?;
        let done = sqlx::query(self.sql(
            "UPDATE conversations
             SET status = CASE WHEN assignee_id IS NULL THEN 'waiting' ELSE 'live' END,
                 waiting_since = CASE WHEN assignee_id IS NULL THEN ? ELSE waiting_since END,
                 updated_at = ?
             WHERE id = ? AND status IN ('resolved', 'closed')",
        ))
        .bind(now)
        .bind(now)
        .bind(conversation_id)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if !done {
            return Ok(false);
        }
        let ticket_id = self.ticket_id_of(&mut tx, conversation_id).await?;
        if let Some(ticket_id) = ticket_id {
            let mut activity = TicketActivity::system(actor_name);
            activity.status = Some(TicketStatus::Open);
            activity.event(
                EventKind::Status,
                None,
                Some(TicketStatus::Open.to_string()),
                false,
            );
            self.apply_ticket_activity(&mut tx, ticket_id, conversation_id, activity)
                .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Applies a change to the conversation's ticket, if it has one, in `tx`.
    async fn ticket_follows(
        &self,
        tx: &mut Transaction<'static, Any>,
        conversation_id: ConversationId,
        actor: &User,
        change: impl FnOnce(&mut TicketActivity),
    ) -> StoreResult<()> {
        if let Some(ticket_id) = self.ticket_id_of(tx, conversation_id).await? {
            let mut activity = TicketActivity::new(actor);
            change(&mut activity);
            self.apply_ticket_activity(tx, ticket_id, conversation_id, activity)
                .await?;
        }
        Ok(())
    }
}
