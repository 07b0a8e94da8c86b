//! Webhook deliveries: one per event and endpoint, its body frozen when the
//! event was fanned out (the same body and event id on every attempt).
//! Workers on any instance claim due deliveries with a lease, as the email
//! outbox does; a delivery waits while an older one of its endpoint and
//! conversation is undelivered, so that a receiver sees a conversation's
//! events in order. Every attempt is kept for the endpoint's log.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::outbox::NewEmail;
use super::{Store, StoreResult, now_ms};

/// A claimed delivery with what it takes to send it.
#[derive(Debug, Clone)]
pub struct DueDelivery {
    pub id: i64,
    pub endpoint_id: i64,
    pub event_id: i64,
    pub kind: String,
    pub body: String,
    /// Including this one.
    pub attempts: i64,
    pub url: String,
    pub secret_sealed: String,
}

/// What one attempt came to.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// The receiver's HTTP status, if it answered.
    pub status: Option<i64>,
    pub latency_ms: i64,
    /// The start of its answer (a few hundred characters at most).
    pub excerpt: String,
    /// Why it failed, in words for the admin; empty on success.
    pub error: String,
    pub delivered: bool,
}

/// What follows a failed attempt.
pub struct AfterFailure {
    pub next_attempt_at: i64,
    /// Failed attempts in a row after which the endpoint is turned off.
    pub disable_after: i64,
    /// The reason shown on the page when it is.
    pub disabled_reason: String,
    /// The email each admin gets then (its `to` is set per admin).
    pub email: NewEmail,
}

/// One line of an endpoint's delivery log.
#[derive(Debug, Clone)]
pub struct AttemptLog {
    pub at: i64,
    pub event_id: i64,
    pub kind: String,
    pub status: Option<i64>,
    pub latency_ms: i64,
    pub excerpt: String,
    pub error: String,
    /// The delivery's state now (`pending` or `delivered`).
    pub delivery_status: String,
}

/// Attempts kept per endpoint for its log.
const LOG_KEPT: i64 = 200;

fn due(row: &AnyRow) -> Result<DueDelivery, sqlx::Error> {
    Ok(DueDelivery {
        id: row.try_get("id")?,
        endpoint_id: row.try_get("endpoint_id")?,
        event_id: row.try_get("event_id")?,
        kind: row.try_get("kind")?,
        body: row.try_get("body")?,
        attempts: row.try_get("attempts")?,
        url: row.try_get("url")?,
        secret_sealed: row.try_get("secret_sealed")?,
    })
}

impl Store {
    /// Claims up to `limit` due deliveries of enabled endpoints for
    /// `lease_ms` (their attempt counted now, so a worker that dies still
    /// counts). A delivery is skipped while an older one of the same
    /// endpoint and conversation is undelivered.
    pub async fn claim_webhook_deliveries(
        &self,
        limit: i64,
        lease_ms: i64,
    ) -> StoreResult<Vec<DueDelivery>> {
        let now = now_ms();
        let (mut tx, _turn) = self.write_tx().await?;
        // The endpoints are read in a subquery, not joined: a locking read
        // then locks deliveries only, and workers skip each other's.
        let select_due = format!(
            "SELECT d.id FROM webhook_deliveries d
             WHERE d.status = 'pending' AND d.next_attempt_at <= ? AND d.claimed_until < ?
               AND d.endpoint_id IN (SELECT id FROM webhook_endpoints WHERE enabled = 1)
               AND NOT EXISTS (SELECT 1 FROM webhook_deliveries o
                               WHERE o.endpoint_id = d.endpoint_id AND o.status = 'pending'
                                 AND o.conversation_id = d.conversation_id AND o.event_id < d.event_id)
             ORDER BY d.id LIMIT ?{}",
            self.backend.skip_locked()
        );
        let ids: Vec<i64> = sqlx::query(self.sql(&select_due))
            .bind(now)
            .bind(now)
            .bind(limit)
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|row| row.try_get("id"))
            .collect::<Result<_, _>>()?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows = self
            .lease_and_read(
                &mut tx,
                &ids,
                now + lease_ms,
                "UPDATE webhook_deliveries SET claimed_until = ?, attempts = attempts + 1 WHERE id IN",
                "SELECT d.id, d.endpoint_id, d.event_id, d.kind, d.body, d.attempts, e.url, e.secret_sealed
                 FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id
                 WHERE d.id IN",
                "d.id",
            )
            .await?;
        tx.commit().await?;
        Ok(rows.iter().map(due).collect::<Result<_, _>>()?)
    }

    /// Records an attempt: the delivery delivered, or due again at
    /// `failure.next_attempt_at`; the endpoint's run of failures reset or
    /// counted. Returns true when this failure turned the endpoint off (the
    /// admins' emails are queued in the same transaction, so exactly once).
    pub async fn record_webhook_attempt(
        &self,
        delivery: &DueDelivery,
        attempt: &Attempt,
        failure: AfterFailure,
    ) -> StoreResult<bool> {
        self.retrying_deadlocks(|| self.record_attempt_once(delivery, attempt, &failure))
            .await
    }

    async fn record_attempt_once(
        &self,
        delivery: &DueDelivery,
        attempt: &Attempt,
        failure: &AfterFailure,
    ) -> StoreResult<bool> {
        let now = now_ms();
        let (mut tx, _turn) = self.write_tx().await?;
        // The endpoint's row first: attempts of one endpoint recorded at
        // once (a batch is sent together) take turns here instead of
        // deadlocking on the log's index further on (InnoDB).
        sqlx::query(self.sql(
            "UPDATE webhook_endpoints
             SET failures_in_row = CASE WHEN ? = 1 THEN 0 ELSE failures_in_row + 1 END
             WHERE id = ?",
        ))
        .bind(i64::from(attempt.delivered))
        .bind(delivery.endpoint_id)
        .execute(&mut *tx)
        .await?;
        sqlx::query(self.sql(
            "INSERT INTO webhook_attempts (endpoint_id, delivery_id, at, status, latency_ms, excerpt, error)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        ))
        .bind(delivery.endpoint_id)
        .bind(delivery.id)
        .bind(now)
        .bind(attempt.status)
        .bind(attempt.latency_ms)
        .bind(&attempt.excerpt)
        .bind(&attempt.error)
        .execute(&mut *tx)
        .await?;
        // The log keeps the newest attempts of each endpoint.
        sqlx::query(self.sql("DELETE FROM webhook_attempts WHERE endpoint_id = ? AND id <= ?"))
            .bind(delivery.endpoint_id)
            .bind(
                self.oldest_kept_attempt(&mut tx, delivery.endpoint_id)
                    .await?,
            )
            .execute(&mut *tx)
            .await?;
        let (status, next_attempt_at, delivered_at) = if attempt.delivered {
            ("delivered", now, Some(now))
        } else {
            ("pending", failure.next_attempt_at, None)
        };
        sqlx::query(self.sql(
            "UPDATE webhook_deliveries SET status = ?, next_attempt_at = ?, claimed_until = 0,
                    last_status = ?, last_latency_ms = ?, last_excerpt = ?, last_error = ?,
                    last_attempt_at = ?, delivered_at = ?
             WHERE id = ?",
        ))
        .bind(status)
        .bind(next_attempt_at)
        .bind(attempt.status)
        .bind(attempt.latency_ms)
        .bind(&attempt.excerpt)
        .bind(&attempt.error)
        .bind(now)
        .bind(delivered_at)
        .bind(delivery.id)
        .execute(&mut *tx)
        .await?;
        if attempt.delivered {
            tx.commit().await?;
            return Ok(false);
        }
        // Only the failure that crosses the limit on an enabled endpoint
        // turns it off, so the admins hear of it once.
        let disabled = sqlx::query(self.sql(
            "UPDATE webhook_endpoints SET enabled = 0, disabled_reason = ?, updated_at = ?
             WHERE id = ? AND enabled = 1 AND failures_in_row >= ?",
        ))
        .bind(&failure.disabled_reason)
        .bind(now)
        .bind(delivery.endpoint_id)
        .bind(failure.disable_after)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if disabled {
            let admins: Vec<String> =
                sqlx::query(self.sql("SELECT email FROM users WHERE role = 'admin' ORDER BY id"))
                    .fetch_all(&mut *tx)
                    .await?
                    .iter()
                    .map(|row| row.try_get("email"))
                    .collect::<Result<_, _>>()?;
            for to in admins {
                let email = NewEmail {
                    to,
                    ..failure.email.clone()
                };
                self.insert_email(&mut tx, &email).await?;
            }
        }
        tx.commit().await?;
        Ok(disabled)
    }

    /// The id below which an endpoint's attempts are dropped from its log.
    async fn oldest_kept_attempt(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        endpoint_id: i64,
    ) -> StoreResult<i64> {
        let row = sqlx::query(self.sql(
            "SELECT id FROM webhook_attempts WHERE endpoint_id = ? ORDER BY id DESC LIMIT 1 OFFSET ?",
        ))
        .bind(endpoint_id)
        .bind(LOG_KEPT)
        .fetch_optional(&mut **tx)
        .await?;
        Ok(row.map(|r| r.try_get("id")).transpose()?.unwrap_or(0))
    }

    /// An endpoint's newest attempts first.
    pub async fn webhook_log(&self, endpoint_id: i64, limit: i64) -> StoreResult<Vec<AttemptLog>> {
        let rows = sqlx::query(self.sql(
            "SELECT a.at, a.status, a.latency_ms, a.excerpt, a.error,
                    d.event_id, d.kind, d.status AS delivery_status
             FROM webhook_attempts a JOIN webhook_deliveries d ON d.id = a.delivery_id
             WHERE a.endpoint_id = ? ORDER BY a.id DESC LIMIT ?",
        ))
        .bind(endpoint_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let log = rows
            .iter()
            .map(|row| -> Result<AttemptLog, sqlx::Error> {
                Ok(AttemptLog {
                    at: row.try_get("at")?,
                    event_id: row.try_get("event_id")?,
                    kind: row.try_get("kind")?,
                    status: row.try_get("status")?,
                    latency_ms: row.try_get("latency_ms")?,
                    excerpt: row.try_get("excerpt")?,
                    error: row.try_get("error")?,
                    delivery_status: row.try_get("delivery_status")?,
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(log)
    }

    /// Removes what webhooks no longer need: journal rows fanned out before
    /// `events_before` (their deliveries carry the body and the event id),
    /// and deliveries delivered before `delivered_before`, with their log
    /// lines. A waiting delivery stays however old, until it goes out or
    /// its endpoint is removed. Returns (events, deliveries) removed.
    pub async fn prune_webhooks(
        &self,
        events_before: i64,
        delivered_before: i64,
    ) -> StoreResult<(u64, u64)> {
        let (mut tx, _turn) = self.write_tx().await?;
        let events = sqlx::query(
            self.sql("DELETE FROM webhook_events WHERE fanned_out = 1 AND created_at < ?"),
        )
        .bind(events_before)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        sqlx::query(self.sql(
            "DELETE FROM webhook_attempts WHERE delivery_id IN
                 (SELECT id FROM webhook_deliveries WHERE status = 'delivered' AND delivered_at < ?)",
        ))
        .bind(delivered_before)
        .execute(&mut *tx)
        .await?;
        let deliveries =
            sqlx::query(self.sql(
                "DELETE FROM webhook_deliveries WHERE status = 'delivered' AND delivered_at < ?",
            ))
            .bind(delivered_before)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok((events, deliveries))
    }

    /// Deliveries of an endpoint not delivered yet.
    pub async fn webhook_pending(&self, endpoint_id: i64) -> StoreResult<i64> {
        let row = sqlx::query(self.sql(
            "SELECT COUNT(*) AS n FROM webhook_deliveries WHERE endpoint_id = ? AND status = 'pending'",
        ))
        .bind(endpoint_id)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get("n")?)
    }
}
