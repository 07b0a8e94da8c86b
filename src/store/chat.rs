//! Conversations and their messages: the delivery contract's storage side.
//!
//! - Every message gets the next `seq` of its conversation in the same
//!   transaction as its insert (gap-free, increasing).
//! - A retried send with the same `client_msg_id` returns the stored message.
//! - State changes that two people may race for (claiming, transferring) are
//!   conditional updates: exactly one wins.

use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use super::Backend;
use super::append_batch::{BatchRow, Outcome};
use super::outbox::NewEmail;
use super::rows::{self, MESSAGE_COLUMNS, text_enum};
use super::tickets::TicketActivity;
use super::{Store, StoreError, StoreResult, now_ms};
use crate::model::AttachmentRef;
use crate::model::{Conversation, QueueEntry, Visitor};
use crate::model::{ConversationStatus, Priority, SenderKind, TicketStatus, User, UserId};
use crate::model::{EventKind, Message};

/// A message to append to a conversation.
pub struct NewChatMessage<'a> {
    pub sender_kind: SenderKind,
    pub sender_user_id: Option<i64>,
    pub sender_name: &'a str,
    pub body: &'a str,
    pub private: bool,
    pub client_msg_id: &'a str,
    /// The message is stored only while the conversation is in one of these
    /// states (the bot may speak only while the conversation is `bot`).
    pub only_in: Option<&'a [ConversationStatus]>,
    /// The message is stored only while this user owns the conversation
    /// (an agent's reply must not land after a transfer away).
    pub only_assignee: Option<i64>,
    /// The message is stored only if its customer needs no email about it:
    /// they have no address, or were seen after this time (ms). An agent's
    /// reply written without looking the conversation up first uses it;
    /// refused, the caller decides the email and writes both together.
    pub only_if_customer_seen_after: Option<i64>,
    /// An email the message causes, queued in the same transaction.
    pub email: Option<NewEmail>,
    /// An upload of this conversation, bound to this message in the same
    /// transaction (the caller checked it is the sender's).
    pub attachment: Option<&'a AttachmentRef>,
    /// Buttons offered with the message (a bot's question), stored with it;
    /// empty for every other message. The caller bounds them.
    pub options: &'a [String],
}

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

/// A message row as [`Store::insert_message_row`] writes it.
pub(super) struct MessageRow<'a> {
    pub sender_kind: SenderKind,
    pub sender_user_id: Option<i64>,
    pub sender_name: &'a str,
    pub body: &'a str,
    pub private: bool,
    pub client_msg_id: &'a str,
    pub attachment: Option<&'a AttachmentRef>,
    pub options: &'a [String],
}

pub enum Appended {
    /// Stored; with the conversation's status as the write saw it.
    New(Message, ConversationStatus),
    /// The same sender sent this `client_msg_id` before: this is that message.
    Duplicate(Message),
    /// Someone else in the conversation already used this `client_msg_id`.
    IdTaken,
    /// The conversation is not in a state that allows this message.
    Refused,
    /// The attachment went out with another message meanwhile.
    AttachmentTaken,
}

impl NewChatMessage<'_> {
    /// This message as a row of a group commit (see `append_batch`).
    fn batch_row(&self, conversation_id: i64) -> BatchRow<'_> {
        BatchRow {
            conversation_id,
            public: i64::from(!self.private),
            allowed: self.only_in.map(|states| {
                states
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(",")
            }),
            owner: self.only_assignee,
            seen_after: self.only_if_customer_seen_after,
            sender_kind: self.sender_kind.as_str(),
            sender_user_id: self.sender_user_id,
            sender_name: self.sender_name,
            body: self.body,
            client_msg_id: self.client_msg_id,
            options: self.options,
        }
    }

    /// Whether `existing` (same `client_msg_id`) came from this sender: only
    /// then is it a retry; otherwise the id is someone else's.
    fn retry_of(&self, existing: Message) -> Appended {
        if existing.sender_kind == self.sender_kind
            && existing.sender_user_id == self.sender_user_id
        {
            Appended::Duplicate(existing)
        } else {
            Appended::IdTaken
        }
    }
}

const CONVERSATION_SELECT: &str = "
SELECT c.id, c.site_id, c.visitor_id, c.status, c.assignee_id, c.last_seq, c.last_public_seq, c.bot_misses,
       c.agent_read_seq, c.customer_read_seq, c.waiting_since, c.created_at, c.updated_at,
       t.number AS ticket_number, t.id AS ticket_id, t.first_response_at AS first_response_at,
       a.name AS assignee_name,
       COALESCE(cu.name, v.name) AS customer_name,
       COALESCE(cu.email, v.email) AS customer_email
FROM conversations c
JOIN visitors v ON v.id = c.visitor_id
LEFT JOIN users cu ON cu.id = v.user_id
LEFT JOIN tickets t ON t.conversation_id = c.id
LEFT JOIN users a ON a.id = c.assignee_id";

fn conversation(row: &AnyRow) -> Result<Conversation, sqlx::Error> {
    Ok(Conversation {
        id: row.try_get("id")?,
        site_id: row.try_get("site_id")?,
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
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn visitor(row: &AnyRow) -> Result<Visitor, sqlx::Error> {
    Ok(Visitor {
        id: row.try_get("id")?,
        site_id: row.try_get("site_id")?,
        user_id: row.try_get("user_id")?,
        name: row.try_get("name")?,
        email: row.try_get("email")?,
    })
}

impl Store {
    pub async fn create_visitor(
        &self,
        site_id: i64,
        token_hash: &str,
        name: &str,
        email: &str,
    ) -> StoreResult<Visitor> {
        let now = now_ms();
        let row = sqlx::query(self.sql(
            "INSERT INTO visitors (site_id, token_hash, name, email, created_at, last_seen_at)
             VALUES (?, ?, ?, ?, ?, ?) RETURNING id, site_id, user_id, name, email",
        ))
        .bind(site_id)
        .bind(token_hash)
        .bind(name)
        .bind(email)
        .bind(now)
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        Ok(visitor(&row)?)
    }

    /// The visitor holding this token on this site, if any.
    pub async fn visitor_by_token(
        &self,
        site_id: i64,
        token_hash: &str,
    ) -> StoreResult<Option<Visitor>> {
        let row = sqlx::query(self.sql(
            "SELECT id, site_id, user_id, name, email FROM visitors WHERE site_id = ? AND token_hash = ?",
        ))
        .bind(site_id)
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(visitor).transpose()?)
    }

    pub async fn visitor(&self, id: i64) -> StoreResult<Option<Visitor>> {
        let row = sqlx::query(
            self.sql("SELECT id, site_id, user_id, name, email FROM visitors WHERE id = ?"),
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(visitor).transpose()?)
    }

    /// Updates what the visitor told us about themselves; empty keeps the old value.
    pub async fn update_visitor_contact(
        &self,
        id: i64,
        name: &str,
        email: &str,
    ) -> StoreResult<()> {
        sqlx::query(self.sql(
            "UPDATE visitors SET name = CASE WHEN ? = '' THEN name ELSE ? END,
                                 email = CASE WHEN ? = '' THEN email ELSE ? END,
                                 last_seen_at = ?
             WHERE id = ?",
        ))
        .bind(name)
        .bind(name)
        .bind(email)
        .bind(email)
        .bind(now_ms())
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Marks these visitors as connected now.
    pub async fn touch_visitors(&self, ids: &[i64]) -> StoreResult<()> {
        let _turn = self.write_turn().await;
        if ids.is_empty() {
            return Ok(());
        }
        let placeholders = vec!["?"; ids.len()].join(", ");
        let mut query = sqlx::query(self.sql(&format!(
            "UPDATE visitors SET last_seen_at = ? WHERE id IN ({placeholders})"
        )))
        .bind(now_ms());
        for id in ids {
            query = query.bind(*id);
        }
        query.execute(&self.pool).await?;
        Ok(())
    }

    pub async fn visitor_left(&self, id: i64) -> StoreResult<()> {
        let _turn = self.write_turn().await;
        sqlx::query(self.sql("UPDATE visitors SET last_seen_at = 0 WHERE id = ?"))
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn visitor_last_seen(&self, id: i64) -> StoreResult<i64> {
        let row = sqlx::query(self.sql("SELECT last_seen_at FROM visitors WHERE id = ?"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row
            .map(|r| r.try_get("last_seen_at"))
            .transpose()?
            .unwrap_or(0))
    }

    pub async fn create_conversation(
        &self,
        site_id: i64,
        visitor_id: i64,
    ) -> StoreResult<Conversation> {
        let now = now_ms();
        let id: i64 = sqlx::query(self.sql(
            "INSERT INTO conversations (site_id, visitor_id, status, last_seq, created_at, updated_at)
             VALUES (?, ?, 'bot', 0, ?, ?) RETURNING id",
        ))
        .bind(site_id)
        .bind(visitor_id)
        .bind(now)
        .bind(now)
        .fetch_one(&self.pool)
        .await?
        .try_get("id")?;
        self.conversation(id).await?.ok_or(StoreError::NotFound)
    }

    /// The visitor's conversation whose messages include `client_msg_id`
    /// (a retried `start`).
    pub async fn conversation_with_message(
        &self,
        visitor_id: i64,
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

    pub async fn conversation(&self, id: i64) -> StoreResult<Option<Conversation>> {
        let row = sqlx::query(self.sql(&format!("{CONVERSATION_SELECT} WHERE c.id = ?")))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(conversation).transpose()?)
    }

    /// A visitor's conversations, newest first (bounded: the widget shows recent ones).
    pub async fn visitor_conversations(&self, visitor_id: i64) -> StoreResult<Vec<Conversation>> {
        let rows = sqlx::query(self.sql(&format!(
            "{CONVERSATION_SELECT} WHERE c.visitor_id = ? ORDER BY c.id DESC LIMIT 20"
        )))
        .bind(visitor_id)
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

    /// Appends a message under the delivery contract (see the module docs).
    pub async fn append_message(
        &self,
        conversation_id: i64,
        message: NewChatMessage<'_>,
    ) -> StoreResult<Appended> {
        if self.backend == Backend::Postgres
            && message.email.is_none()
            && message.attachment.is_none()
        {
            if let Some(batcher) = &self.batcher {
                match batcher.append(&message.batch_row(conversation_id)).await {
                    Outcome::Stored(stored) => {
                        let (stored, status) = *stored?;
                        return Ok(Appended::New(stored, status));
                    }
                    // Refused, or a retry of a message stored before.
                    Outcome::NotStored => {
                        return self
                            .retry_or(conversation_id, &message, || Ok(Appended::Refused))
                            .await;
                    }
                    Outcome::WriteAlone => {}
                }
            }
            return self
                .append_in_one_statement(conversation_id, &message)
                .await;
        }
        // No lookup of the client_msg_id first: a retry is rare, and the
        // unique index finds it inside the write anyway (one round trip less
        // per message on the hot path).
        let now = now_ms();
        let (mut tx, _turn) = self.write_tx().await?;
        // The status condition is part of the seq update itself, so it holds
        // at the moment of the write on every backend.
        let Some((seq, public_seq, status)) = self
            .next_seqs_if(
                &mut tx,
                conversation_id,
                message.private,
                now,
                Conditions::of(&message),
            )
            .await?
        else {
            tx.rollback().await?;
            // A retry of a message that was stored before the state changed
            // (a reply retried after a transfer) is still that message.
            return self
                .retry_or(conversation_id, &message, || Ok(Appended::Refused))
                .await;
        };
        let row = MessageRow {
            sender_kind: message.sender_kind,
            sender_user_id: message.sender_user_id,
            sender_name: message.sender_name,
            body: message.body,
            private: message.private,
            client_msg_id: message.client_msg_id,
            attachment: message.attachment,
            options: message.options,
        };
        match self
            .insert_message_row(&mut tx, conversation_id, (seq, public_seq), &row, now)
            .await
        {
            Ok(stored) => {
                if let Some(email) = &message.email {
                    self.insert_email(&mut tx, email).await?;
                }
                tx.commit().await?;
                Ok(Appended::New(stored, status))
            }
            Err(StoreError::AttachmentTaken) => {
                tx.rollback().await?;
                Ok(Appended::AttachmentTaken)
            }
            // A concurrent retry with the same client_msg_id won the race:
            // roll back (the seq too, so no gap) and return its message.
            Err(StoreError::Database(sqlx::Error::Database(db))) if db.is_unique_violation() => {
                tx.rollback().await?;
                self.retry_or(conversation_id, &message, || {
                    Err(StoreError::Database(sqlx::Error::Database(db)))
                })
                .await
            }
            Err(e) => Err(e),
        }
    }

    /// Inserts a message at `seqs` and binds its upload, in `tx`: the one
    /// place a message row is written (chat sends and ticket pages). A
    /// unique violation (a retried `client_msg_id`) comes back as
    /// `StoreError::Database`; an upload already sent with another message as
    /// `StoreError::AttachmentTaken`. Either way the caller rolls back.
    pub(super) async fn insert_message_row(
        &self,
        tx: &mut Transaction<'static, Any>,
        conversation_id: i64,
        (seq, public_seq): (i64, Option<i64>),
        row: &MessageRow<'_>,
        now: i64,
    ) -> StoreResult<Message> {
        let inserted = sqlx::query(self.sql(&format!(
            "INSERT INTO messages (conversation_id, seq, public_seq, sender_kind, sender_user_id, sender_name, body, private, client_msg_id, created_at, attachment, options)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING {MESSAGE_COLUMNS}"
        )))
        .bind(conversation_id)
        .bind(seq)
        .bind(public_seq)
        .bind(row.sender_kind.as_str())
        .bind(row.sender_user_id)
        .bind(row.sender_name)
        .bind(row.body)
        .bind(i64::from(row.private))
        .bind(row.client_msg_id)
        .bind(now)
        .bind(
            row.attachment
                .map(|a| serde_json::to_string(a).expect("an attachment serializes")),
        )
        .bind(rows::options_json(row.options))
        .fetch_one(&mut **tx)
        .await?;
        let stored = rows::message(&inserted)?;
        if let Some(attachment) = row.attachment
            && !self
                .bind_attachment(tx, stored.id, &attachment.id, conversation_id)
                .await?
        {
            return Err(StoreError::AttachmentTaken);
        }
        Ok(stored)
    }

    /// The common message (no email, no file) on PostgreSQL: the seq update
    /// and the insert as one statement (data-modifying CTEs), atomic without
    /// a transaction around it: one round trip instead of four (BEGIN,
    /// UPDATE, INSERT, COMMIT). Same contract as the general path.
    async fn append_in_one_statement(
        &self,
        conversation_id: i64,
        message: &NewChatMessage<'_>,
    ) -> StoreResult<Appended> {
        let conditions = Conditions::of(message);
        let condition = conditions.sql();
        let query = sqlx::query(self.sql(&format!(
            "WITH s AS (
                UPDATE conversations SET last_seq = last_seq + 1,
                       last_public_seq = last_public_seq + ?, updated_at = ?
                WHERE id = ?{condition}
                RETURNING last_seq, last_public_seq, status
             ), m AS (
                INSERT INTO messages (conversation_id, seq, public_seq, sender_kind, sender_user_id, sender_name, body, private, client_msg_id, created_at, options)
                SELECT ?, s.last_seq, CASE WHEN ? = 1 THEN NULL ELSE s.last_public_seq END, ?, ?, ?, ?, ?, ?, ?, ?
                FROM s
                RETURNING {MESSAGE_COLUMNS}
             )
             SELECT m.*, s.status FROM m, s"
        )))
        .bind(if message.private { 0_i64 } else { 1 })
        .bind(now_ms())
        .bind(conversation_id);
        let inserted = conditions
            .bind(query)
            .bind(conversation_id)
            .bind(i64::from(message.private))
            .bind(message.sender_kind.as_str())
            .bind(message.sender_user_id)
            .bind(message.sender_name)
            .bind(message.body)
            .bind(i64::from(message.private))
            .bind(message.client_msg_id)
            .bind(now_ms())
            .bind(rows::options_json(message.options))
            .fetch_optional(&self.pool)
            .await;
        match inserted {
            Ok(Some(row)) => Ok(Appended::New(
                rows::message(&row)?,
                text_enum(&row, "status", ConversationStatus::parse)?,
            )),
            // Refused by the condition, or a retry of a message stored
            // before the conversation changed.
            Ok(None) => {
                self.retry_or(conversation_id, message, || Ok(Appended::Refused))
                    .await
            }
            // The statement failed as a whole: nothing was written.
            Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                self.retry_or(conversation_id, message, || {
                    Err(StoreError::Database(sqlx::Error::Database(db)))
                })
                .await
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Binds an upload of `conversation_id` to the message just inserted;
    /// false when it went out with another message already. The condition
    /// makes "one upload, one message" hold when two sends race for it.
    async fn bind_attachment(
        &self,
        tx: &mut Transaction<'static, Any>,
        message_id: i64,
        attachment_id: &str,
        conversation_id: i64,
    ) -> StoreResult<bool> {
        let bound = sqlx::query(self.sql(
            "UPDATE attachments SET message_id = ?
             WHERE id = ? AND conversation_id = ? AND message_id IS NULL",
        ))
        .bind(message_id)
        .bind(attachment_id)
        .bind(conversation_id)
        .execute(&mut **tx)
        .await?;
        Ok(bound.rows_affected() == 1)
    }

    /// After a write that stored nothing: the message this send stored
    /// before (a retry, as `retry_of` tells), else `otherwise`.
    async fn retry_or(
        &self,
        conversation_id: i64,
        message: &NewChatMessage<'_>,
        otherwise: impl FnOnce() -> StoreResult<Appended>,
    ) -> StoreResult<Appended> {
        match self
            .message_by_client_id(conversation_id, message.client_msg_id)
            .await?
        {
            Some(existing) => Ok(message.retry_of(existing)),
            None => otherwise(),
        }
    }

    async fn message_by_client_id(
        &self,
        conversation_id: i64,
        client_msg_id: &str,
    ) -> StoreResult<Option<Message>> {
        let row = sqlx::query(self.sql(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE conversation_id = ? AND client_msg_id = ?"
        )))
        .bind(conversation_id)
        .bind(client_msg_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(rows::message).transpose()?)
    }

    /// Messages with `seq > after_seq`, in order, at most `limit`.
    pub async fn messages_after(
        &self,
        conversation_id: i64,
        after_seq: i64,
        include_private: bool,
        limit: i64,
    ) -> StoreResult<Vec<Message>> {
        let private = if include_private {
            ""
        } else {
            " AND private = 0"
        };
        let rows = sqlx::query(self.sql(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE conversation_id = ? AND seq > ?{private} ORDER BY seq LIMIT ?"
        )))
        .bind(conversation_id)
        .bind(after_seq)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(rows::message).collect::<Result<_, _>>()?)
    }

    /// The staff `seq` of the message the customer numbers `public_seq`
    /// (0 when there is none).
    pub async fn staff_seq_for_public(
        &self,
        conversation_id: i64,
        public_seq: i64,
    ) -> StoreResult<i64> {
        let row = sqlx::query(
            self.sql("SELECT seq FROM messages WHERE conversation_id = ? AND public_seq = ?"),
        )
        .bind(conversation_id)
        .bind(public_seq)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| r.try_get("seq")).transpose()?.unwrap_or(0))
    }

    /// The customer's numbering of the last public message at or before the
    /// staff `seq` (0 when there is none).
    pub async fn public_seq_at(&self, conversation_id: i64, seq: i64) -> StoreResult<i64> {
        let row = sqlx::query(self.sql(
            "SELECT MAX(public_seq) AS p FROM messages WHERE conversation_id = ? AND seq <= ?",
        ))
        .bind(conversation_id)
        .bind(seq)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get::<Option<i64>, _>("p")?.unwrap_or(0))
    }

    /// Counts a bot miss; returns the misses in a row so far.
    pub async fn count_bot_miss(&self, conversation_id: i64) -> StoreResult<i64> {
        let row = sqlx::query(self.sql(
            "UPDATE conversations SET bot_misses = bot_misses + 1 WHERE id = ? RETURNING bot_misses",
        ))
        .bind(conversation_id)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get("bot_misses")?)
    }

    pub async fn reset_bot_misses(&self, conversation_id: i64) -> StoreResult<()> {
        let _turn = self.write_turn().await;
        sqlx::query(
            self.sql("UPDATE conversations SET bot_misses = 0 WHERE id = ? AND bot_misses <> 0"),
        )
        .bind(conversation_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Moves a conversation from the bot to the queue and opens its ticket
    /// (or reopens the one it has). Returns false when the conversation was
    /// not with the bot (someone else escalated it first).
    pub async fn escalate(
        &self,
        conversation_id: i64,
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
                let visitor_id: i64 =
                    sqlx::query(self.sql("SELECT visitor_id FROM conversations WHERE id = ?"))
                        .bind(conversation_id)
                        .fetch_one(&mut *tx)
                        .await?
                        .try_get("visitor_id")?;
                let (ticket_id, number) = self
                    .insert_ticket(
                        &mut tx,
                        conversation_id,
                        visitor_id,
                        subject,
                        Priority::Normal,
                        now,
                    )
                    .await?;
                let mut opened = TicketActivity::system(actor_name).with_event(EventKind::Opened);
                opened.emails.extend(
                    self.opened_email(&mut tx, visitor_id, number, subject)
                        .await?,
                );
                self.insert_activity_events(&mut tx, ticket_id, &opened, now)
                    .await?;
                for email in &opened.emails {
                    self.insert_email(&mut tx, email).await?;
                }
            }
        }
        tx.commit().await?;
        Ok(true)
    }

    /// "We have your ticket" for a customer who left an email address.
    pub(super) async fn opened_email(
        &self,
        tx: &mut Transaction<'static, Any>,
        visitor_id: i64,
        number: i64,
        subject: &str,
    ) -> StoreResult<Option<NewEmail>> {
        let row = sqlx::query(self.sql(
            "SELECT COALESCE(u.email, v.email) AS email, COALESCE(u.name, v.name) AS name
             FROM visitors v LEFT JOIN users u ON u.id = v.user_id WHERE v.id = ?",
        ))
        .bind(visitor_id)
        .fetch_one(&mut **tx)
        .await?;
        let email: String = row.try_get("email")?;
        let name: String = row.try_get("name")?;
        Ok((!email.is_empty()).then(|| NewEmail {
            to: email,
            template: "ticket_opened",
            payload: serde_json::json!({"name": name, "ticket_number": number, "subject": subject}),
        }))
    }

    /// Gives a waiting, unassigned conversation to `agent`. Atomic: of two
    /// agents claiming at once (on any instance), exactly one gets `true`.
    pub async fn claim(&self, conversation_id: i64, agent: &User) -> StoreResult<bool> {
        Ok(self.take_waiting(conversation_id, agent, None).await? == Assignment::Assigned)
    }

    /// Gives a waiting conversation to `agent` only while the agent has
    /// fewer live conversations than their capacity, checked in the same
    /// transaction: a burst of handoffs cannot all land on one agent.
    /// With `Wait::No`, an agent another assignment holds right now is
    /// skipped (`AgentBusy`) instead of waited for, so that a burst of
    /// handoffs spreads over the agents instead of queueing on the first.
    pub async fn assign_within_capacity(
        &self,
        conversation_id: i64,
        agent: &User,
        wait: Wait,
    ) -> StoreResult<Assignment> {
        self.take_waiting(conversation_id, agent, Some(wait)).await
    }

    /// `capacity`: `None` claims regardless of the agent's load.
    async fn take_waiting(
        &self,
        conversation_id: i64,
        agent: &User,
        capacity: Option<Wait>,
    ) -> StoreResult<Assignment> {
        let within_capacity = capacity.is_some();
        let (mut tx, _turn) = self.write_tx().await?;
        if let Some(wait) = capacity
            && self.backend == Backend::Postgres
        {
            // Assignments to one agent take turns, so that two of them
            // cannot both see the last free place. (SQLite writers already
            // take turns.)
            let lock = match wait {
                // NO KEY UPDATE: two assignments still exclude each other,
                // but the key-share lock a message's foreign key takes on
                // its sender does not wait for this one (a group commit
                // holding the waiting conversation while it checks the
                // agent's key would otherwise deadlock with us).
                Wait::Yes => "SELECT id FROM users WHERE id = ? FOR NO KEY UPDATE",
                Wait::No => "SELECT id FROM users WHERE id = ? FOR NO KEY UPDATE SKIP LOCKED",
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
        conversation_id: i64,
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
        conversation_id: i64,
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
    pub async fn reopen(&self, conversation_id: i64, actor_name: &str) -> StoreResult<bool> {
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

    async fn ticket_id_of(
        &self,
        tx: &mut Transaction<'static, Any>,
        conversation_id: i64,
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

    /// Applies a change to the conversation's ticket, if it has one, in `tx`.
    async fn ticket_follows(
        &self,
        tx: &mut Transaction<'static, Any>,
        conversation_id: i64,
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

    /// Stamps the ticket's first response time if it has none yet. True
    /// when the conversation's ticket has one now (stamped here or before);
    /// false when it has no ticket.
    pub async fn note_first_response(&self, conversation_id: i64) -> StoreResult<bool> {
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

    /// The live queue: waiting, unassigned conversations, longest waiting first.
    pub async fn queue(&self) -> StoreResult<Vec<QueueEntry>> {
        let rows = sqlx::query(self.sql(
            "SELECT c.id, c.waiting_since, c.created_at, t.number AS ticket_number,
                    COALESCE(cu.name, v.name) AS customer_name,
                    COALESCE(cu.email, v.email) AS customer_email,
                    (SELECT m.body FROM messages m WHERE m.conversation_id = c.id AND m.sender_kind = 'customer'
                     ORDER BY m.seq DESC LIMIT 1) AS preview
             FROM conversations c
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

    /// Records an agent's presence (a heartbeat while their console is open).
    pub async fn set_presence(&self, agent: UserId, online: bool) -> StoreResult<()> {
        let _turn = self.write_turn().await;
        let status = if online { "online" } else { "away" };
        sqlx::query(self.sql(
            "INSERT INTO agent_presence (user_id, status, updated_at) VALUES (?, ?, ?)
             ON CONFLICT (user_id) DO UPDATE SET status = excluded.status, updated_at = excluded.updated_at",
        ))
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

    pub async fn any_agent_online(&self, fresh_ms: i64) -> StoreResult<bool> {
        let row = sqlx::query(self.sql(
            "SELECT COUNT(*) AS n FROM agent_presence WHERE status = 'online' AND updated_at > ?",
        ))
        .bind(now_ms() - fresh_ms)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get::<i64, _>("n")? > 0)
    }

    /// Remembers how far one side has read, in that side's numbering.
    pub async fn mark_read(
        &self,
        conversation_id: i64,
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

    /// Stores the customer's rating; a second rating replaces the first.
    pub async fn rate(
        &self,
        conversation_id: i64,
        score: i64,
        comment: &str,
        actor_name: &str,
    ) -> StoreResult<()> {
        let now = now_ms();
        let (mut tx, _turn) = self.write_tx().await?;
        sqlx::query(self.sql(
            "INSERT INTO csat_ratings (conversation_id, score, comment, created_at) VALUES (?, ?, ?, ?)
             ON CONFLICT (conversation_id) DO UPDATE SET score = excluded.score, comment = excluded.comment, created_at = excluded.created_at",
        ))
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
        tx.commit().await?;
        Ok(())
    }

    pub async fn rating(&self, conversation_id: i64) -> StoreResult<Option<(i64, String)>> {
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

/// SQL that is true when the customer `visitor_id` (an expression for a
/// conversation's visitor) would need an email about a message: they have
/// an address, and were last seen at or before `seen_after` (an expression
/// for a time in ms). The same test as `Chat::visitor_online`, over the
/// presence every instance writes; one text for every statement that
/// writes under it.
pub(super) fn customer_needs_email(visitor_id: &str, seen_after: &str) -> String {
    format!(
        "EXISTS (SELECT 1 FROM visitors v LEFT JOIN users cu ON cu.id = v.user_id
                 WHERE v.id = {visitor_id}
                   AND COALESCE(cu.email, v.email, '') <> ''
                   AND v.last_seen_at <= {seen_after})"
    )
}

/// What must hold at the moment a message is written: checked in the seq
/// update's own `WHERE`, so it holds on every backend without a lock.
#[derive(Clone, Copy, Default)]
pub(super) struct Conditions<'a> {
    /// The conversation is in one of these states.
    pub only_in: Option<&'a [ConversationStatus]>,
    /// The conversation is owned by this user.
    pub only_assignee: Option<i64>,
    /// The customer has no email address, or was seen after this time (ms).
    pub only_if_customer_seen_after: Option<i64>,
}

impl<'a> Conditions<'a> {
    pub fn of(message: &NewChatMessage<'a>) -> Conditions<'a> {
        Conditions {
            only_in: message.only_in,
            only_assignee: message.only_assignee,
            only_if_customer_seen_after: message.only_if_customer_seen_after,
        }
    }

    /// The extra `WHERE` of an `UPDATE conversations` (not aliased), with a
    /// placeholder per value, bound by [`Conditions::bind`]. Status names
    /// come from the enum, never from input.
    pub fn sql(&self) -> String {
        let mut condition = match self.only_in {
            Some(states) => format!(
                " AND status IN ({})",
                states
                    .iter()
                    .map(|s| format!("'{}'", s.as_str()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            None => String::new(),
        };
        if self.only_assignee.is_some() {
            condition.push_str(" AND assignee_id = ?");
        }
        if self.only_if_customer_seen_after.is_some() {
            condition.push_str(" AND NOT ");
            condition.push_str(&customer_needs_email("conversations.visitor_id", "?"));
        }
        condition
    }

    /// Binds the values of [`Conditions::sql`]'s placeholders, in order.
    pub fn bind<'q>(
        &self,
        mut query: sqlx::query::Query<'q, Any, sqlx::any::AnyArguments>,
    ) -> sqlx::query::Query<'q, Any, sqlx::any::AnyArguments> {
        if let Some(owner) = self.only_assignee {
            query = query.bind(owner);
        }
        if let Some(seen_after) = self.only_if_customer_seen_after {
            query = query.bind(seen_after);
        }
        query
    }
}
