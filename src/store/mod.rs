//! Storage: one API over SQLite (the single-node default), PostgreSQL and
//! MariaDB/MySQL.
//!
//! Queries are written once, in portable SQL with `?` placeholders, and run
//! through `sqlx::Any`. What truly differs between backends (placeholder
//! syntax, `RETURNING`, upserts, row locks, session settings, how a write
//! transaction starts, migrations) lives in [`Backend`] (`dialect`) and
//! `migrations/<backend>/`. See docs/decisions.md.

mod api_tokens;
mod append_batch;
mod attachments;
mod connect;
mod contact_notes;
mod contacts;
mod content;
mod conversations;
mod dialect;
mod idempotency;
mod identity;
mod ids;
mod inbound_emails;
mod labels;
mod leases;
mod messages;
mod migrations;
mod notification_prefs;
mod outbox;
mod presence;
mod queue;
mod ratings;
mod reports;
mod routing;
mod rows;
mod seed;
mod seqs;
mod sessions;
mod settings;
mod sites;
mod ticket_activity;
mod tickets;
mod users;
mod visitors;
mod webhook_deliveries;
mod webhooks;

use std::sync::Arc;

use crate::model::ConversationId;
use sqlx::{Any, AnyPool, AssertSqlSafe, SqlStr, Transaction};

pub use api_tokens::ApiToken;
pub use append_batch::BatchStats;
pub use attachments::UploadRemoval;
pub use contact_notes::{ContactNote, MergeMoved, MergeSide, MergedDetails};
pub use contacts::{Contact, ContactFilter};
pub use content::{CannedReply, FaqEntry, FaqSites};
pub use dialect::Backend;
pub use idempotency::Claimed;
pub use identity::SiteIdentity;
pub use inbound_emails::{InboundEmail, InboundOriginal, InboundOutcome, InboundRecord};
pub use messages::{Appended, NewChatMessage};
pub use notification_prefs::{ConversationOwner, NotificationPrefs};
pub use outbox::{EMAILS_PER_ADDRESS_PER_DAY, NewEmail, OutboxEmail};
pub use reports::{RatingGiven, ReportRows, SiteCounts, TicketTime};
pub use routing::{Assignment, Wait};
pub use sites::{DEFAULT_GREETING, Site, SiteRemoved, SiteSaved, SiteSettings};
pub use ticket_activity::TicketActivity;
pub use tickets::{AssigneeFilter, TicketCursor, TicketFilter};
pub use users::{RoleChange, TokenEmail};
pub use webhook_deliveries::{AfterFailure, Attempt, AttemptLog, DueDelivery};
pub use webhooks::{EndpointSettings, JournalEvent, WebhookEndpoint};

/// The database connection pool at one moment.
#[derive(Debug, Clone, Copy)]
pub struct PoolStats {
    pub open: u32,
    pub idle: usize,
    pub max: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} is already taken")]
    Duplicate(&'static str),
    #[error("the record was not found")]
    NotFound,
    /// The record changed since it was read; the action was not applied.
    #[error("the record changed meanwhile")]
    Conflict,
    /// The upload went out with another message; nothing was written.
    #[error("the file was already sent with another message")]
    AttachmentTaken,
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("cannot open the database at `{url}`: {reason}")]
    Open { url: String, reason: String },
}

pub type StoreResult<T> = Result<T, StoreError>;

/// The one storage handle. Cheap to clone (the pool is reference counted).
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// SQLite has one writer at a time. Writers wait their turn here, in
    /// FIFO order, rather than in SQLite's busy handler, whose sleeps of up
    /// to 100 ms are unfair and turned a loaded node's p90 into seconds
    /// (docs/benchmarks.md). Unused on PostgreSQL.
    write_turn: Arc<tokio::sync::Mutex<()>>,
    /// SQLite: the lock on which upload rows name which blob bytes
    /// (`store::attachments`), apart from the write turn so that a slow blob
    /// delete never holds up other writers. Unused on PostgreSQL.
    blob_turn: Arc<tokio::sync::Mutex<()>>,
    /// Group commit of chat messages (PostgreSQL only; see `append_batch`).
    batcher: Option<Arc<append_batch::AppendBatcher>>,
}

impl Store {
    /// Opens the database named by `url` and runs pending migrations.
    pub async fn open(url: &str, max_connections: u32) -> StoreResult<Store> {
        sqlx::any::install_default_drivers();
        let backend = Backend::from_url(url).ok_or_else(|| StoreError::Open {
            url: redact(url),
            reason: "unsupported scheme: use sqlite://, postgres:// or mysql:// (mariadb://)"
                .into(),
        })?;
        let pool = connect::pool(url, backend, max_connections).await?;
        let batcher = (backend == Backend::Postgres)
            .then(|| Arc::new(append_batch::AppendBatcher::start(&pool)));
        let store = Store {
            pool,
            backend,
            write_turn: Arc::new(tokio::sync::Mutex::new(())),
            blob_turn: Arc::new(tokio::sync::Mutex::new(())),
            batcher,
        };
        store.migrate().await?;
        Ok(store)
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub async fn migrate(&self) -> StoreResult<()> {
        migrations::migrator(self.backend).run(&self.pool).await?;
        Ok(())
    }

    /// Round trip to the database, for `/readyz`.
    pub async fn ping(&self) -> StoreResult<()> {
        sqlx::query(self.sql("SELECT 1"))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Group commit so far; `None` where messages are written one by one
    /// (SQLite).
    /// The connection pool as it stands, for `/metrics`.
    pub fn pool_stats(&self) -> PoolStats {
        PoolStats {
            open: self.pool.size(),
            idle: self.pool.num_idle(),
            max: self.pool.options().get_max_connections(),
        }
    }

    pub fn append_batches(&self) -> Option<BatchStats> {
        self.batcher.as_ref().map(|b| b.stats())
    }

    /// Messages waiting for a group commit (0 on SQLite).
    pub fn append_queued(&self) -> usize {
        self.batcher.as_ref().map_or(0, |b| b.queued())
    }

    /// The group-commit lane that writes this conversation's messages
    /// (`None` on SQLite); messages of one lane queue behind each other.
    /// For tests that need messages queued behind one another.
    pub fn append_lane(&self, conversation_id: ConversationId) -> Option<usize> {
        self.batcher
            .as_ref()
            .map(|_| append_batch::lane_of(conversation_id))
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// A statement in this backend's syntax, from portable SQL.
    fn sql(&self, portable: &str) -> SqlStr {
        AssertSqlSafe(self.backend.placeholders(portable)).into_sql_str()
    }

    /// This process's turn to write, for a single statement outside
    /// [`Store::write_tx`].
    async fn write_turn(&self) -> WriteTurn {
        match self.backend {
            Backend::Sqlite => Some(self.write_turn.clone().lock_owned().await),
            Backend::Postgres | Backend::Mysql => None,
        }
    }

    /// Starts a transaction that will write, with this process's turn to
    /// write: keep the guard until the transaction is committed or dropped.
    /// SQLite takes the write lock up front (`BEGIN IMMEDIATE`) so that a
    /// writer never fails when it upgrades from a read (another process, such
    /// as the command line, still queues on the busy timeout).
    async fn write_tx(&self) -> StoreResult<(Transaction<'static, Any>, WriteTurn)> {
        match self.backend {
            Backend::Sqlite => {
                let turn = self.write_turn.clone().lock_owned().await;
                let tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
                Ok((tx, Some(turn)))
            }
            Backend::Postgres | Backend::Mysql => Ok((self.pool.begin().await?, None)),
        }
    }
}

use sqlx::SqlSafeStr as _;

/// This process's turn to write (SQLite); `None` where the database
/// handles concurrent writers itself.
type WriteTurn = Option<tokio::sync::OwnedMutexGuard<()>>;

/// Current time as UTC unix milliseconds, the storage format of every timestamp.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Hides the password part of a database URL so that it can be logged.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{}:***{}", &url[..scheme_end + 3], user, &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// Maps a unique-constraint violation to [`StoreError::Duplicate`] naming `field`.
fn unique_as(field: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |e| match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Duplicate(field),
        _ => StoreError::Database(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_hides_only_the_password() {
        assert_eq!(
            redact("postgres://careline:hunter2@db:5432/careline"),
            "postgres://careline:***@db:5432/careline"
        );
        assert_eq!(redact("postgres://root@db/x"), "postgres://root@db/x");
        assert_eq!(redact("sqlite://./data/c.db"), "sqlite://./data/c.db");
    }
}
