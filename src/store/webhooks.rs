//! Webhook endpoints and the event journal. A journal row is written by the
//! store function that makes the change, in its transaction, and only while
//! an enabled endpoint wants that kind of event: an install without
//! webhooks pays one indexless look at an empty table, and every instance
//! agrees without a cache. Deliveries are in `webhook_deliveries`.

use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use super::{Store, StoreError, StoreResult, now_ms};
use crate::model::ConversationId;

/// An endpoint an admin registered.
#[derive(Debug, Clone)]
pub struct WebhookEndpoint {
    pub id: i64,
    pub url: String,
    /// The event types it receives.
    pub events: Vec<String>,
    /// Its signing secret, sealed with the server secret.
    pub secret_sealed: String,
    /// Whether private notes reach it (`message.created`).
    pub include_private: bool,
    pub enabled: bool,
    /// Why it was turned off, for the admin page; empty while enabled.
    pub disabled_reason: String,
    pub failures_in_row: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

/// What an admin sets on an endpoint.
pub struct EndpointSettings<'a> {
    pub url: &'a str,
    pub events: &'a [&'a str],
    pub include_private: bool,
}

/// A journal row: what happened, to be turned into deliveries.
#[derive(Debug, Clone)]
pub struct JournalEvent {
    pub id: i64,
    pub kind: String,
    pub conversation_id: Option<ConversationId>,
    /// The ids (and changes) the event is about, as JSON.
    pub refs: serde_json::Value,
    pub created_at: i64,
}

const ENDPOINT_COLUMNS: &str = "id, url, events, secret_sealed, include_private, enabled, \
     disabled_reason, failures_in_row, created_at, updated_at";

fn endpoint(row: &AnyRow) -> Result<WebhookEndpoint, sqlx::Error> {
    let events: String = row.try_get("events")?;
    Ok(WebhookEndpoint {
        id: row.try_get("id")?,
        url: row.try_get("url")?,
        events: events
            .split(',')
            .filter(|e| !e.is_empty())
            .map(str::to_string)
            .collect(),
        secret_sealed: row.try_get("secret_sealed")?,
        include_private: row.try_get::<i64, _>("include_private")? != 0,
        enabled: row.try_get::<i64, _>("enabled")? != 0,
        disabled_reason: row.try_get("disabled_reason")?,
        failures_in_row: row.try_get("failures_in_row")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// `,a,b,` : each type between commas, so that `LIKE '%,a,%'` finds it.
fn events_column(events: &[&str]) -> String {
    format!(",{},", events.join(","))
}

fn journal_event(row: &AnyRow) -> Result<JournalEvent, sqlx::Error> {
    let refs: String = row.try_get("refs")?;
    Ok(JournalEvent {
        id: row.try_get("id")?,
        kind: row.try_get("kind")?,
        conversation_id: row
            .try_get::<Option<i64>, _>("conversation_id")?
            .map(ConversationId),
        refs: serde_json::from_str(&refs).unwrap_or(serde_json::Value::Null),
        created_at: row.try_get("created_at")?,
    })
}

impl Store {
    /// Writes a journal row for `kind` in `tx`, if an enabled endpoint
    /// subscribes to it (and, for a private note, takes private notes).
    /// Callers that touch a conversation lock its row first, so that one
    /// conversation's journal ids follow commit order.
    pub(super) async fn journal(
        &self,
        tx: &mut Transaction<'static, Any>,
        kind: &str,
        conversation_id: Option<ConversationId>,
        refs: serde_json::Value,
        private: bool,
    ) -> StoreResult<()> {
        sqlx::query(self.sql(
            "INSERT INTO webhook_events (kind, conversation_id, refs, created_at)
             SELECT ?, ?, ?, ? FROM webhook_endpoints
             WHERE enabled = 1 AND events LIKE ? AND (? = 0 OR include_private = 1)
             LIMIT 1",
        ))
        .bind(kind)
        .bind(conversation_id.map(|c| c.0))
        .bind(refs.to_string())
        .bind(now_ms())
        .bind(format!("%,{kind},%"))
        .bind(i64::from(private))
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    pub async fn create_webhook_endpoint(
        &self,
        settings: &EndpointSettings<'_>,
        secret_sealed: &str,
    ) -> StoreResult<i64> {
        let now = now_ms();
        let insert = sqlx::query(self.sql(&self.backend.returning(
            "INSERT INTO webhook_endpoints (url, events, secret_sealed, include_private, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?)",
            "id",
        )))
        .bind(settings.url)
        .bind(events_column(settings.events))
        .bind(secret_sealed)
        .bind(i64::from(settings.include_private))
        .bind(now)
        .bind(now);
        let _turn = self.write_turn().await;
        self.inserted_id(insert, &mut *self.pool.acquire().await?)
            .await
    }

    pub async fn update_webhook_endpoint(
        &self,
        id: i64,
        settings: &EndpointSettings<'_>,
    ) -> StoreResult<()> {
        let _turn = self.write_turn().await;
        let updated = sqlx::query(self.sql(
            "UPDATE webhook_endpoints SET url = ?, events = ?, include_private = ?, updated_at = ?
             WHERE id = ?",
        ))
        .bind(settings.url)
        .bind(events_column(settings.events))
        .bind(i64::from(settings.include_private))
        .bind(now_ms())
        .bind(id)
        .execute(&self.pool)
        .await?;
        if updated.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Removes an endpoint with its deliveries and log.
    pub async fn delete_webhook_endpoint(&self, id: i64) -> StoreResult<()> {
        let (mut tx, _turn) = self.write_tx().await?;
        for table in ["webhook_attempts", "webhook_deliveries"] {
            sqlx::query(self.sql(&format!("DELETE FROM {table} WHERE endpoint_id = ?")))
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query(self.sql("DELETE FROM webhook_endpoints WHERE id = ?"))
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Turns a disabled endpoint back on: its waiting deliveries go out
    /// again, oldest first.
    pub async fn enable_webhook_endpoint(&self, id: i64) -> StoreResult<()> {
        let _turn = self.write_turn().await;
        sqlx::query(self.sql(
            "UPDATE webhook_endpoints SET enabled = 1, disabled_reason = '', failures_in_row = 0, updated_at = ?
             WHERE id = ?",
        ))
        .bind(now_ms())
        .bind(id)
        .execute(&self.pool)
        .await?;
        // Due at once rather than after the backoff that disabled it.
        sqlx::query(self.sql(
            "UPDATE webhook_deliveries SET next_attempt_at = ? WHERE endpoint_id = ? AND status = 'pending'",
        ))
        .bind(now_ms())
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn webhook_endpoints(&self) -> StoreResult<Vec<WebhookEndpoint>> {
        let rows = sqlx::query(self.sql(&format!(
            "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints ORDER BY id"
        )))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(endpoint).collect::<Result<_, _>>()?)
    }

    pub async fn webhook_endpoint(&self, id: i64) -> StoreResult<Option<WebhookEndpoint>> {
        let row = sqlx::query(self.sql(&format!(
            "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id = ?"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(endpoint).transpose()?)
    }

    /// Claims up to `limit` journal rows not fanned out yet, for
    /// `lease_ms`: of each conversation only its oldest waiting row, so
    /// that its deliveries are made in order.
    pub async fn claim_webhook_events(
        &self,
        limit: i64,
        lease_ms: i64,
    ) -> StoreResult<Vec<JournalEvent>> {
        let now = now_ms();
        let (mut tx, _turn) = self.write_tx().await?;
        let due = format!(
            "SELECT e.id FROM webhook_events e
             WHERE e.fanned_out = 0 AND e.claimed_until < ?
               AND NOT EXISTS (SELECT 1 FROM webhook_events o
                               WHERE o.fanned_out = 0 AND o.conversation_id = e.conversation_id
                                 AND o.id < e.id)
             ORDER BY e.id LIMIT ?{}",
            self.backend.skip_locked()
        );
        let ids: Vec<i64> = sqlx::query(self.sql(&due))
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
                "UPDATE webhook_events SET claimed_until = ? WHERE id IN",
                "SELECT id, kind, conversation_id, refs, created_at FROM webhook_events WHERE id IN",
                "id",
            )
            .await?;
        tx.commit().await?;
        Ok(rows.iter().map(journal_event).collect::<Result<_, _>>()?)
    }

    /// The second half of both webhook claims, in `tx`: leases the rows
    /// `ids` until `until` (`update` up to its `IN`, its one parameter the
    /// lease's end) and reads them back (`select` up to its `IN`), in
    /// `order_by` order.
    pub(super) async fn lease_and_read(
        &self,
        tx: &mut Transaction<'static, Any>,
        ids: &[i64],
        until: i64,
        update: &str,
        select: &str,
        order_by: &str,
    ) -> StoreResult<Vec<AnyRow>> {
        let list = vec!["?"; ids.len()].join(", ");
        let mut lease = sqlx::query(self.sql(&format!("{update} ({list})"))).bind(until);
        let mut read = sqlx::query(self.sql(&format!("{select} ({list}) ORDER BY {order_by}")));
        for id in ids {
            lease = lease.bind(*id);
            read = read.bind(*id);
        }
        lease.execute(&mut **tx).await?;
        Ok(read.fetch_all(&mut **tx).await?)
    }

    /// Records that `event` was fanned out into `deliveries` (endpoint id,
    /// frozen body), all or nothing. False when another worker did it
    /// first (its lease ran out meanwhile): nothing is written twice.
    pub async fn record_fan_out(
        &self,
        event: &JournalEvent,
        deliveries: &[(i64, String)],
    ) -> StoreResult<bool> {
        let now = now_ms();
        let (mut tx, _turn) = self.write_tx().await?;
        let mine = sqlx::query(
            self.sql("UPDATE webhook_events SET fanned_out = 1 WHERE id = ? AND fanned_out = 0"),
        )
        .bind(event.id)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if !mine {
            tx.rollback().await?;
            return Ok(false);
        }
        for (endpoint_id, body) in deliveries {
            self.insert_delivery(&mut tx, *endpoint_id, event, body, now)
                .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    pub(super) async fn insert_delivery(
        &self,
        tx: &mut Transaction<'static, Any>,
        endpoint_id: i64,
        event: &JournalEvent,
        body: &str,
        now: i64,
    ) -> StoreResult<()> {
        sqlx::query(self.sql(
            "INSERT INTO webhook_deliveries (endpoint_id, event_id, conversation_id, kind, body, next_attempt_at, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        ))
        .bind(endpoint_id)
        .bind(event.id)
        .bind(event.conversation_id.map(|c| c.0))
        .bind(event.kind.as_str())
        .bind(body)
        .bind(now)
        .bind(now)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// A `ping` for one endpoint: a journal row (for its id) already fanned
    /// out, and its one delivery, whose body `body` makes from the event.
    pub async fn queue_webhook_ping(
        &self,
        endpoint_id: i64,
        body: impl FnOnce(&JournalEvent) -> String,
    ) -> StoreResult<i64> {
        let now = now_ms();
        let (mut tx, _turn) = self.write_tx().await?;
        let insert = sqlx::query(self.sql(&self.backend.returning(
            "INSERT INTO webhook_events (kind, conversation_id, refs, created_at, fanned_out)
             VALUES ('ping', NULL, ?, ?, 1)",
            "id",
        )))
        .bind(serde_json::json!({ "endpoint_id": endpoint_id }).to_string())
        .bind(now);
        let id = self.inserted_id(insert, &mut tx).await?;
        let event = JournalEvent {
            id,
            kind: "ping".into(),
            conversation_id: None,
            refs: serde_json::json!({ "endpoint_id": endpoint_id }),
            created_at: now,
        };
        self.insert_delivery(&mut tx, endpoint_id, &event, &body(&event), now)
            .await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Journal rows still to fan out, for tests and `/metrics`.
    pub async fn webhook_events_waiting(&self) -> StoreResult<i64> {
        let row =
            sqlx::query(self.sql("SELECT COUNT(*) AS n FROM webhook_events WHERE fanned_out = 0"))
                .fetch_one(&self.pool)
                .await?;
        Ok(row.try_get("n")?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_event_type_sits_between_commas() {
        let column = events_column(&["message.created", "ticket.created"]);
        assert_eq!(column, ",message.created,ticket.created,");
        // `message.created` must not match a longer type that contains it.
        assert!(!column.contains(",message.create,"));
    }
}
