//! Chat messages: the three ways one is appended (in a transaction, in one
//! statement, or in a group commit on PostgreSQL), all under one delivery
//! contract, and the reads of a conversation's thread.
//!
//! The contract (the storage side of the delivery model):
//! - Every message gets the next `seq` of its conversation in the same
//!   transaction as its insert (gap-free, increasing; see `seqs`).
//! - A retried send with the same `client_msg_id` returns the stored message.

use sqlx::{Any, Row, Transaction};

use super::Backend;
use super::append_batch::{BatchRow, Outcome};
use super::outbox::NewEmail;
use super::rows::{self, MESSAGE_COLUMNS, text_enum};
use super::seqs::Conditions;
use super::{Store, StoreError, StoreResult, now_ms};
use crate::model::{
    AttachmentRef, ConversationId, ConversationStatus, Message, MessageId, SenderKind, UserId,
};

/// The webhook journal's row for each message of `m` (a CTE of the
/// PostgreSQL statements that insert messages), written only while an
/// enabled endpoint wants it: as [`Store::journal`] does on the other paths.
pub(super) const MESSAGE_JOURNAL: &str = "
    INSERT INTO webhook_events (kind, conversation_id, refs, created_at)
    SELECT 'message.created', m.conversation_id,
           json_build_object('message_id', m.id, 'private', m.private)::text, m.created_at
    FROM m
    WHERE EXISTS (SELECT 1 FROM webhook_endpoints e
                  WHERE e.enabled = 1 AND e.events LIKE '%,message.created,%'
                    AND (m.private = 0 OR e.include_private = 1))";

/// A message to append to a conversation.
pub struct NewChatMessage<'a> {
    pub sender_kind: SenderKind,
    pub sender_user_id: Option<UserId>,
    pub sender_name: &'a str,
    pub body: &'a str,
    pub private: bool,
    pub client_msg_id: &'a str,
    /// The message is stored only while the conversation is in one of these
    /// states (the bot may speak only while the conversation is `bot`).
    pub only_in: Option<&'a [ConversationStatus]>,
    /// The message is stored only while this user owns the conversation
    /// (an agent's reply must not land after a transfer away).
    pub only_assignee: Option<UserId>,
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

/// A message row as [`Store::insert_message_row`] writes it.
pub(super) struct MessageRow<'a> {
    pub sender_kind: SenderKind,
    pub sender_user_id: Option<UserId>,
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
    fn batch_row(&self, conversation_id: ConversationId) -> BatchRow<'_> {
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
            owner: self.only_assignee.map(|u| u.0),
            seen_after: self.only_if_customer_seen_after,
            sender_kind: self.sender_kind.as_str(),
            sender_user_id: self.sender_user_id.map(|u| u.0),
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

impl Store {
    /// Appends a message under the delivery contract (see the module docs).
    pub async fn append_message(
        &self,
        conversation_id: ConversationId,
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
        // InnoDB may end one of two transactions that wait on each other
        // (a message's foreign-key check on its sender against an
        // assignment that holds that agent's row): the answer it documents
        // is to run the transaction again. Nothing of it was kept.
        self.retrying_deadlocks(|| self.append_in_transaction(conversation_id, &message))
            .await
    }

    /// The general path of [`Store::append_message`]: the seq update and
    /// the insert in one transaction.
    async fn append_in_transaction(
        &self,
        conversation_id: ConversationId,
        message: &NewChatMessage<'_>,
    ) -> StoreResult<Appended> {
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
                Conditions::of(message),
            )
            .await?
        else {
            tx.rollback().await?;
            // A retry of a message that was stored before the state changed
            // (a reply retried after a transfer) is still that message.
            return self
                .retry_or(conversation_id, message, || Ok(Appended::Refused))
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
                self.retry_or(conversation_id, message, || {
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
        conversation_id: ConversationId,
        (seq, public_seq): (i64, Option<i64>),
        row: &MessageRow<'_>,
        now: i64,
    ) -> StoreResult<Message> {
        let insert = sqlx::query(self.sql(&self.backend.returning(
            "INSERT INTO messages (conversation_id, seq, public_seq, sender_kind, sender_user_id, sender_name, body, private, client_msg_id, created_at, attachment, options)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            MESSAGE_COLUMNS,
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
        .bind(rows::options_json(row.options));
        let stored = match self.backend {
            // MariaDB/MySQL return only the new id from an INSERT; every
            // other column is what was just bound (strict mode refuses
            // rather than trims), so the row is not read back: one round
            // trip less per message on the chat's hot path.
            Backend::Mysql => Message {
                id: MessageId(self.inserted_id(insert, tx).await?),
                conversation_id,
                seq,
                public_seq,
                sender_kind: row.sender_kind,
                sender_user_id: row.sender_user_id,
                sender_name: row.sender_name.to_string(),
                body: row.body.to_string(),
                private: row.private,
                client_msg_id: row.client_msg_id.to_string(),
                created_at: now,
                attachment: row.attachment.cloned(),
                options: row.options.to_vec(),
            },
            Backend::Sqlite | Backend::Postgres => rows::message(
                &self
                    .inserted_row(insert, "messages", MESSAGE_COLUMNS, tx)
                    .await?,
            )?,
        };
        let refs =
            serde_json::json!({ "message_id": stored.id.0, "private": i64::from(row.private) });
        self.journal(
            tx,
            "message.created",
            Some(conversation_id),
            refs,
            row.private,
        )
        .await?;
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
        conversation_id: ConversationId,
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
             ), j AS ({MESSAGE_JOURNAL})
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
        message_id: MessageId,
        attachment_id: &str,
        conversation_id: ConversationId,
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
        conversation_id: ConversationId,
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

    /// One message by its id (a webhook's `message.created`).
    pub async fn message_by_id(&self, id: MessageId) -> StoreResult<Option<Message>> {
        let row = sqlx::query(self.sql(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = ?"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(rows::message).transpose()?)
    }

    /// The message sent with `client_msg_id` in the conversation, if any.
    pub async fn message_by_client_id(
        &self,
        conversation_id: ConversationId,
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
        conversation_id: ConversationId,
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
        conversation_id: ConversationId,
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
    pub async fn public_seq_at(
        &self,
        conversation_id: ConversationId,
        seq: i64,
    ) -> StoreResult<i64> {
        let row = sqlx::query(self.sql(
            "SELECT MAX(public_seq) AS p FROM messages WHERE conversation_id = ? AND seq <= ?",
        ))
        .bind(conversation_id)
        .bind(seq)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get::<Option<i64>, _>("p")?.unwrap_or(0))
    }

    /// The thread of a conversation in `seq` order; private notes only when asked.
    pub async fn messages(
        &self,
        conversation_id: ConversationId,
        include_private: bool,
    ) -> StoreResult<Vec<Message>> {
        let sql = if include_private {
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE conversation_id = ? ORDER BY seq"
        } else {
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE conversation_id = ? AND private = 0 ORDER BY seq"
        };
        let sql = sql.replace("{MESSAGE_COLUMNS}", MESSAGE_COLUMNS);
        let rows = sqlx::query(self.sql(&sql))
            .bind(conversation_id)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(rows::message).collect::<Result<_, _>>()?)
    }
}
