//! Visitors: the people on the other side of the widget, known by a token
//! kept in their browser. Their contact details, and when they were last
//! connected (which decides whether a reply is also emailed to them).

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreResult, now_ms};
use crate::model::{SiteId, Visitor, VisitorId};

pub(super) fn visitor(row: &AnyRow) -> Result<Visitor, sqlx::Error> {
    Ok(Visitor {
        id: row.try_get("id")?,
        site_id: row.try_get("site_id")?,
        user_id: row.try_get("user_id")?,
        name: row.try_get("name")?,
        email: row.try_get("email")?,
    })
}

impl Store {
    pub async fn create_visitor(
        &self,
        site_id: SiteId,
        token_hash: &str,
        name: &str,
        email: &str,
    ) -> StoreResult<Visitor> {
        let now = now_ms();
        const COLUMNS: &str = "id, site_id, user_id, name, email";
        let insert = sqlx::query(self.sql(&self.backend.returning(
            "INSERT INTO visitors (site_id, token_hash, name, email, created_at, last_seen_at)
             VALUES (?, ?, ?, ?, ?, ?)",
            COLUMNS,
        )))
        .bind(site_id)
        .bind(token_hash)
        .bind(name)
        .bind(email)
        .bind(now)
        .bind(now);
        let (mut tx, _turn) = self.write_tx().await?;
        let row = self
            .inserted_row(insert, "visitors", COLUMNS, &mut tx)
            .await?;
        let created = visitor(&row)?;
        let refs = serde_json::json!({ "visitor_id": created.id.0 });
        self.journal(&mut tx, "contact.created", None, refs, false)
            .await?;
        tx.commit().await?;
        Ok(created)
    }

    /// The visitor holding this token on this site, if any (its first
    /// browser's, or another device's of a verified customer).
    pub async fn visitor_by_token(
        &self,
        site_id: SiteId,
        token_hash: &str,
    ) -> StoreResult<Option<Visitor>> {
        let row = sqlx::query(self.sql(
            "SELECT id, site_id, user_id, name, email FROM visitors WHERE site_id = ? AND token_hash = ?",
        ))
        .bind(site_id)
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(row) => Ok(Some(visitor(&row)?)),
            // A verified customer's other devices hold their own tokens.
            None => self.visitor_by_device_token(site_id, token_hash).await,
        }
    }

    pub async fn visitor(&self, id: VisitorId) -> StoreResult<Option<Visitor>> {
        let row = sqlx::query(
            self.sql("SELECT id, site_id, user_id, name, email FROM visitors WHERE id = ?"),
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(visitor).transpose()?)
    }

    /// Updates what the visitor told us about themselves; empty keeps the old value.
    pub async fn update_visitor_contact(
        &self,
        id: VisitorId,
        name: &str,
        email: &str,
    ) -> StoreResult<()> {
        sqlx::query(self.sql(
            // A typed email is nobody's proof: one that changes the
            // address ends its verification. (First: MariaDB assigns left
            // to right, so `email` must still be the old one here.)
            "UPDATE visitors SET email_verified = CASE WHEN ? = '' OR ? = email THEN email_verified ELSE 0 END,
                                 name = CASE WHEN ? = '' THEN name ELSE ? END,
                                 email = CASE WHEN ? = '' THEN email ELSE ? END,
                                 last_seen_at = ?
             WHERE id = ?",
        ))
        .bind(email)
        .bind(email)
        .bind(name)
        .bind(name)
        .bind(email)
        .bind(email)
        .bind(now_ms())
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Marks these visitors as connected now.
    pub async fn touch_visitors(&self, ids: &[VisitorId]) -> StoreResult<()> {
        let _turn = self.write_turn().await;
        if ids.is_empty() {
            return Ok(());
        }
        let placeholders = vec!["?"; ids.len()].join(", ");
        let mut query = sqlx::query(self.sql(&format!(
            "UPDATE visitors SET last_seen_at = ? WHERE id IN ({placeholders})"
        )))
        .bind(now_ms());
        for id in ids {
            query = query.bind(*id);
        }
        query.execute(&self.pool).await?;
        Ok(())
    }

    pub async fn visitor_left(&self, id: VisitorId) -> StoreResult<()> {
        let _turn = self.write_turn().await;
        sqlx::query(self.sql("UPDATE visitors SET last_seen_at = 0 WHERE id = ?"))
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn visitor_last_seen(&self, id: VisitorId) -> StoreResult<i64> {
        let row = sqlx::query(self.sql("SELECT last_seen_at FROM visitors WHERE id = ?"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row
            .map(|r| r.try_get("last_seen_at"))
            .transpose()?
            .unwrap_or(0))
    }
}
