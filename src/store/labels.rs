//! Labels and which tickets carry them. A name's uniqueness (ignoring case)
//! is the `name_key` column's unique index: the domain lower-cases it, the
//! database refuses a second one, even from two admins at once.

use std::collections::HashMap;

use sqlx::Row;
use sqlx::any::AnyRow;

use super::rows::text_enum;
use super::ticket_activity::TicketActivity;
use super::{Store, StoreError, StoreResult, now_ms, unique_as};
use crate::model::{EventKind, Label, LabelColour, LabelId, Ticket, User};

fn label(row: &AnyRow) -> Result<Label, sqlx::Error> {
    Ok(Label {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        colour: text_enum(row, "colour", LabelColour::parse)?,
    })
}

impl Store {
    /// Every label, by name.
    pub async fn labels(&self) -> StoreResult<Vec<Label>> {
        let rows = sqlx::query(self.sql("SELECT id, name, colour FROM labels ORDER BY name_key"))
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(label).collect::<Result<_, _>>()?)
    }

    pub async fn label(&self, id: LabelId) -> StoreResult<Option<Label>> {
        let row = sqlx::query(self.sql("SELECT id, name, colour FROM labels WHERE id = ?"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(label).transpose()?)
    }

    /// Adds a label; `key` is its name as compared (lower-cased).
    /// [`StoreError::Duplicate`]`("name")` when the key is taken.
    pub async fn add_label(
        &self,
        name: &str,
        key: &str,
        colour: LabelColour,
    ) -> StoreResult<LabelId> {
        let (mut tx, _turn) = self.write_tx().await?;
        let insert = sqlx::query(self.sql(&self.backend.returning(
            "INSERT INTO labels (name, name_key, colour, created_at) VALUES (?, ?, ?, ?)",
            "id",
        )))
        .bind(name)
        .bind(key)
        .bind(colour.as_str())
        .bind(now_ms());
        let id = self
            .inserted_id(insert, &mut tx)
            .await
            .map_err(|e| match e {
                StoreError::Database(db) => unique_as("name")(db),
                other => other,
            })?;
        tx.commit().await?;
        Ok(LabelId(id))
    }

    /// Renames or recolours a label; the tickets carrying it keep it.
    pub async fn save_label(
        &self,
        id: LabelId,
        (name, key): (&str, &str),
        colour: LabelColour,
    ) -> StoreResult<()> {
        let _turn = self.write_turn().await;
        let saved = sqlx::query(
            self.sql("UPDATE labels SET name = ?, name_key = ?, colour = ? WHERE id = ?"),
        )
        .bind(name)
        .bind(key)
        .bind(colour.as_str())
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(unique_as("name"))?;
        // MariaDB/MySQL count only changed rows: a save of the same values
        // is no "not found".
        if saved.rows_affected() == 0 && self.label(id).await?.is_none() {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Deletes a label and takes it off every ticket, in one transaction.
    /// The label row goes first: on PostgreSQL and MariaDB/MySQL that locks
    /// it, so a ticket being labelled at the same moment (which locks it
    /// too, [`Store::set_ticket_label`]) waits and then finds it gone.
    pub async fn delete_label(&self, id: LabelId) -> StoreResult<()> {
        let (mut tx, _turn) = self.write_tx().await?;
        let deleted = sqlx::query(self.sql("DELETE FROM labels WHERE id = ?"))
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if deleted == 0 {
            return Err(StoreError::NotFound);
        }
        sqlx::query(self.sql("DELETE FROM ticket_labels WHERE label_id = ?"))
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// How many tickets carry each label (labels on none are left out).
    pub async fn label_counts(&self) -> StoreResult<Vec<(LabelId, i64)>> {
        let rows = sqlx::query(
            self.sql("SELECT label_id, COUNT(*) AS n FROM ticket_labels GROUP BY label_id"),
        )
        .fetch_all(&self.pool)
        .await?;
        let mut counts = Vec::with_capacity(rows.len());
        for row in &rows {
            let label: LabelId = row.try_get("label_id")?;
            let n: i64 = row.try_get("n")?;
            counts.push((label, n));
        }
        Ok(counts)
    }

    /// Puts `label` on the ticket (`on`) or takes it off, with its private
    /// timeline entry by `actor`, in one transaction. False when there was
    /// nothing to do (already on, or not on); [`StoreError::NotFound`] when
    /// the label was deleted meanwhile.
    pub async fn set_ticket_label(
        &self,
        ticket: &Ticket,
        label: &Label,
        on: bool,
        actor: &User,
    ) -> StoreResult<bool> {
        let (mut tx, _turn) = self.write_tx().await?;
        let lock = if self.backend == super::Backend::Sqlite {
            "SELECT id FROM labels WHERE id = ?"
        } else {
            "SELECT id FROM labels WHERE id = ? FOR UPDATE"
        };
        if sqlx::query(self.sql(lock))
            .bind(label.id)
            .fetch_optional(&mut *tx)
            .await?
            .is_none()
        {
            return Err(StoreError::NotFound);
        }
        let there = sqlx::query(
            self.sql("SELECT label_id FROM ticket_labels WHERE ticket_id = ? AND label_id = ?"),
        )
        .bind(ticket.id)
        .bind(label.id)
        .fetch_optional(&mut *tx)
        .await?
        .is_some();
        if there == on {
            return Ok(false);
        }
        let sql = if on {
            "INSERT INTO ticket_labels (ticket_id, label_id) VALUES (?, ?)"
        } else {
            "DELETE FROM ticket_labels WHERE ticket_id = ? AND label_id = ?"
        };
        let written = sqlx::query(self.sql(sql))
            .bind(ticket.id)
            .bind(label.id)
            .execute(&mut *tx)
            .await;
        match written {
            // Put on by someone else at the same moment: theirs is the entry.
            Err(sqlx::Error::Database(db)) if db.is_unique_violation() => return Ok(false),
            other => {
                other?;
            }
        }
        let mut activity = TicketActivity::new(actor);
        let name = Some(label.name.clone());
        // Labels are for staff: the customer's timeline never shows them.
        if on {
            activity.event(EventKind::LabelAdded, None, name, true);
        } else {
            activity.event(EventKind::LabelRemoved, name, None, true);
        }
        self.insert_activity_events(&mut tx, ticket.id, &activity, now_ms())
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// The labels of each of these tickets (by ticket row id), by name.
    pub(super) async fn labels_of(
        &self,
        ticket_ids: &[i64],
    ) -> StoreResult<HashMap<i64, Vec<Label>>> {
        let mut found: HashMap<i64, Vec<Label>> = HashMap::new();
        if ticket_ids.is_empty() {
            return Ok(found);
        }
        // One placeholder per id (a page holds at most 201): fixed text,
        // every value bound.
        let marks = vec!["?"; ticket_ids.len()].join(", ");
        let sql = format!(
            "SELECT tl.ticket_id, l.id, l.name, l.colour FROM ticket_labels tl
             JOIN labels l ON l.id = tl.label_id
             WHERE tl.ticket_id IN ({marks}) ORDER BY l.name_key"
        );
        let mut query = sqlx::query(self.sql(&sql));
        for id in ticket_ids {
            query = query.bind(*id);
        }
        for row in query.fetch_all(&self.pool).await? {
            let ticket_id: i64 = row.try_get("ticket_id")?;
            found.entry(ticket_id).or_default().push(label(&row)?);
        }
        Ok(found)
    }

    /// Fills in each ticket's labels.
    pub(super) async fn with_labels(&self, mut tickets: Vec<Ticket>) -> StoreResult<Vec<Ticket>> {
        let ids: Vec<i64> = tickets.iter().map(|t| t.id).collect();
        let mut labels = self.labels_of(&ids).await?;
        for ticket in &mut tickets {
            ticket.labels = labels.remove(&ticket.id).unwrap_or_default();
        }
        Ok(tickets)
    }
}
