//! A message's numbers: the next staff `seq` and customer `public_seq` of
//! its conversation, taken by one update of the conversation row whose
//! `WHERE` also checks what must hold when the message is written.

use sqlx::{Any, Row, Transaction};

use super::messages::NewChatMessage;
use super::rows::text_enum;
use super::{Store, StoreError, StoreResult};
use crate::model::{ConversationId, ConversationStatus, UserId};

impl Store {
    /// Takes the next staff `seq` and, for a public message, the next
    /// customer `public_seq`, in the caller's transaction.
    pub(super) async fn next_seqs(
        &self,
        tx: &mut Transaction<'static, Any>,
        conversation_id: ConversationId,
        private: bool,
        now: i64,
    ) -> StoreResult<(i64, Option<i64>)> {
        self.next_seqs_if(tx, conversation_id, private, now, Default::default())
            .await?
            .map(|(seq, public, _)| (seq, public))
            .ok_or(StoreError::NotFound)
    }

    /// [`Store::next_seqs`] under conditions checked in the same statement
    /// (so they hold at the moment of the write on every backend).
    /// Also returns the conversation's status as the write saw it.
    pub(super) async fn next_seqs_if(
        &self,
        tx: &mut Transaction<'static, Any>,
        conversation_id: ConversationId,
        private: bool,
        now: i64,
        conditions: Conditions<'_>,
    ) -> StoreResult<Option<(i64, Option<i64>, ConversationStatus)>> {
        let condition = conditions.sql();
        const TAKEN: &str = "last_seq, last_public_seq, status";
        let query = sqlx::query(self.sql(&self.backend.returning(
            &format!(
                "UPDATE conversations SET last_seq = last_seq + 1,
                        last_public_seq = last_public_seq + ?, updated_at = ?
                 WHERE id = ?{condition}"
            ),
            TAKEN,
        )))
        .bind(if private { 0_i64 } else { 1 })
        .bind(now)
        .bind(conversation_id);
        // Built only where it is run (MariaDB/MySQL): this is every message's path.
        let read_back = || {
            sqlx::query(self.sql(&format!("SELECT {TAKEN} FROM conversations WHERE id = ?")))
                .bind(conversation_id)
        };
        let Some(row) = self
            .updated_row(conditions.bind(query), read_back, tx)
            .await?
        else {
            return Ok(None);
        };
        let public: i64 = row.try_get("last_public_seq")?;
        Ok(Some((
            row.try_get("last_seq")?,
            (!private).then_some(public),
            text_enum(&row, "status", ConversationStatus::parse)?,
        )))
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
    pub only_assignee: Option<UserId>,
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
