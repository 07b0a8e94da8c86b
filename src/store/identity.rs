//! Verified identity (domain::identity): each site's signing secret (kept
//! sealed; the store never sees it open), visitors known by the host site's
//! user id, and the extra tokens such a visitor holds on other devices.

use sqlx::Row;

use super::{Store, StoreResult, now_ms};
use crate::model::{ConversationId, SiteId, Visitor, VisitorId};

/// A site's identity settings, the secrets still sealed.
#[derive(Debug, Clone, PartialEq)]
pub struct SiteIdentity {
    pub secret: String,
    pub previous_secret: Option<String>,
    /// Until when (ms) the previous secret is still accepted.
    pub previous_until: Option<i64>,
    pub require_verified: bool,
}

impl Store {
    pub async fn site_identity(&self, site_id: SiteId) -> StoreResult<Option<SiteIdentity>> {
        let row = sqlx::query(self.sql(
            "SELECT secret, previous_secret, previous_until, require_verified
             FROM site_identity WHERE site_id = ?",
        ))
        .bind(site_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok(SiteIdentity {
                secret: row.try_get("secret")?,
                previous_secret: row.try_get("previous_secret")?,
                previous_until: row.try_get("previous_until")?,
                require_verified: row.try_get::<i64, _>("require_verified")? != 0,
            })
        })
        .transpose()
        .map_err(|e: sqlx::Error| e.into())
    }

    /// Writes a site's identity settings (all of them).
    pub async fn save_site_identity(
        &self,
        site_id: SiteId,
        identity: &SiteIdentity,
    ) -> StoreResult<()> {
        let _turn = self.write_turn().await;
        sqlx::query(self.sql(&self.backend.upsert(
            "INSERT INTO site_identity (site_id, secret, previous_secret, previous_until, require_verified, updated_at)
             VALUES (?, ?, ?, ?, ?, ?)",
            &["site_id"],
            &["secret", "previous_secret", "previous_until", "require_verified", "updated_at"],
        )))
        .bind(site_id)
        .bind(&identity.secret)
        .bind(identity.previous_secret.as_deref())
        .bind(identity.previous_until)
        .bind(i64::from(identity.require_verified))
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The visitor a device's extra token names (a verified customer's
    /// second browser), on this site.
    pub async fn visitor_by_device_token(
        &self,
        site_id: SiteId,
        token_hash: &str,
    ) -> StoreResult<Option<Visitor>> {
        let row = sqlx::query(self.sql(
            "SELECT v.id, v.site_id, v.user_id, v.name, v.email FROM visitor_tokens t
             JOIN visitors v ON v.id = t.visitor_id
             WHERE t.token_hash = ? AND v.site_id = ?",
        ))
        .bind(token_hash)
        .bind(site_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(super::visitors::visitor).transpose()?)
    }

    /// The host site's user id a visitor was verified as, if any.
    pub async fn visitor_external_id(&self, id: VisitorId) -> StoreResult<Option<String>> {
        let row = sqlx::query(self.sql("SELECT external_id FROM visitors WHERE id = ?"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row
            .map(|r| r.try_get::<Option<String>, _>("external_id"))
            .transpose()?
            .flatten())
    }

    /// The visitor verified as `external_id` on this site.
    pub async fn visitor_by_external_id(
        &self,
        site_id: SiteId,
        external_id: &str,
    ) -> StoreResult<Option<Visitor>> {
        let row = sqlx::query(self.sql(
            "SELECT id, site_id, user_id, name, email FROM visitors WHERE site_id = ? AND external_id = ?",
        ))
        .bind(site_id)
        .bind(external_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(super::visitors::visitor).transpose()?)
    }

    /// Marks an anonymous visitor as the host site's user `external_id`,
    /// with the contact details the site vouched for; `false` if another
    /// visitor of the site has that id (made meanwhile) or this one was
    /// verified as someone already.
    pub async fn verify_visitor(
        &self,
        id: VisitorId,
        external_id: &str,
        name: &str,
        email: &str,
    ) -> StoreResult<bool> {
        let _turn = self.write_turn().await;
        let updated = sqlx::query(self.sql(
            "UPDATE visitors SET external_id = ?,
                 name = CASE WHEN ? = '' THEN name ELSE ? END,
                 email = CASE WHEN ? = '' THEN email ELSE ? END,
                 email_verified = CASE WHEN ? = '' THEN 0 ELSE 1 END
             WHERE id = ? AND external_id IS NULL",
        ))
        .bind(external_id)
        .bind(name)
        .bind(name)
        .bind(email)
        .bind(email)
        .bind(email)
        .bind(id)
        .execute(&self.pool)
        .await;
        match updated {
            Ok(done) => Ok(done.rows_affected() == 1),
            Err(sqlx::Error::Database(db)) if db.is_unique_violation() => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// A verified visitor with a first token (a customer's first device).
    pub async fn create_verified_visitor(
        &self,
        site_id: SiteId,
        token_hash: &str,
        external_id: &str,
        name: &str,
        email: &str,
    ) -> StoreResult<Option<Visitor>> {
        let visitor = self
            .create_visitor(site_id, token_hash, name, email)
            .await?;
        if self
            .verify_visitor(visitor.id, external_id, name, email)
            .await?
        {
            return Ok(Some(visitor));
        }
        // Made meanwhile by the same customer's other device: this one goes.
        let _turn = self.write_turn().await;
        sqlx::query(self.sql("DELETE FROM visitors WHERE id = ?"))
            .bind(visitor.id)
            .execute(&self.pool)
            .await?;
        Ok(None)
    }

    /// Updates what the host site vouches for about its verified user.
    pub async fn update_verified_contact(
        &self,
        id: VisitorId,
        name: &str,
        email: &str,
    ) -> StoreResult<()> {
        let _turn = self.write_turn().await;
        sqlx::query(self.sql(
            "UPDATE visitors SET
                 name = CASE WHEN ? = '' THEN name ELSE ? END,
                 email = CASE WHEN ? = '' THEN email ELSE ? END,
                 email_verified = CASE WHEN ? = '' THEN email_verified ELSE 1 END
             WHERE id = ?",
        ))
        .bind(name)
        .bind(name)
        .bind(email)
        .bind(email)
        .bind(email)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Gives a visitor one more token (another device).
    pub async fn add_visitor_token(&self, id: VisitorId, token_hash: &str) -> StoreResult<()> {
        let _turn = self.write_turn().await;
        sqlx::query(self.sql(
            "INSERT INTO visitor_tokens (token_hash, visitor_id, created_at) VALUES (?, ?, ?)",
        ))
        .bind(token_hash)
        .bind(id)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Ends one token, wherever it is kept: that browser is nobody now.
    pub async fn revoke_visitor_token(&self, site_id: SiteId, token_hash: &str) -> StoreResult<()> {
        let (mut tx, _turn) = self.write_tx().await?;
        sqlx::query(
            self.sql("UPDATE visitors SET token_hash = NULL WHERE site_id = ? AND token_hash = ?"),
        )
        .bind(site_id)
        .bind(token_hash)
        .execute(&mut *tx)
        .await?;
        sqlx::query(self.sql(
            "DELETE FROM visitor_tokens WHERE token_hash = ?
             AND visitor_id IN (SELECT id FROM visitors WHERE site_id = ?)",
        ))
        .bind(token_hash)
        .bind(site_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Moves an anonymous visitor's conversations to the verified visitor
    /// `into` and ends its token: the same person, now known. Returns the
    /// conversations moved. The caller has checked `from` is anonymous.
    pub async fn merge_visitor(
        &self,
        from: VisitorId,
        into: VisitorId,
    ) -> StoreResult<Vec<ConversationId>> {
        let (mut tx, _turn) = self.write_tx().await?;
        let rows = sqlx::query(self.sql(
            "SELECT id FROM conversations WHERE visitor_id = ?
             AND EXISTS (SELECT 1 FROM visitors WHERE id = ? AND external_id IS NULL)",
        ))
        .bind(from)
        .bind(from)
        .fetch_all(&mut *tx)
        .await?;
        let moved = rows
            .iter()
            .map(|r| r.try_get("id"))
            .collect::<Result<Vec<ConversationId>, _>>()?;
        sqlx::query(self.sql(
            "UPDATE conversations SET visitor_id = ? WHERE visitor_id = ?
             AND EXISTS (SELECT 1 FROM visitors WHERE id = ? AND external_id IS NULL)",
        ))
        .bind(into)
        .bind(from)
        .bind(from)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            self.sql("UPDATE visitors SET token_hash = NULL WHERE id = ? AND external_id IS NULL"),
        )
        .bind(from)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(moved)
    }
}
