//! The generator's building blocks: rows collected per table and written
//! as multi-row `INSERT`s of up to a few thousand rows, parents first
//! (one statement per batch instead of one per row).

use sqlx::{Any, Transaction};

use crate::store::{Store, StoreResult};

/// Bound parameters per statement: under SQLite's 32,766 and PostgreSQL's 65,535.
const MAX_PARAMS: usize = 30_000;
const MAX_ROWS: usize = 2_000;

pub(super) enum Value {
    Int(Option<i64>),
    Text(Option<String>),
}

impl From<i64> for Value {
    fn from(v: i64) -> Value {
        Value::Int(Some(v))
    }
}

impl From<Option<i64>> for Value {
    fn from(v: Option<i64>) -> Value {
        Value::Int(v)
    }
}

impl From<String> for Value {
    fn from(v: String) -> Value {
        Value::Text(Some(v))
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Value {
        Value::Text(Some(v.to_string()))
    }
}

impl From<Option<String>> for Value {
    fn from(v: Option<String>) -> Value {
        Value::Text(v)
    }
}

/// Rows for one table, written as multi-row INSERTs.
pub(super) struct Batch {
    table: &'static str,
    columns: &'static [&'static str],
    values: Vec<Value>,
    rows_per_statement: usize,
    pub written: u64,
}

impl Batch {
    pub(super) fn new(table: &'static str, columns: &'static [&'static str]) -> Batch {
        Batch {
            table,
            columns,
            values: Vec::new(),
            rows_per_statement: (MAX_PARAMS / columns.len()).min(MAX_ROWS),
            written: 0,
        }
    }

    pub(super) fn row<const N: usize>(&mut self, values: [Value; N]) {
        debug_assert_eq!(N, self.columns.len(), "{}", self.table);
        self.values.extend(values);
    }

    fn pending_rows(&self) -> usize {
        self.values.len() / self.columns.len()
    }

    /// Writes every pending row.
    pub(super) async fn flush(
        &mut self,
        store: &Store,
        tx: &mut Transaction<'static, Any>,
    ) -> StoreResult<()> {
        let width = self.columns.len();
        while self.pending_rows() > 0 {
            let rows = self.pending_rows().min(self.rows_per_statement);
            let one = format!("({})", vec!["?"; width].join(", "));
            let sql = format!(
                "INSERT INTO {} ({}) VALUES {}",
                self.table,
                self.columns.join(", "),
                vec![one; rows].join(", ")
            );
            let mut query = sqlx::query(store.sql(&sql));
            for value in self.values.drain(..rows * width) {
                query = match value {
                    Value::Int(v) => query.bind(v),
                    Value::Text(v) => query.bind(v),
                };
            }
            query.execute(&mut **tx).await?;
            self.written += rows as u64;
        }
        Ok(())
    }
}

/// The tables a seed writes, parents first.
pub(super) struct Batches {
    pub conversations: Batch,
    pub tickets: Batch,
    pub messages: Batch,
    pub events: Batch,
    pub ratings: Batch,
}

impl Batches {
    pub(super) fn new() -> Batches {
        Batches {
            conversations: Batch::new(
                "conversations",
                &[
                    "id",
                    "site_id",
                    "visitor_id",
                    "status",
                    "assignee_id",
                    "last_seq",
                    "last_public_seq",
                    "agent_read_seq",
                    "customer_read_seq",
                    "waiting_since",
                    "created_at",
                    "updated_at",
                ],
            ),
            tickets: Batch::new(
                "tickets",
                &[
                    "id",
                    "number",
                    "conversation_id",
                    "customer_id",
                    "subject",
                    "status",
                    "priority",
                    "assignee_id",
                    "created_at",
                    "updated_at",
                    "first_response_at",
                    "resolved_at",
                ],
            ),
            messages: Batch::new(
                "messages",
                &[
                    "conversation_id",
                    "seq",
                    "public_seq",
                    "sender_kind",
                    "sender_user_id",
                    "sender_name",
                    "body",
                    "private",
                    "client_msg_id",
                    "created_at",
                ],
            ),
            events: Batch::new(
                "ticket_events",
                &[
                    "ticket_id",
                    "at",
                    "actor_user_id",
                    "actor_name",
                    "kind",
                    "old_value",
                    "new_value",
                    "private",
                ],
            ),
            ratings: Batch::new(
                "csat_ratings",
                &["conversation_id", "score", "comment", "created_at"],
            ),
        }
    }

    pub(super) async fn flush(
        &mut self,
        store: &Store,
        tx: &mut Transaction<'static, Any>,
    ) -> StoreResult<()> {
        self.conversations.flush(store, tx).await?;
        self.tickets.flush(store, tx).await?;
        self.messages.flush(store, tx).await?;
        self.events.flush(store, tx).await?;
        self.ratings.flush(store, tx).await
    }
}
