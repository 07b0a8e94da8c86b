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

use sqlx::{Any, Row, Transaction};

use super::{Backend, Store, StoreResult, now_ms};
use crate::model::EventKind;
use crate::model::{ConversationStatus, Priority, Role, SenderKind, TicketStatus};

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

/// Bound parameters per statement: under SQLite's 32,766 and PostgreSQL's 65,535.
const MAX_PARAMS: usize = 30_000;
const MAX_ROWS: usize = 2_000;
/// Tickets generated (and flushed, parents first) at a time.
const TICKET_CHUNK: u32 = 1_000;
const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;

enum Value {
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
struct Batch {
    table: &'static str,
    columns: &'static [&'static str],
    values: Vec<Value>,
    rows_per_statement: usize,
    written: u64,
}

impl Batch {
    fn new(table: &'static str, columns: &'static [&'static str]) -> Batch {
        Batch {
            table,
            columns,
            values: Vec::new(),
            rows_per_statement: (MAX_PARAMS / columns.len()).min(MAX_ROWS),
            written: 0,
        }
    }

    fn row<const N: usize>(&mut self, values: [Value; N]) {
        debug_assert_eq!(N, self.columns.len(), "{}", self.table);
        self.values.extend(values);
    }

    fn pending_rows(&self) -> usize {
        self.values.len() / self.columns.len()
    }

    /// Writes every pending row.
    async fn flush(
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

/// A fixed pseudo-random sequence (SplitMix64): reproducible data sets
/// without a dependency on a particular `rand` API.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (0 when `n` is 0).
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }

    /// Uniform in `low..high` milliseconds.
    fn between(&mut self, low: i64, high: i64) -> i64 {
        low + self.below((high - low).max(1) as u64) as i64
    }

    /// True `percent` times in a hundred.
    fn percent(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    /// Picks by weight: `(weight, value)` pairs.
    fn weighted<T: Copy>(&mut self, items: &[(u64, T)]) -> T {
        let total: u64 = items.iter().map(|(w, _)| w).sum();
        let mut n = self.below(total);
        for (weight, value) in items {
            if n < *weight {
                return *value;
            }
            n -= weight;
        }
        items[items.len() - 1].1
    }
}

const FIRST_NAMES: &[&str] = &[
    "Maria", "Jonas", "Aisha", "Pedro", "Yuki", "Olga", "Samuel", "Fatima", "Liam", "Chen",
    "Ingrid", "Mateo", "Priya", "Tomasz", "Amara", "Lucas", "Sofia", "Kwame", "Elena", "Noah",
    "Hana", "Omar", "Clara", "Diego", "Freya", "Ravi", "Zoe", "Ivan", "Leila", "Hugo",
];
const LAST_NAMES: &[&str] = &[
    "Keller", "Okafor", "Silva", "Tanaka", "Novak", "Haddad", "Brown", "Müller", "Rossi", "Kim",
    "Dubois", "Larsen", "Patel", "Kowalski", "Mensah", "Garcia", "Nguyen", "Ivanova", "Cohen",
    "Moreau", "Andersen", "Costa", "Yilmaz", "Walsh", "Fischer", "Sato", "Romero", "Berg",
];
const PRODUCTS: &[&str] = &[
    "printer",
    "coffee machine",
    "headphones",
    "router",
    "vacuum cleaner",
    "phone case",
    "desk lamp",
    "keyboard",
    "smart watch",
    "blender",
    "e-reader",
    "monitor",
];
/// `{n}` is an order number, `{p}` a product.
const SUBJECTS: &[&str] = &[
    "Order {n} has not arrived",
    "Refund for order {n}",
    "Cannot log in to my account",
    "Password reset email never arrives",
    "Invoice for order {n} shows the wrong amount",
    "My {p} stopped working after the update",
    "Wrong size delivered in order {n}",
    "How do I change my delivery address?",
    "Charged twice for order {n}",
    "The {p} arrived damaged",
    "Warranty question about my {p}",
    "Please cancel my subscription",
    "Discount code not accepted at checkout",
    "App crashes when I open the cart",
    "Missing item in order {n}",
    "Where can I download the manual for the {p}?",
    "Return label for order {n}",
    "The {p} makes a strange noise",
];
const CUSTOMER_LINES: &[&str] = &[
    "I ordered it two weeks ago and the tracking page has not changed since.",
    "Could you please check what is going on?",
    "I already tried restarting it twice, without any luck.",
    "The confirmation email says it was delivered, but nothing came.",
    "This is the second time this happens and I am getting a bit frustrated.",
    "I attached a photo of the box as it arrived.",
    "My neighbour did not receive anything either.",
    "Can I get a replacement instead of a refund?",
    "Thanks for the quick answer!",
    "That did not help, the problem is still there.",
    "I need this sorted out before the end of the month, please.",
    "It worked fine until yesterday evening.",
    "Is there a phone number I can call instead?",
    "Ok, I will try that and let you know.",
    "Still nothing. What are the next steps?",
];
const AGENT_LINES: &[&str] = &[
    "Thanks for reaching out, and sorry for the trouble.",
    "I have checked your order and can see the parcel is with the carrier.",
    "Could you send me the serial number from the back of the device?",
    "I have issued a refund; it shows on your statement within 5 working days.",
    "A replacement is on its way; you will get a tracking link by email.",
    "Please try a factory reset: hold the power button for ten seconds.",
    "I have escalated this to our warehouse team and will update you tomorrow.",
    "Your account is unlocked now; you can log in again.",
    "Let me know if there is anything else I can do.",
    "I am closing this ticket for now; reply here if the problem comes back.",
    "The discount code expired last week, but I applied the discount manually.",
    "Could you confirm the delivery address we should use?",
];
const NOTES: &[&str] = &[
    "Customer has had three late deliveries this year; offer a voucher.",
    "Carrier confirmed the parcel is lost. Refund approved by the team lead.",
    "Checked the logs: two payments went through, one is pending reversal.",
    "Known firmware issue, see the engineering ticket.",
    "Asked the warehouse to check stock before promising a replacement.",
    "VIP customer, keep the tone extra careful.",
];
const BOT_ANSWERS: &[&str] = &[
    "You can follow your delivery from the link in your confirmation email. If it is late, give us your order number and we will look into it.",
    "You can ask for a refund within 30 days of purchase. Tell us your order number and a person will take it from there.",
    "Use \"Forgot password\" on the login page; we send you a link that works once within an hour.",
    "Sorry, I did not understand that. Could you say it in other words?",
];
const HANDOFF_ASKS: &[&str] = &[
    "I want to talk to a person",
    "human please",
    "Can I speak to someone?",
    "That does not answer my question, talk to an agent",
];

/// One to `most` different lines, in a random order.
fn sentences(rng: &mut Rng, lines: &[&str], most: u64) -> String {
    let n = (1 + rng.below(most)).min(lines.len() as u64);
    let mut chosen: Vec<&str> = Vec::new();
    while (chosen.len() as u64) < n {
        let line = *rng.pick(lines);
        if !chosen.contains(&line) {
            chosen.push(line);
        }
    }
    chosen.join(" ")
}

fn subject(rng: &mut Rng) -> String {
    let template = *rng.pick(SUBJECTS);
    let order = 100_000 + rng.below(900_000);
    let product = *rng.pick(PRODUCTS);
    template
        .replace("{n}", &order.to_string())
        .replace("{p}", product)
}

/// The conversation status that mirrors a ticket's (as in `store::tickets`).
fn mirrored(status: TicketStatus, assigned: bool) -> ConversationStatus {
    match status {
        TicketStatus::Resolved => ConversationStatus::Resolved,
        TicketStatus::Closed => ConversationStatus::Closed,
        TicketStatus::Open | TicketStatus::Pending if assigned => ConversationStatus::Live,
        TicketStatus::Open | TicketStatus::Pending => ConversationStatus::Waiting,
    }
}

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

/// Who wrote a message.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Turn {
    Customer,
    Bot,
    HandoffAsk,
    Handoff,
    Agent,
    Note,
}

/// The tables a seed writes, parents first.
struct Batches {
    conversations: Batch,
    tickets: Batch,
    messages: Batch,
    events: Batch,
    ratings: Batch,
}

impl Batches {
    fn new() -> Batches {
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

    async fn flush(
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

/// Everything one generated ticket needs from the rest of the data set.
struct TicketContext<'a> {
    site_id: i64,
    now: i64,
    span: i64,
    customers: &'a [Customer],
    agents: &'a [Agent],
}

/// A timeline entry about to be written.
struct Event {
    at: i64,
    actor: Option<i64>,
    actor_name: String,
    kind: EventKind,
    old: Option<&'static str>,
    new: Option<String>,
    private: bool,
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
                site.id.into(),
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
                site.id.into(),
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
            let last: i64 = sqlx::query(self.sql(
                "UPDATE counters SET value = value + ? WHERE name = 'ticket_number' RETURNING value",
            ))
            .bind(i64::from(tickets))
            .fetch_one(&mut *tx)
            .await?
            .try_get("value")?;
            seeded.first_number = last - i64::from(tickets) + 1;
            seeded.last_number = last;

            let context = TicketContext {
                site_id: site.id,
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

/// One ticket with its conversation, thread, timeline and maybe a rating.
fn generate_ticket(
    rng: &mut Rng,
    context: &TicketContext<'_>,
    batches: &mut Batches,
    conversation_id: i64,
    ticket_id: i64,
    number: i64,
    length: i64,
) {
    let now = context.now;
    let customer = rng.pick(context.customers);
    let start = now - rng.between(HOUR, context.span);
    let age = now - start;

    let status = if age < 14 * DAY {
        rng.weighted(&[
            (35, TicketStatus::Open),
            (20, TicketStatus::Pending),
            (30, TicketStatus::Resolved),
            (15, TicketStatus::Closed),
        ])
    } else {
        rng.weighted(&[
            (2, TicketStatus::Open),
            (3, TicketStatus::Pending),
            (25, TicketStatus::Resolved),
            (70, TicketStatus::Closed),
        ])
    };
    let priority = rng.weighted(&[
        (15, Priority::Low),
        (60, Priority::Normal),
        (20, Priority::High),
        (5, Priority::Urgent),
    ]);
    let assigned = !context.agents.is_empty() && (status != TicketStatus::Open || rng.percent(70));
    let agent = assigned.then(|| rng.pick(context.agents));

    // Who writes each message, in order.
    let mut turns = vec![Turn::Customer];
    if customer.chat {
        turns.extend([Turn::Bot, Turn::HandoffAsk, Turn::Handoff]);
    }
    turns.truncate(length as usize);
    let mut staff_next = true;
    while (turns.len() as i64) < length {
        if agent.is_none() {
            turns.push(Turn::Customer);
        } else if staff_next {
            turns.push(if rng.percent(12) {
                Turn::Note
            } else {
                Turn::Agent
            });
            staff_next = false;
        } else {
            turns.push(Turn::Customer);
            staff_next = true;
        }
    }

    // When: minutes between bot turns, hours between people; then the
    // whole thread is squeezed into the time between its start and now.
    let mut times = Vec::with_capacity(turns.len());
    let mut t = start;
    for (i, turn) in turns.iter().enumerate() {
        if i > 0 {
            t += match turn {
                Turn::Bot | Turn::Handoff => rng.between(2_000, 20_000),
                Turn::HandoffAsk => rng.between(20_000, 3 * MINUTE),
                _ => rng.between(5 * MINUTE, 20 * HOUR),
            };
        }
        times.push(t);
    }
    // Status changes and ratings come after the last message.
    let resolve_gap = rng.between(10 * MINUTE, 2 * DAY);
    let close_gap = rng.between(3 * DAY, 7 * DAY);
    let tail = match status {
        TicketStatus::Open => 0,
        TicketStatus::Pending | TicketStatus::Resolved => resolve_gap,
        TicketStatus::Closed => resolve_gap + close_gap,
    };
    let end = t + tail;
    let latest = now - MINUTE;
    let squeeze = |at: i64| -> i64 {
        if end <= latest {
            at
        } else {
            start + ((at - start) as f64 * ((latest - start) as f64 / (end - start) as f64)) as i64
        }
    };
    let times: Vec<i64> = times.into_iter().map(squeeze).collect();
    let last_message_at = *times.last().unwrap_or(&start);

    // A chat ticket opens at the handoff; a portal ticket with its first message.
    let opened_at = if customer.chat {
        times[turns.len().min(4) - 1]
    } else {
        start
    };
    let subject = subject(rng);
    let customer_actor = (customer.user_id, customer.name.clone());

    let mut events = vec![Event {
        at: opened_at,
        actor: customer_actor.0,
        actor_name: customer_actor.1.clone(),
        kind: EventKind::Opened,
        old: None,
        new: None,
        private: false,
    }];
    if let Some(agent) = agent {
        let first_staff = turns
            .iter()
            .position(|t| matches!(t, Turn::Agent | Turn::Note))
            .map(|i| times[i] - rng.between(MINUTE, 10 * MINUTE))
            .unwrap_or(opened_at + rng.between(MINUTE, HOUR))
            .max(opened_at);
        events.push(Event {
            at: first_staff,
            actor: Some(agent.id),
            actor_name: agent.name.clone(),
            kind: EventKind::Assigned,
            old: None,
            new: Some(agent.name.clone()),
            private: false,
        });
        if priority != Priority::Normal && rng.percent(30) {
            events.push(Event {
                at: first_staff,
                actor: Some(agent.id),
                actor_name: agent.name.clone(),
                kind: EventKind::Priority,
                old: Some(Priority::Normal.as_str()),
                new: Some(priority.to_string()),
                private: false,
            });
        }
    }

    let mut seq = 0;
    let mut public_seq = 0;
    let mut first_response_at = None;
    let mut agent_read_seq = 0;
    let mut customer_read_seq = 0;
    for (turn, &at) in turns.iter().zip(&times) {
        seq += 1;
        let private = *turn == Turn::Note;
        let public = (!private).then(|| {
            public_seq += 1;
            public_seq
        });
        let (kind, sender, name, body) = match turn {
            Turn::Customer => (
                SenderKind::Customer,
                customer.user_id,
                customer.name.clone(),
                sentences(rng, CUSTOMER_LINES, 4),
            ),
            Turn::HandoffAsk => (
                SenderKind::Customer,
                customer.user_id,
                customer.name.clone(),
                rng.pick(HANDOFF_ASKS).to_string(),
            ),
            Turn::Bot => (
                SenderKind::Bot,
                None,
                "Assistant".to_string(),
                rng.pick(BOT_ANSWERS).to_string(),
            ),
            Turn::Handoff => (
                SenderKind::System,
                None,
                "Careline".to_string(),
                "A person will take over this conversation shortly.".to_string(),
            ),
            Turn::Agent | Turn::Note => {
                let agent = agent.expect("staff turns only on assigned tickets");
                let body = if private {
                    sentences(rng, NOTES, 2)
                } else {
                    format!(
                        "Hello {},\n\n{}",
                        customer.name.split(' ').next().unwrap_or_default(),
                        sentences(rng, AGENT_LINES, 3)
                    )
                };
                (SenderKind::Agent, Some(agent.id), agent.name.clone(), body)
            }
        };
        match turn {
            Turn::Customer | Turn::HandoffAsk => customer_read_seq = public_seq,
            Turn::Agent | Turn::Note => agent_read_seq = seq,
            Turn::Bot | Turn::Handoff => {}
        }
        if *turn == Turn::Agent && first_response_at.is_none() {
            first_response_at = Some(at);
        }
        // Replies and notes on the ticket are on its timeline; the chat
        // before the handoff is only in the transcript.
        if seq > 1 && at >= opened_at {
            let (event_kind, actor, actor_name) = match turn {
                Turn::Customer => (
                    Some(EventKind::CustomerReply),
                    customer_actor.0,
                    customer_actor.1.clone(),
                ),
                Turn::Agent => (Some(EventKind::AgentReply), sender, name.clone()),
                Turn::Note => (Some(EventKind::Note), sender, name.clone()),
                _ => (None, None, String::new()),
            };
            if let Some(event_kind) = event_kind {
                events.push(Event {
                    at,
                    actor,
                    actor_name,
                    kind: event_kind,
                    old: None,
                    new: None,
                    private,
                });
            }
        }
        batches.messages.row([
            conversation_id.into(),
            seq.into(),
            public.into(),
            kind.as_str().into(),
            sender.into(),
            name.into(),
            body.into(),
            i64::from(private).into(),
            format!("seed:{seq}").into(),
            at.into(),
        ]);
    }

    let mut resolved_at = None;
    if let Some(agent) = agent {
        let staff = |at: i64, old: TicketStatus, new: TicketStatus| Event {
            at,
            actor: Some(agent.id),
            actor_name: agent.name.clone(),
            kind: EventKind::Status,
            old: Some(old.as_str()),
            new: Some(new.to_string()),
            private: false,
        };
        let resolved = squeeze(last_message_at + resolve_gap).max(last_message_at);
        match status {
            TicketStatus::Open => {}
            TicketStatus::Pending => {
                events.push(staff(resolved, TicketStatus::Open, TicketStatus::Pending))
            }
            TicketStatus::Resolved | TicketStatus::Closed => {
                events.push(staff(resolved, TicketStatus::Open, TicketStatus::Resolved));
                resolved_at = Some(resolved);
                if rng.percent(40) {
                    let score = rng.weighted(&[(5, 1), (5, 2), (10, 3), (30, 4), (50, 5)]);
                    let rated = resolved + rng.between(MINUTE, HOUR).min((now - resolved) / 2);
                    let comment = if rng.percent(30) {
                        "Quick and friendly, thank you."
                    } else {
                        ""
                    };
                    batches.ratings.row([
                        conversation_id.into(),
                        score.into(),
                        comment.into(),
                        rated.into(),
                    ]);
                    events.push(Event {
                        at: rated,
                        actor: None,
                        actor_name: customer.name.clone(),
                        kind: EventKind::Rated,
                        old: None,
                        new: Some(format!("{score}/5")),
                        private: false,
                    });
                }
                if status == TicketStatus::Closed {
                    let closed = squeeze(last_message_at + resolve_gap + close_gap).max(resolved);
                    events.push(staff(closed, TicketStatus::Resolved, TicketStatus::Closed));
                }
            }
        }
    }
    // The timeline reads in id order: write it in time order.
    events.sort_by_key(|e| e.at);

    let last_public = events
        .iter()
        .filter(|e| !e.private)
        .map(|e| e.at)
        .chain(
            turns
                .iter()
                .zip(&times)
                .filter(|(t, _)| **t != Turn::Note)
                .map(|(_, at)| *at),
        )
        .max()
        .unwrap_or(start);
    let last_any = events
        .iter()
        .map(|e| e.at)
        .chain(times.iter().copied())
        .max()
        .unwrap_or(start);
    let finished = matches!(status, TicketStatus::Resolved | TicketStatus::Closed);
    let conversation_status = mirrored(status, agent.is_some());

    batches.conversations.row([
        conversation_id.into(),
        context.site_id.into(),
        customer.visitor_id.into(),
        conversation_status.as_str().into(),
        agent.map(|a| a.id).into(),
        seq.into(),
        public_seq.into(),
        (if finished { seq } else { agent_read_seq }).into(),
        (if finished {
            public_seq
        } else {
            customer_read_seq
        })
        .into(),
        Some(opened_at).into(),
        start.into(),
        last_any.into(),
    ]);
    batches.tickets.row([
        ticket_id.into(),
        number.into(),
        conversation_id.into(),
        customer.visitor_id.into(),
        subject.into(),
        status.as_str().into(),
        priority.as_str().into(),
        agent.map(|a| a.id).into(),
        opened_at.into(),
        last_public.into(),
        first_response_at.into(),
        resolved_at.into(),
    ]);
    for event in events {
        batches.events.row([
            ticket_id.into(),
            event.at.into(),
            event.actor.into(),
            event.actor_name.into(),
            event.kind.as_str().into(),
            event.old.map(str::to_string).into(),
            event.new.into(),
            i64::from(event.private).into(),
        ]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weighted_picks_follow_the_weights() {
        let mut rng = Rng(1);
        let picks: Vec<u8> = (0..10_000)
            .map(|_| rng.weighted(&[(90, 0), (10, 1)]))
            .collect();
        let ones = picks.iter().filter(|p| **p == 1).count();
        assert!((800..1200).contains(&ones), "{ones}");
    }

    #[test]
    fn subjects_fill_their_placeholders() {
        let mut rng = Rng(7);
        for _ in 0..100 {
            let s = subject(&mut rng);
            assert!(!s.contains('{'), "{s}");
        }
    }
}
