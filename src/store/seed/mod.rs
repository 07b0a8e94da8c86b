//! Bulk inserts for `careline seed`: realistic data sets for the page benchmarks.
//!
//! [`Store::seed_tickets`] writes customers, their visitor records,
//! conversations, tickets, messages, timelines and ratings as if people had
//! used Careline for months, keeping every invariant the rest of the store
//! relies on:
//!
//! - ticket numbers continue the `ticket_number` counter, which ends at the
//!   last number used;
//! - a conversation's messages are numbered `seq` 1..=`last_seq` for staff and,
//!   public ones only, `public_seq` 1..=`last_public_seq` for the customer
//!   (private notes have none); `client_msg_id`s are unique per conversation;
//! - a conversation mirrors its ticket's status and assignee (open or pending
//!   and assigned: `live`; unassigned: `waiting`);
//! - every reply, note, assignment, priority or status change and rating has
//!   its timeline entry, notes privately; a ticket's `updated_at` is its last
//!   public activity, `first_response_at` the first public staff reply,
//!   `resolved_at` the resolution;
//! - ids continue after the existing rows (PostgreSQL's identity sequences
//!   are moved past them at the end).
//!
//! Everything is written in one transaction, in multi-row `INSERT`s of up to
//! a few thousand rows, parents before children. The data comes from a fixed
//! pseudo-random sequence, so two seeds with the same plan look alike.
//!
//! One job a file: [`batch`] collects and writes the rows, [`rng`] is the
//! pseudo-random sequence, [`text`] the names and lines people write,
//! [`ticket`] generates one ticket with its thread, and [`timeline`] its
//! timeline entries.

mod batch;
mod rng;
mod text;
mod ticket;
mod timeline;

use sqlx::{Any, Row, Transaction};

use super::{Backend, Store, StoreError, StoreResult, now_ms};
use crate::model::Role;
use batch::{Batch, Batches};
use rng::Rng;
use text::{FIRST_NAMES, LAST_NAMES};
use ticket::generate_ticket;

/// What a seed wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Seeded {
    pub customers: u64,
    pub visitors: u64,
    pub tickets: u64,
    pub messages: u64,
    pub events: u64,
    pub ratings: u64,
    /// The ticket numbers used, first and last (0 when no ticket was seeded).
    pub first_number: i64,
    pub last_number: i64,
    /// The email of the first customer this seed created.
    pub first_customer: Option<String>,
}

/// Tickets generated (and flushed, parents first) at a time.
const TICKET_CHUNK: u32 = 1_000;
const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;

/// Someone who can own a ticket.
struct Customer {
    visitor_id: i64,
    user_id: Option<i64>,
    name: String,
    /// A chat visitor (the ticket starts with the bot) rather than a portal login.
    chat: bool,
}

struct Agent {
    id: i64,
    name: String,
}

/// Everything one generated ticket needs from the rest of the data set.
struct TicketContext<'a> {
    site_id: i64,
    now: i64,
    span: i64,
    customers: &'a [Customer],
    agents: &'a [Agent],
}

impl Store {
    /// Seeds `customers` customers and `tickets` tickets with their
    /// conversations, messages (`messages_per_ticket` on average, threads
    /// from 1 to twice that), timelines and ratings, opened over the last
    /// `days` days (see the module docs). Customers are
    /// `load-customer-<k>@load.test`, numbered after any seeded before, all
    /// verified, sharing `password_hash`; at least one is created when there
    /// are tickets. Tickets are assigned among the existing agents (or admins
    /// when there is no agent). Meant for a database no server is writing to
    /// at the same time.
    pub async fn seed_tickets(
        &self,
        customers: u32,
        tickets: u32,
        messages_per_ticket: u32,
        days: u32,
        password_hash: &str,
    ) -> StoreResult<Seeded> {
        let site = self.default_site().await?;
        let staff = self.staff().await?;
        let agents: Vec<Agent> = {
            let only_agents: Vec<_> = staff.iter().filter(|u| u.role == Role::Agent).collect();
            let chosen = if only_agents.is_empty() {
                staff.iter().collect()
            } else {
                only_agents
            };
            chosen
                .into_iter()
                .map(|u| Agent {
                    id: u.id.0,
                    name: u.name.clone(),
                })
                .collect()
        };
        let now = now_ms();
        let span = i64::from(days.max(1)) * DAY;
        let mut rng = Rng(0x5EED_CA7E_0000_0000 ^ u64::from(tickets));
        let mut seeded = Seeded::default();

        let (mut tx, _turn) = self.write_tx().await?;
        if self.backend == Backend::Postgres {
            // Ids are taken after the largest; nobody may insert meanwhile.
            sqlx::query(self.sql(
                "LOCK TABLE users, visitors, conversations, tickets, messages, ticket_events, csat_ratings IN EXCLUSIVE MODE",
            ))
            .execute(&mut *tx)
            .await?;
        }
        let next_user = self.next_id(&mut tx, "users").await?;
        let next_visitor = self.next_id(&mut tx, "visitors").await?;
        let next_conversation = self.next_id(&mut tx, "conversations").await?;
        let next_ticket = self.next_id(&mut tx, "tickets").await?;
        let earlier: i64 =
            sqlx::query(self.sql(
                "SELECT COUNT(*) AS n FROM users WHERE email LIKE 'load-customer-%@load.test'",
            ))
            .fetch_one(&mut *tx)
            .await?
            .try_get("n")?;

        // Customers: a portal login each (a user and its visitor record),
        // and as many chat visitors, half of them the same people writing
        // from the widget with the same email address.
        let mut users = Batch::new(
            "users",
            &[
                "id",
                "email",
                "name",
                "password_hash",
                "role",
                "verified",
                "created_at",
            ],
        );
        let mut visitors = Batch::new(
            "visitors",
            &["id", "site_id", "user_id", "name", "email", "created_at"],
        );
        let mut owners = Vec::new();
        let wanted = if tickets > 0 {
            customers.max(1)
        } else {
            customers
        };
        let mut people = Vec::new();
        for k in 0..i64::from(wanted) {
            let id = next_user + k;
            let name = format!("{} {}", rng.pick(FIRST_NAMES), rng.pick(LAST_NAMES));
            let email = format!("load-customer-{}@load.test", earlier + k + 1);
            let joined = now - span - rng.between(0, 90 * DAY);
            if k == 0 {
                seeded.first_customer = Some(email.clone());
            }
            users.row([
                id.into(),
                email.clone().into(),
                name.clone().into(),
                password_hash.into(),
                "customer".into(),
                1.into(),
                joined.into(),
            ]);
            let visitor_id = next_visitor + k;
            visitors.row([
                visitor_id.into(),
                site.id.0.into(),
                Some(id).into(),
                name.clone().into(),
                email.clone().into(),
                joined.into(),
            ]);
            owners.push(Customer {
                visitor_id,
                user_id: Some(id),
                name: name.clone(),
                chat: false,
            });
            people.push((name, email));
        }
        for k in 0..i64::from(wanted) {
            let visitor_id = next_visitor + i64::from(wanted) + k;
            let (name, email) = if rng.percent(50) {
                people[k as usize].clone()
            } else {
                let first = rng.pick(FIRST_NAMES);
                let last = rng.pick(LAST_NAMES);
                let email = if rng.percent(80) {
                    format!(
                        "{}.{}{}@example.net",
                        first.to_lowercase(),
                        last.to_lowercase(),
                        earlier + k + 1
                    )
                } else {
                    String::new()
                };
                (format!("{first} {last}"), email)
            };
            visitors.row([
                visitor_id.into(),
                site.id.0.into(),
                None::<i64>.into(),
                name.clone().into(),
                email.into(),
                (now - span - rng.between(0, 30 * DAY)).into(),
            ]);
            owners.push(Customer {
                visitor_id,
                user_id: None,
                name,
                chat: true,
            });
        }
        users.flush(self, &mut tx).await?;
        visitors.flush(self, &mut tx).await?;
        seeded.customers = users.written;
        seeded.visitors = visitors.written;

        if tickets > 0 {
            let take = sqlx::query(self.sql(&self.backend.returning(
                &format!(
                    "UPDATE counters SET value = {} WHERE name = 'ticket_number'",
                    self.backend.counter("value", "?")
                ),
                "value",
            )))
            .bind(i64::from(tickets));
            let last = self
                .counted(take, &mut tx)
                .await?
                .ok_or(StoreError::NotFound)?;
            seeded.first_number = last - i64::from(tickets) + 1;
            seeded.last_number = last;

            let context = TicketContext {
                site_id: site.id.0,
                now,
                span,
                customers: &owners,
                agents: &agents,
            };
            let mean = i64::from(messages_per_ticket.max(1));
            let mut batches = Batches::new();
            let mut lengths = (0, 0);
            for i in 0..i64::from(tickets) {
                // Threads come in pairs of mean ± d, so the total is exact.
                let length = if i % 2 == 0 {
                    if i + 1 < i64::from(tickets) {
                        let d = rng.below(mean as u64) as i64;
                        lengths = (mean + d, mean - d);
                    } else {
                        lengths = (mean, mean);
                    }
                    lengths.0
                } else {
                    lengths.1
                };
                generate_ticket(
                    &mut rng,
                    &context,
                    &mut batches,
                    next_conversation + i,
                    next_ticket + i,
                    seeded.first_number + i,
                    length,
                );
                if (i + 1) % i64::from(TICKET_CHUNK) == 0 {
                    batches.flush(self, &mut tx).await?;
                }
            }
            batches.flush(self, &mut tx).await?;
            seeded.tickets = batches.tickets.written;
            seeded.messages = batches.messages.written;
            seeded.events = batches.events.written;
            seeded.ratings = batches.ratings.written;
        }

        if self.backend == Backend::Postgres {
            for table in ["users", "visitors", "conversations", "tickets"] {
                sqlx::query(self.sql(&format!(
                    "SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT MAX(id) FROM {table}))
                     WHERE EXISTS (SELECT 1 FROM {table})"
                )))
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        if self.backend == Backend::Postgres {
            // What autovacuum does some time after a bulk load, done now so
            // that measurements do not depend on when it runs: statistics
            // for the planner, and the visibility map that lets index-only
            // scans skip the table.
            sqlx::query(self.sql("VACUUM ANALYZE"))
                .execute(&self.pool)
                .await?;
        }
        Ok(seeded)
    }

    /// The id after the largest in `table` (a fixed table name).
    async fn next_id(&self, tx: &mut Transaction<'static, Any>, table: &str) -> StoreResult<i64> {
        let row = sqlx::query(self.sql(&format!(
            "SELECT COALESCE(MAX(id), 0) + 1 AS n FROM {table}"
        )))
        .fetch_one(&mut **tx)
        .await?;
        Ok(row.try_get("n")?)
    }
}
