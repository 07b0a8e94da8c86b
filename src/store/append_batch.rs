//! Group commit for chat messages on PostgreSQL.
//!
//! One statement and one commit per message made the database spend more on
//! each statement and commit than on the rows themselves (docs/benchmarks.md).
//! Messages that arrive while a write is in flight now go out together: one
//! statement, one commit, for up to [`MAX_BATCH`] messages of different
//! conversations. A message waits for the write ahead of it and, while the
//! lane is busy, up to [`LINGER`] more for company; alone, it goes out at
//! once, so a quiet system sees no added delay.
//!
//! The contract is `Store::append_message`'s. Each row carries its own
//! conditions; a row they refuse, or whose `client_msg_id` is stored already,
//! is left out and its sender finds out why (`retry_or`). A batch is one
//! statement, so it commits or fails as a whole: when it fails, nothing of it
//! was written, and the lane writes its messages again one by one, so that
//! the failure stays with the message that caused it.
//!
//! Conversations are spread over [`LANES`] lanes by id, each writing one
//! batch at a time, so a conversation's messages go out in arrival order.
//! Every batch locks its conversations in id order before it updates them,
//! so batches of other lanes and other instances wait for each other rather
//! than deadlock.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;
use sqlx::AnyPool;
use sqlx::any::AnyRow;
use sqlx::{Row, SqlSafeStr as _, SqlStr};
use tokio::sync::{mpsc, oneshot};

use super::messages::MESSAGE_JOURNAL;
use super::rows::{self, MESSAGE_COLUMNS, text_enum};
use super::{Backend, now_ms};
use crate::model::Message;
use crate::model::{ConversationId, ConversationStatus};

/// Lanes per process. Few, so that batches form as soon as the database is
/// the bottleneck; more than one, so that a lock wait does not stop all.
const LANES: usize = 2;
/// Messages per statement at most.
pub(super) const MAX_BATCH: usize = 64;
/// While a lane is busy (its last batch held more than one message), how
/// long it waits for more before writing: fewer, larger commits.
const LINGER: std::time::Duration = std::time::Duration::from_millis(2);
/// Messages queued per lane before senders wait (back-pressure).
const QUEUE: usize = 1024;

/// A stored message, with its conversation's status as the write saw it.
type Stored = Result<Box<(Message, ConversationStatus)>, sqlx::Error>;

/// What became of a message handed to the batcher.
pub(super) enum Outcome {
    Stored(Stored),
    /// Its batch committed without it: the conversation's state refused it,
    /// or it does not exist (the caller tells a retry from a refusal).
    NotStored,
    /// Its batch wrote nothing (or the batcher is gone): write it alone.
    WriteAlone,
}

/// One message's row as the statement reads it (`json_to_recordset`).
#[derive(Serialize)]
pub(super) struct BatchRow<'a> {
    pub conversation_id: ConversationId,
    /// 1 if customers see it (it takes the next public seq), else 0.
    pub public: i64,
    /// Comma-separated statuses the conversation must be in; none: any.
    pub allowed: Option<String>,
    /// The agent who must own the conversation; none: anyone.
    pub owner: Option<i64>,
    /// The customer must have no email address or have been seen after
    /// this time (ms); none: no such condition.
    pub seen_after: Option<i64>,
    pub sender_kind: &'a str,
    pub sender_user_id: Option<i64>,
    pub sender_name: &'a str,
    pub body: &'a str,
    pub client_msg_id: &'a str,
    /// A bot question's buttons, as a JSON array inside the row: the
    /// statement's TEXT column takes the array's text, the same JSON the
    /// other write paths store. Left out when there are none (every other
    /// message), which the statement reads as NULL: ordinary rows carry
    /// not a byte more.
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    pub options: &'a [String],
}

/// Group commit so far, for `/metrics` and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchStats {
    /// Statements that committed.
    pub batches: u64,
    /// Messages they stored.
    pub messages: u64,
    /// Batches that failed as a whole (their messages were then written one
    /// by one).
    pub failures: u64,
}

struct Job {
    conversation_id: ConversationId,
    /// The row, serialized by the sender (no copy of the body kept).
    json: String,
    reply: oneshot::Sender<Outcome>,
}

#[derive(Default)]
struct Stats {
    batches: AtomicU64,
    messages: AtomicU64,
    failures: AtomicU64,
}

impl Stats {
    fn count(&self, rows: &[AnyRow]) {
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.messages
            .fetch_add(rows.len() as u64, Ordering::Relaxed);
    }
}

/// The lanes' senders. Dropping the last clone of the store drops them, and
/// the lanes end.
pub(super) struct AppendBatcher {
    lanes: Vec<mpsc::Sender<Job>>,
    stats: Arc<Stats>,
}

impl AppendBatcher {
    /// Starts the lanes (PostgreSQL only: SQLite has one writer anyway).
    pub(super) fn start(pool: &AnyPool) -> AppendBatcher {
        let stats = Arc::new(Stats::default());
        let sql = batch_statement();
        let lanes = (0..LANES)
            .map(|_| {
                let (tx, rx) = mpsc::channel(QUEUE);
                tokio::spawn(run_lane(pool.clone(), rx, sql.clone(), stats.clone()));
                tx
            })
            .collect();
        AppendBatcher { lanes, stats }
    }

    /// Hands `row` to its conversation's lane and waits for its batch.
    pub(super) async fn append(&self, row: &BatchRow<'_>) -> Outcome {
        let json = serde_json::to_string(row).expect("a message row serializes");
        let (reply, outcome) = oneshot::channel();
        let lane = &self.lanes[lane_of(row.conversation_id)];
        let job = Job {
            conversation_id: row.conversation_id,
            json,
            reply,
        };
        if lane.send(job).await.is_err() {
            return Outcome::WriteAlone;
        }
        outcome.await.unwrap_or(Outcome::WriteAlone)
    }

    /// Messages waiting for their lane (not counting the batches in flight).
    pub(super) fn queued(&self) -> usize {
        self.lanes
            .iter()
            .map(|lane| lane.max_capacity() - lane.capacity())
            .sum()
    }

    /// Statements committed, messages they stored, batches that failed.
    pub(super) fn stats(&self) -> BatchStats {
        BatchStats {
            batches: self.stats.batches.load(Ordering::Relaxed),
            messages: self.stats.messages.load(Ordering::Relaxed),
            failures: self.stats.failures.load(Ordering::Relaxed),
        }
    }
}

/// The lane that writes a conversation's messages.
pub(super) fn lane_of(conversation_id: ConversationId) -> usize {
    conversation_id.0.rem_euclid(LANES as i64) as usize
}

/// The batch statement: one seq update per conversation (at most one message
/// of each per batch), the inserts, and the rows back, joined by
/// conversation. The same conditions as `seqs::Conditions`, read per row.
///
/// - `l` locks the batch's conversations in id order before any is updated:
///   batches of other instances (and this one's other lane) lock in the same
///   order, so they wait for each other instead of deadlocking.
/// - A message whose `client_msg_id` is stored already (a resend after a lost
///   ack) is left out rather than failing the whole statement on the unique
///   index; its sender finds the stored one (`retry_or`).
fn batch_statement() -> SqlStr {
    let customer_needs_email =
        super::seqs::customer_needs_email("c.visitor_id", "input.seen_after");
    sqlx::AssertSqlSafe(Backend::Postgres.placeholders(&format!(
        "WITH input AS (
            SELECT * FROM json_to_recordset(?::json) AS x(
                conversation_id BIGINT, public BIGINT, allowed TEXT, owner BIGINT, seen_after BIGINT,
                sender_kind TEXT, sender_user_id BIGINT, sender_name TEXT, body TEXT,
                client_msg_id TEXT, options TEXT)
         ), l AS MATERIALIZED (
            SELECT id FROM conversations
            WHERE id = ANY (?::text::BIGINT[])
            ORDER BY id
            FOR NO KEY UPDATE
         ), s AS (
            UPDATE conversations c SET last_seq = c.last_seq + 1,
                   last_public_seq = c.last_public_seq + input.public, updated_at = ?
            FROM input JOIN l ON l.id = input.conversation_id
            WHERE c.id = input.conversation_id AND c.id = ANY (?::text::BIGINT[])
              AND (input.allowed IS NULL OR c.status = ANY (string_to_array(input.allowed, ',')))
              AND (input.owner IS NULL OR c.assignee_id = input.owner)
              AND (input.seen_after IS NULL OR NOT {customer_needs_email})
              AND NOT EXISTS (SELECT 1 FROM messages stored
                              WHERE stored.conversation_id = input.conversation_id
                                AND stored.client_msg_id = input.client_msg_id)
            RETURNING c.id, c.last_seq, c.last_public_seq, c.status
         ), m AS (
            INSERT INTO messages (conversation_id, seq, public_seq, sender_kind, sender_user_id, sender_name, body, private, client_msg_id, created_at, options)
            SELECT input.conversation_id, s.last_seq,
                   CASE WHEN input.public = 1 THEN s.last_public_seq END,
                   input.sender_kind, input.sender_user_id, input.sender_name, input.body,
                   1 - input.public, input.client_msg_id, ?, input.options
            FROM s JOIN input ON input.conversation_id = s.id
            RETURNING {MESSAGE_COLUMNS}
         ), j AS ({MESSAGE_JOURNAL})
         SELECT m.*, s.status FROM m JOIN s ON s.id = m.conversation_id"
    )))
    .into_sql_str()
}

async fn run_lane(pool: AnyPool, mut jobs: mpsc::Receiver<Job>, sql: SqlStr, stats: Arc<Stats>) {
    // Jobs taken from the channel but not yet written, oldest first.
    let mut held: VecDeque<Job> = VecDeque::new();
    // Whether the last batch held more than one message: the lane is busy.
    let mut busy = false;
    loop {
        if held.is_empty() {
            match jobs.recv().await {
                Some(job) => held.push_back(job),
                None => return,
            }
        }
        while held.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => held.push_back(job),
                Err(_) => break,
            }
        }
        if busy {
            let until = tokio::time::Instant::now() + LINGER;
            while held.len() < MAX_BATCH {
                match tokio::time::timeout_at(until, jobs.recv()).await {
                    Ok(Some(job)) => held.push_back(job),
                    Ok(None) | Err(_) => break,
                }
            }
        }
        let batch = take_batch(&mut held);
        busy = batch.len() > 1;
        write(&pool, &sql, batch, &stats).await;
    }
}

/// The oldest held jobs, at most one per conversation: a later message of a
/// conversation already in the batch waits for the next one, so that its
/// seq comes after (and once the batch is full, everything waits). The rest
/// stay held, in order.
fn take_batch(held: &mut VecDeque<Job>) -> Vec<Job> {
    let mut batch: Vec<Job> = Vec::with_capacity(held.len().min(MAX_BATCH));
    let mut later = VecDeque::new();
    for job in held.drain(..) {
        if batch.len() < MAX_BATCH
            && !batch
                .iter()
                .any(|b| b.conversation_id == job.conversation_id)
        {
            batch.push(job);
        } else {
            later.push_back(job);
        }
    }
    *held = later;
    batch
}

async fn write(pool: &AnyPool, sql: &SqlStr, batch: Vec<Job>, stats: &Stats) {
    let rows = match execute(pool, sql, &batch).await {
        Ok(rows) => rows,
        Err(e) => {
            // Nothing of the batch was written (a statement is atomic). Each
            // message is written again on its own, here in the lane, so that
            // the rest keep their order and the failure stays with the one
            // that caused it.
            stats.failures.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(error = %e, messages = batch.len(), "a group commit failed; writing its messages one by one");
            for job in batch {
                let outcome = match execute(pool, sql, std::slice::from_ref(&job)).await {
                    Ok(rows) => {
                        stats.count(&rows);
                        answer(&rows, job.conversation_id)
                    }
                    // Its own failure: the sender writes it alone, which
                    // tells a retry from an error.
                    Err(_) => Outcome::WriteAlone,
                };
                let _ = job.reply.send(outcome);
            }
            return;
        }
    };
    stats.count(&rows);
    for job in batch {
        let _ = job.reply.send(answer(&rows, job.conversation_id));
    }
}

async fn execute(pool: &AnyPool, sql: &SqlStr, jobs: &[Job]) -> Result<Vec<AnyRow>, sqlx::Error> {
    // The rows as a JSON array, and their ids again as a PostgreSQL array:
    // the planner cannot see into the JSON and guesses 100 rows, which made
    // it scan the whole conversations table twice per batch; with the array
    // it looks each id up by key.
    let mut rows_json =
        String::with_capacity(jobs.iter().map(|j| j.json.len() + 1).sum::<usize>() + 2);
    let mut ids = String::with_capacity(jobs.len() * 8 + 2);
    rows_json.push('[');
    ids.push('{');
    for (n, job) in jobs.iter().enumerate() {
        if n > 0 {
            rows_json.push(',');
            ids.push(',');
        }
        rows_json.push_str(&job.json);
        let _ = write!(ids, "{}", job.conversation_id);
    }
    rows_json.push(']');
    ids.push('}');
    let now = now_ms();
    sqlx::query(sql.clone())
        .bind(rows_json)
        .bind(&ids)
        .bind(now)
        .bind(&ids)
        .bind(now)
        .fetch_all(pool)
        .await
}

/// The outcome for the message of `conversation_id` (a batch holds at most
/// one per conversation): its row, or none if the statement left it out.
fn answer(rows: &[AnyRow], conversation_id: ConversationId) -> Outcome {
    for row in rows {
        match row.try_get::<ConversationId, _>("conversation_id") {
            Ok(id) if id == conversation_id => {
                return Outcome::Stored(rows::message(row).and_then(|message| {
                    let status = text_enum(row, "status", ConversationStatus::parse)?;
                    Ok(Box::new((message, status)))
                }));
            }
            Ok(_) => {}
            // Cannot tell whose row this is: claiming "not stored" could
            // turn a stored message into a duplicate, so report the error.
            Err(e) => return Outcome::Stored(Err(e)),
        }
    }
    Outcome::NotStored
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(conversation_id: i64) -> (Job, oneshot::Receiver<Outcome>) {
        let (reply, rx) = oneshot::channel();
        (
            Job {
                conversation_id: ConversationId(conversation_id),
                json: conversation_id.to_string(),
                reply,
            },
            rx,
        )
    }

    fn ids(jobs: impl IntoIterator<Item = Job>) -> Vec<i64> {
        jobs.into_iter().map(|j| j.conversation_id.0).collect()
    }

    #[test]
    fn a_batch_takes_one_message_per_conversation_in_arrival_order() {
        let mut held: VecDeque<Job> = [1, 2, 1, 3, 2, 1].into_iter().map(|c| job(c).0).collect();
        let first = take_batch(&mut held);
        assert_eq!(ids(first), [1, 2, 3]);
        let second = take_batch(&mut held);
        assert_eq!(ids(second), [1, 2]);
        assert_eq!(ids(take_batch(&mut held)), [1]);
        assert!(held.is_empty());
    }

    #[test]
    fn a_batch_holds_at_most_max_batch_messages() {
        let mut held: VecDeque<Job> = (0..MAX_BATCH as i64 + 5).map(|c| job(c).0).collect();
        assert_eq!(take_batch(&mut held).len(), MAX_BATCH);
        assert_eq!(
            ids(held),
            (MAX_BATCH as i64..MAX_BATCH as i64 + 5).collect::<Vec<_>>()
        );
    }
}
