//! Tickets, their conversation thread and their timeline.
//!
//! Every change to a ticket goes through [`Store::record_ticket_activity`],
//! one transaction that writes the message (with the next `seq` of its
//! conversation), the ticket's new fields and the timeline entries together.

use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use super::chat::MessageRow;
use super::outbox::NewEmail;
use super::rows::{self, MESSAGE_COLUMNS, flag, text_enum};
use super::{Store, StoreError, StoreResult, now_ms};
use crate::auth::random_token;
use crate::model::AttachmentRef;
use crate::model::{ConversationStatus, Priority, SenderKind, TicketStatus, User, UserId};
use crate::model::{EventKind, Message, Person, Ticket, TicketEvent};

/// Which tickets to list. Built by the edge from query parameters; the
/// domain narrows `customer` for customers.
#[derive(Debug, Clone, Default)]
pub struct TicketFilter {
    pub customer: Option<UserId>,
    /// With `customer`: their verified email, whose chats are theirs too.
    pub customer_email: Option<String>,
    pub status: Option<TicketStatus>,
    pub priority: Option<Priority>,
    pub assignee: AssigneeFilter,
    /// A ticket number (`1042` or `#1042`), or words of the subject or the
    /// customer's email.
    pub query: Option<String>,
    pub limit: i64,
    pub offset: i64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AssigneeFilter {
    #[default]
    Anyone,
    Unassigned,
    Me,
    User(UserId),
}

struct NewMessage {
    sender_kind: SenderKind,
    body: String,
    private: bool,
    attachment: Option<AttachmentRef>,
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

const TICKET_SELECT: &str = "
SELECT t.id, t.number, t.conversation_id, t.subject, t.status, t.priority,
       t.created_at, t.updated_at, t.first_response_at, t.resolved_at,
       v.user_id AS customer_user_id,
       COALESCE(cu.name, v.name) AS customer_name,
       COALESCE(cu.email, v.email) AS customer_email,
       t.assignee_id, a.name AS assignee_name, a.email AS assignee_email
FROM tickets t
JOIN visitors v ON v.id = t.customer_id
LEFT JOIN users cu ON cu.id = v.user_id
LEFT JOIN users a ON a.id = t.assignee_id";

fn ticket(row: &AnyRow) -> Result<Ticket, sqlx::Error> {
    let assignee_id: Option<i64> = row.try_get("assignee_id")?;
    Ok(Ticket {
        id: row.try_get("id")?,
        number: row.try_get("number")?,
        conversation_id: row.try_get("conversation_id")?,
        subject: row.try_get("subject")?,
        status: text_enum(row, "status", TicketStatus::parse)?,
        priority: text_enum(row, "priority", Priority::parse)?,
        customer: Person {
            id: row
                .try_get::<Option<i64>, _>("customer_user_id")?
                .map(UserId),
            name: row.try_get("customer_name")?,
            email: row.try_get("customer_email")?,
        },
        assignee: match assignee_id {
            Some(id) => Some(Person {
                id: Some(UserId(id)),
                name: row.try_get("assignee_name")?,
                email: row.try_get("assignee_email")?,
            }),
            None => None,
        },
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        first_response_at: row.try_get("first_response_at")?,
        resolved_at: row.try_get("resolved_at")?,
    })
}

fn event(row: &AnyRow) -> Result<TicketEvent, sqlx::Error> {
    Ok(TicketEvent {
        at: row.try_get("at")?,
        actor: row.try_get("actor_name")?,
        kind: text_enum(row, "kind", EventKind::parse)?,
        old_value: row.try_get("old_value")?,
        new_value: row.try_get("new_value")?,
        private: flag(row, "private")?,
    })
}

/// Escapes `%`, `_` and `\` so that user input matches literally in LIKE.
fn like_pattern(words: &str) -> String {
    let mut out = String::from("%");
    for c in words.trim().to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// The conversation status that mirrors a ticket's status.
fn conversation_status(status: TicketStatus, assigned: bool) -> ConversationStatus {
    match status {
        TicketStatus::Resolved => ConversationStatus::Resolved,
        TicketStatus::Closed => ConversationStatus::Closed,
        TicketStatus::Open | TicketStatus::Pending if assigned => ConversationStatus::Live,
        TicketStatus::Open | TicketStatus::Pending => ConversationStatus::Waiting,
    }
}

impl Store {
    /// Opens a ticket from the portal: the customer's visitor record, a
    /// conversation waiting for an agent, the first message (seq 1), the
    /// next ticket number and the "opened" timeline entry, in one transaction.
    pub async fn create_ticket(
        &self,
        site_id: i64,
        customer: &User,
        subject: &str,
        body: &str,
        priority: Priority,
    ) -> StoreResult<Ticket> {
        let now = now_ms();
        let (mut tx, _turn) = self.write_tx().await?;

        sqlx::query(self.sql(
            "INSERT INTO visitors (site_id, user_id, name, email, created_at) VALUES (?, ?, ?, ?, ?)
             ON CONFLICT (site_id, user_id) DO NOTHING",
        ))
        .bind(site_id)
        .bind(customer.id.0)
        .bind(&customer.name)
        .bind(&customer.email)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let visitor_id: i64 =
            sqlx::query(self.sql("SELECT id FROM visitors WHERE site_id = ? AND user_id = ?"))
                .bind(site_id)
                .bind(customer.id.0)
                .fetch_one(&mut *tx)
                .await?
                .try_get("id")?;

        let conversation_id: i64 = sqlx::query(self.sql(
            "INSERT INTO conversations (site_id, visitor_id, status, last_seq, last_public_seq, waiting_since, created_at, updated_at)
             VALUES (?, ?, 'waiting', 1, 1, ?, ?, ?) RETURNING id",
        ))
        .bind(site_id)
        .bind(visitor_id)
        .bind(now)
        .bind(now)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?
        .try_get("id")?;
        self.insert_message(
            &mut tx,
            conversation_id,
            (1, Some(1)),
            (Some(customer.id.0), &customer.name),
            &NewMessage {
                sender_kind: SenderKind::Customer,
                body: body.to_string(),
                private: false,
                attachment: None,
            },
            now,
        )
        .await?;

        let (ticket_id, number) = self
            .insert_ticket(&mut tx, conversation_id, visitor_id, subject, priority, now)
            .await?;
        let mut opened = TicketActivity::new(customer).with_event(EventKind::Opened);
        opened.emails.extend(
            self.opened_email(&mut tx, visitor_id, number, subject)
                .await?,
        );
        self.insert_activity_events(&mut tx, ticket_id, &opened, now)
            .await?;
        for email in &opened.emails {
            self.insert_email(&mut tx, email).await?;
        }
        tx.commit().await?;

        self.ticket_by_number(number)
            .await?
            .ok_or(StoreError::NotFound)
    }

    /// Inserts a ticket with the next number; returns (id, number).
    pub(super) async fn insert_ticket(
        &self,
        tx: &mut Transaction<'static, Any>,
        conversation_id: i64,
        visitor_id: i64,
        subject: &str,
        priority: Priority,
        now: i64,
    ) -> StoreResult<(i64, i64)> {
        // The counter row is locked until commit, so concurrent creates on
        // PostgreSQL get distinct, consecutive numbers.
        let number: i64 = sqlx::query(self.sql(
            "UPDATE counters SET value = value + 1 WHERE name = 'ticket_number' RETURNING value",
        ))
        .fetch_one(&mut **tx)
        .await?
        .try_get("value")?;
        let ticket_id: i64 = sqlx::query(self.sql(
            "INSERT INTO tickets (number, conversation_id, customer_id, subject, status, priority, created_at, updated_at)
             VALUES (?, ?, ?, ?, 'open', ?, ?, ?) RETURNING id",
        ))
        .bind(number)
        .bind(conversation_id)
        .bind(visitor_id)
        .bind(subject)
        .bind(priority.as_str())
        .bind(now)
        .bind(now)
        .fetch_one(&mut **tx)
        .await?
        .try_get("id")?;
        Ok((ticket_id, number))
    }

    pub async fn ticket_by_number(&self, number: i64) -> StoreResult<Option<Ticket>> {
        let row = sqlx::query(self.sql(&format!("{TICKET_SELECT} WHERE t.number = ?")))
            .bind(number)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(ticket).transpose()?)
    }

    /// A page of tickets, most recently updated first.
    ///
    /// The page's ids are chosen from `tickets` alone (through its indexes),
    /// and only those rows are joined for names and emails: an `OFFSET` deep
    /// in the list skips index entries, not joined rows. A customer's
    /// tickets are found through their visitor records, not by testing
    /// every ticket's customer. (Measured on 100,000 tickets:
    /// `load-tests/pages`, docs/benchmarks.md.)
    pub async fn list_tickets(&self, filter: &TicketFilter) -> StoreResult<Vec<Ticket>> {
        // The WHERE clause is assembled from fixed fragments only; every
        // value the user typed is a bound parameter.
        enum Arg {
            Text(String),
            Int(i64),
        }
        let query = filter
            .query
            .as_deref()
            .map(str::trim)
            .filter(|q| !q.is_empty());
        let number = query.and_then(|q| q.trim_start_matches('#').parse::<i64>().ok());
        let mut sql = String::from("SELECT t.id FROM tickets t WHERE 1 = 1");
        let mut args: Vec<Arg> = Vec::new();
        let mut push = |fragment: &str, arg: Option<Arg>| {
            sql.push_str(fragment);
            args.extend(arg);
        };
        if let Some(customer) = filter.customer {
            push(
                " AND t.customer_id IN (SELECT id FROM visitors WHERE user_id = ?",
                Some(Arg::Int(customer.0)),
            );
            // A verified address also brings the chats it was used in:
            // visitors whose account, or (without one) whose own email, it is.
            if let Some(email) = &filter.customer_email {
                push(
                    " UNION SELECT id FROM visitors WHERE user_id IS NULL AND email = ?",
                    Some(Arg::Text(email.clone())),
                );
                push(
                    " UNION SELECT v2.id FROM visitors v2 JOIN users u2 ON u2.id = v2.user_id WHERE u2.email = ?",
                    Some(Arg::Text(email.clone())),
                );
            }
            push(")", None);
        }
        if let Some(status) = filter.status {
            push(" AND t.status = ?", Some(Arg::Text(status.as_str().into())));
        }
        if let Some(priority) = filter.priority {
            push(
                " AND t.priority = ?",
                Some(Arg::Text(priority.as_str().into())),
            );
        }
        match filter.assignee {
            AssigneeFilter::Anyone => {}
            AssigneeFilter::Unassigned => push(" AND t.assignee_id IS NULL", None),
            AssigneeFilter::User(id) => push(" AND t.assignee_id = ?", Some(Arg::Int(id.0))),
            // The domain resolves "me" before asking; unresolved, it matches nothing.
            AssigneeFilter::Me => push(" AND 1 = 0", None),
        }
        match (query, number) {
            (_, Some(number)) => push(" AND t.number = ?", Some(Arg::Int(number))),
            (Some(words), None) => {
                // The customers whose email matches are found once, not
                // joined to every ticket the search looks at.
                // SQLite's LIKE ignores ASCII case as its LOWER() folds it,
                // without LOWER's string per row (each one a turn on
                // SQLite's global allocator lock).
                let pattern = like_pattern(words);
                let (subject, email) = match self.backend {
                    super::Backend::Sqlite => ("t.subject", "COALESCE(cu.email, v.email)"),
                    super::Backend::Postgres => {
                        ("LOWER(t.subject)", "LOWER(COALESCE(cu.email, v.email))")
                    }
                };
                push(
                    &format!(" AND ({subject} LIKE ? ESCAPE '\\'"),
                    Some(Arg::Text(pattern.clone())),
                );
                push(
                    &format!(
                        " OR t.customer_id IN (SELECT v.id FROM visitors v LEFT JOIN users cu ON cu.id = v.user_id
                         WHERE {email} LIKE ? ESCAPE '\\'))"
                    ),
                    Some(Arg::Text(pattern)),
                );
            }
            (None, None) => {}
        }
        let limit = if filter.limit <= 0 {
            50
        } else {
            filter.limit.min(200)
        };
        // A text search reads every ticket: `+` keeps SQLite from doing so
        // in the index's order, a random table read per ticket (a rare
        // word took 180 ms instead of 25 on 100,000 tickets).
        let order = if query.is_some() && number.is_none() {
            " ORDER BY +t.updated_at DESC, t.id DESC LIMIT ? OFFSET ?"
        } else {
            " ORDER BY t.updated_at DESC, t.id DESC LIMIT ? OFFSET ?"
        };
        push(order, Some(Arg::Int(limit)));
        args.push(Arg::Int(filter.offset.max(0)));
        let sql =
            format!("{TICKET_SELECT} WHERE t.id IN ({sql}) ORDER BY t.updated_at DESC, t.id DESC");
        let mut query = sqlx::query(self.sql(&sql));
        for arg in args {
            query = match arg {
                Arg::Text(text) => query.bind(text),
                Arg::Int(int) => query.bind(int),
            };
        }
        let rows = query.fetch_all(&self.pool).await?;
        Ok(rows.iter().map(ticket).collect::<Result<_, _>>()?)
    }

    /// The thread of a conversation in `seq` order; private notes only when asked.
    pub async fn messages(
        &self,
        conversation_id: i64,
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

    /// The timeline, oldest first; private entries only when asked.
    pub async fn ticket_events(
        &self,
        ticket_id: i64,
        include_private: bool,
    ) -> StoreResult<Vec<TicketEvent>> {
        let sql = if include_private {
            "SELECT at, actor_name, kind, old_value, new_value, private
             FROM ticket_events WHERE ticket_id = ? ORDER BY id"
        } else {
            "SELECT at, actor_name, kind, old_value, new_value, private
             FROM ticket_events WHERE ticket_id = ? AND private = 0 ORDER BY id"
        };
        let rows = sqlx::query(self.sql(sql))
            .bind(ticket_id)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(event).collect::<Result<_, _>>()?)
    }

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
        conversation_id: i64,
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
        let mut written = None;
        if let Some(message) = &activity.message {
            let seqs = self
                .next_seqs(tx, conversation_id, message.private, now)
                .await?;
            let author = (activity.actor.map(|a| a.0), activity.actor_name.as_str());
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
        Ok(written)
    }

    /// Keeps the conversation's status and assignee in step with its ticket.
    async fn mirror_conversation(
        &self,
        tx: &mut Transaction<'static, Any>,
        ticket_id: i64,
        conversation_id: i64,
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

    /// Takes the next staff `seq` and, for a public message, the next
    /// customer `public_seq`, in the caller's transaction.
    pub(super) async fn next_seqs(
        &self,
        tx: &mut Transaction<'static, Any>,
        conversation_id: i64,
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
        conversation_id: i64,
        private: bool,
        now: i64,
        conditions: super::chat::Conditions<'_>,
    ) -> StoreResult<Option<(i64, Option<i64>, ConversationStatus)>> {
        let condition = conditions.sql();
        let query = sqlx::query(self.sql(&format!(
            "UPDATE conversations SET last_seq = last_seq + 1,
                    last_public_seq = last_public_seq + ?, updated_at = ?
             WHERE id = ?{condition} RETURNING last_seq, last_public_seq, status"
        )))
        .bind(if private { 0_i64 } else { 1 })
        .bind(now)
        .bind(conversation_id);
        let Some(row) = conditions.bind(query).fetch_optional(&mut **tx).await? else {
            return Ok(None);
        };
        let public: i64 = row.try_get("last_public_seq")?;
        Ok(Some((
            row.try_get("last_seq")?,
            (!private).then_some(public),
            text_enum(&row, "status", ConversationStatus::parse)?,
        )))
    }

    async fn insert_message(
        &self,
        tx: &mut Transaction<'static, Any>,
        conversation_id: i64,
        (seq, public_seq): (i64, Option<i64>),
        (sender_user_id, sender_name): (Option<i64>, &str),
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
    /// (PostgreSQL; SQLite's write transaction already holds everything).
    pub(super) async fn lock_conversation(
        &self,
        tx: &mut Transaction<'static, Any>,
        conversation_id: i64,
    ) -> StoreResult<()> {
        if self.backend == super::Backend::Postgres {
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns_escape_wildcards() {
        assert_eq!(like_pattern(" Printer_50% "), "%printer\\_50\\%%");
    }

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
