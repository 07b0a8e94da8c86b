//! The email outbox: every email Careline sends is first a row here,
//! written in the same transaction as the event that causes it, so that an
//! email is never lost and never sent for something that did not happen.
//! The delivery worker claims due rows atomically (several instances may
//! run it) and records each attempt.

use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use super::{Backend, Store, StoreResult, now_ms};

/// Emails one address may be sent in a day, whatever causes them: a widget
/// visitor can type any address, so Careline must not become a way to
/// flood a stranger's inbox. A real customer gets far fewer (replies to one
/// conversation are coalesced to one email in ten minutes).
pub const EMAILS_PER_ADDRESS_PER_DAY: i64 = 20;

/// Payload fields whose text the recipient's counterpart chose (a visitor's
/// name, their first words as the ticket's subject): never sent to an
/// address that is not a verified account's, so that nobody can make
/// Careline carry text of their choosing to someone else's inbox.
const CHOSEN_BY_THE_SENDER: [&str; 2] = ["name", "subject"];

/// An email to queue: which template, for whom, with what data.
#[derive(Debug, Clone)]
pub struct NewEmail {
    pub to: String,
    pub template: &'static str,
    pub payload: serde_json::Value,
}

#[derive(Debug, Clone)]
pub struct OutboxEmail {
    pub id: i64,
    pub to_email: String,
    pub template: String,
    pub payload: String,
    pub status: String,
    pub attempts: i64,
    pub last_error: String,
    pub created_at: i64,
}

const COLUMNS: &str = "id, to_email, template, payload, status, attempts, last_error, created_at";

fn email(row: &AnyRow) -> Result<OutboxEmail, sqlx::Error> {
    Ok(OutboxEmail {
        id: row.try_get("id")?,
        to_email: row.try_get("to_email")?,
        template: row.try_get("template")?,
        payload: row.try_get("payload")?,
        status: row.try_get("status")?,
        attempts: row.try_get("attempts")?,
        last_error: row.try_get("last_error")?,
        created_at: row.try_get("created_at")?,
    })
}

impl Backend {
    /// Row locking for the claim: PostgreSQL workers skip rows another
    /// worker holds; SQLite has one writer at a time, so nothing is needed.
    pub(super) fn skip_locked(self) -> &'static str {
        match self {
            Backend::Postgres | Backend::Mysql => " FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        }
    }
}

impl Store {
    /// Queues `email` in `tx`, as it may go: to an address that is not a
    /// verified account's, without the text its sender chose; and, unless
    /// it is a staff account's, not at all past
    /// [`EMAILS_PER_ADDRESS_PER_DAY`] (the action itself still happens: the
    /// email is what is given up, and logged).
    pub(super) async fn insert_email(
        &self,
        tx: &mut Transaction<'static, Any>,
        email: &NewEmail,
    ) -> StoreResult<()> {
        let now = now_ms();
        let account = sqlx::query(self.sql("SELECT verified, role FROM users WHERE email = ?"))
            .bind(&email.to)
            .fetch_optional(&mut **tx)
            .await?;
        let (verified, staff) = match account {
            Some(row) => (
                row.try_get::<i64, _>("verified")? != 0,
                row.try_get::<String, _>("role")? != "customer",
            ),
            None => (false, false),
        };
        // Staff accounts are made by an admin, never typed by a visitor:
        // their notifications are not counted against the cap.
        if !staff {
            let sent_today: i64 = sqlx::query(self.sql(
                "SELECT COUNT(*) AS n FROM email_outbox WHERE to_email = ? AND created_at > ?",
            ))
            .bind(&email.to)
            .bind(now - 24 * 3600 * 1000)
            .fetch_one(&mut **tx)
            .await?
            .try_get("n")?;
            if sent_today >= EMAILS_PER_ADDRESS_PER_DAY {
                tracing::warn!(
                    template = email.template,
                    "an address had its emails for the day; this one is not sent"
                );
                return Ok(());
            }
        }
        let mut payload = email.payload.clone();
        if !verified && let Some(fields) = payload.as_object_mut() {
            for field in CHOSEN_BY_THE_SENDER {
                fields.remove(field);
            }
        }
        sqlx::query(self.sql(
            "INSERT INTO email_outbox (to_email, template, payload, next_attempt_at, created_at) VALUES (?, ?, ?, ?, ?)",
        ))
        .bind(&email.to)
        .bind(email.template)
        .bind(payload.to_string())
        .bind(now)
        .bind(now)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// Queues an email that is the only effect of its action.
    pub async fn enqueue_email(&self, email: &NewEmail) -> StoreResult<()> {
        let (mut tx, _turn) = self.write_tx().await?;
        self.insert_email(&mut tx, email).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Claims up to `limit` due emails for this worker for `lease_ms`: while
    /// the lease runs no other worker takes them; a worker that dies leaves
    /// them to be claimed again when it ends.
    pub async fn claim_due_emails(
        &self,
        limit: i64,
        lease_ms: i64,
    ) -> StoreResult<Vec<OutboxEmail>> {
        let now = now_ms();
        let (mut tx, _turn) = self.write_tx().await?;
        let due = format!(
            "SELECT id FROM email_outbox
             WHERE status IN ('pending', 'sending') AND next_attempt_at <= ?
             ORDER BY id LIMIT ?{}",
            self.backend.skip_locked()
        );
        let rows = if self.backend == Backend::Mysql {
            // MariaDB/MySQL neither return rows from an UPDATE nor take a
            // LIMIT in an IN subquery: lock the due rows, then update and
            // read those.
            let ids: Vec<i64> = sqlx::query(self.sql(&due))
                .bind(now)
                .bind(limit)
                .fetch_all(&mut *tx)
                .await?
                .iter()
                .map(|row| row.try_get("id"))
                .collect::<Result<_, _>>()?;
            if ids.is_empty() {
                Vec::new()
            } else {
                let list = vec!["?"; ids.len()].join(", ");
                let mut update = sqlx::query(self.sql(&format!(
                    "UPDATE email_outbox SET status = 'sending', attempts = attempts + 1, next_attempt_at = ?
                     WHERE id IN ({list})"
                )))
                .bind(now + lease_ms);
                let mut select = sqlx::query(self.sql(&format!(
                    "SELECT {COLUMNS} FROM email_outbox WHERE id IN ({list}) ORDER BY id"
                )));
                for id in &ids {
                    update = update.bind(*id);
                    select = select.bind(*id);
                }
                update.execute(&mut *tx).await?;
                select.fetch_all(&mut *tx).await?
            }
        } else {
            sqlx::query(self.sql(&format!(
                "UPDATE email_outbox SET status = 'sending', attempts = attempts + 1, next_attempt_at = ?
                 WHERE id IN ({due})
                 RETURNING {COLUMNS}"
            )))
            .bind(now + lease_ms)
            .bind(now)
            .bind(limit)
            .fetch_all(&mut *tx)
            .await?
        };
        tx.commit().await?;
        Ok(rows.iter().map(email).collect::<Result<_, _>>()?)
    }

    pub async fn email_sent(&self, id: i64) -> StoreResult<()> {
        sqlx::query(
            self.sql("UPDATE email_outbox SET status = 'sent', last_error = '' WHERE id = ?"),
        )
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A failed attempt that will be tried again at `next_attempt_at`.
    pub async fn email_retry(&self, id: i64, next_attempt_at: i64, error: &str) -> StoreResult<()> {
        sqlx::query(self.sql(
            "UPDATE email_outbox SET status = 'pending', next_attempt_at = ?, last_error = ? WHERE id = ?",
        ))
        .bind(next_attempt_at)
        .bind(error)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Given up: shown to admins with the reason.
    pub async fn email_failed(&self, id: i64, error: &str) -> StoreResult<()> {
        sqlx::query(
            self.sql("UPDATE email_outbox SET status = 'failed', last_error = ? WHERE id = ?"),
        )
        .bind(error)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn outbox_pending(&self) -> StoreResult<i64> {
        let row =
            sqlx::query(self.sql(
                "SELECT COUNT(*) AS n FROM email_outbox WHERE status IN ('pending', 'sending')",
            ))
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("n")?)
    }

    /// The newest emails first, for the admin page and tests.
    pub async fn outbox(&self, limit: i64) -> StoreResult<Vec<OutboxEmail>> {
        let rows = sqlx::query(self.sql(&format!(
            "SELECT {COLUMNS} FROM email_outbox ORDER BY id DESC LIMIT ?"
        )))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(email).collect::<Result<_, _>>()?)
    }
}
