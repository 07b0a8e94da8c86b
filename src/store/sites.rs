//! Sites: the websites that embed the chat widget, with the origins allowed
//! to embed it and how the widget looks. A fresh install has one; admins
//! add more, and remove them (`domain::sites` decides what removing means).

use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use super::rows::{flag, text_enum};
use super::{Store, StoreError, StoreResult, now_ms};
use crate::model::{SiteId, WidgetPosition};

#[derive(Debug, Clone)]
pub struct Site {
    pub id: SiteId,
    pub key: String,
    pub name: String,
    /// Origins (`https://shop.example.com`) whose pages may run the widget.
    pub allowed_origins: Vec<String>,
    pub greeting: String,
    pub color: String,
    pub require_email: bool,
    pub position: WidgetPosition,
    /// When it was archived: its history stays, its widget takes no new chats.
    pub archived_at: Option<i64>,
}

impl Site {
    pub fn is_archived(&self) -> bool {
        self.archived_at.is_some()
    }
}

/// What an admin may change about a site.
#[derive(Debug, Clone)]
pub struct SiteSettings {
    pub name: String,
    pub allowed_origins: Vec<String>,
    pub greeting: String,
    pub color: String,
    pub require_email: bool,
    pub position: WidgetPosition,
}

/// What became of a checked save ([`Store::save_site`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SiteSaved {
    Saved(SiteId),
    /// Another site has the same name (as the caller compares names).
    NameTaken,
    /// The site is archived: nothing was changed.
    Archived,
}

/// What became of a removal ([`Store::remove_site`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SiteRemoved {
    /// It had no conversations: it is gone, with its visitors.
    Deleted,
    /// It had conversations: they stay, the site is archived.
    Archived,
    /// Nothing done: it is the only site that is not archived.
    LastActive,
    /// Nothing done: it was archived already.
    AlreadyArchived,
}

const SITE_COLUMNS: &str = "id, site_key, name, allowed_origins, greeting, color, require_email, widget_position, archived_at";

fn site(row: &AnyRow) -> Result<Site, sqlx::Error> {
    let origins: String = row.try_get("allowed_origins")?;
    Ok(Site {
        id: row.try_get("id")?,
        key: row.try_get("site_key")?,
        name: row.try_get("name")?,
        allowed_origins: origins
            .lines()
            .map(str::trim)
            .filter(|o| !o.is_empty())
            .map(str::to_string)
            .collect(),
        greeting: row.try_get("greeting")?,
        color: row.try_get("color")?,
        require_email: flag(row, "require_email")?,
        position: text_enum(row, "widget_position", WidgetPosition::parse)?,
        archived_at: row.try_get("archived_at")?,
    })
}

pub const DEFAULT_GREETING: &str =
    "Hi! Ask us anything — our assistant answers right away, and a person is one click away.";

impl Store {
    /// The default site: the oldest one that is not archived, where tickets
    /// from the portal and from email are filed. Created on first use with
    /// a random key.
    pub async fn default_site(&self) -> StoreResult<Site> {
        if let Some(site) = self.first_site().await? {
            return Ok(site);
        }
        let key = crate::auth::random_token(16);
        // Two instances starting at once may both insert; every reader takes
        // the lowest id, so they still agree on one default site.
        sqlx::query(self.sql(
            "INSERT INTO sites (site_key, name, greeting, created_at)
             SELECT ?, 'Support', ?, ? WHERE NOT EXISTS (SELECT 1 FROM sites)",
        ))
        .bind(key)
        .bind(DEFAULT_GREETING)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        self.first_site().await?.ok_or(super::StoreError::NotFound)
    }

    /// The oldest site not archived; the oldest of all if every one is
    /// (the domain never archives the last one, but two removals at once on
    /// a backend without the lock could).
    async fn first_site(&self) -> StoreResult<Option<Site>> {
        let row = sqlx::query(self.sql(&format!(
            "SELECT {SITE_COLUMNS} FROM sites
             ORDER BY CASE WHEN archived_at IS NULL THEN 0 ELSE 1 END, id LIMIT 1"
        )))
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(site).transpose()?)
    }

    pub async fn site_by_key(&self, key: &str) -> StoreResult<Option<Site>> {
        let row = sqlx::query(self.sql(&format!(
            "SELECT {SITE_COLUMNS} FROM sites WHERE site_key = ?"
        )))
        .bind(key)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(site).transpose()?)
    }

    pub async fn site(&self, id: SiteId) -> StoreResult<Option<Site>> {
        let row = sqlx::query(self.sql(&format!("SELECT {SITE_COLUMNS} FROM sites WHERE id = ?")))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(site).transpose()?)
    }

    /// Every site, archived ones too, oldest first.
    pub async fn sites(&self) -> StoreResult<Vec<Site>> {
        let rows = sqlx::query(self.sql(&format!("SELECT {SITE_COLUMNS} FROM sites ORDER BY id")))
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(site).collect::<Result<_, _>>()?)
    }

    /// How many conversations each site has (sites without any are left out).
    pub async fn site_conversation_counts(&self) -> StoreResult<Vec<(SiteId, i64)>> {
        let rows = sqlx::query(
            self.sql("SELECT site_id, COUNT(*) AS n FROM conversations GROUP BY site_id"),
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| Ok((row.try_get("site_id")?, row.try_get("n")?)))
            .collect()
    }

    /// Writes `settings` over site `id` as they are, archived or not (what
    /// admins save goes through [`Store::save_site`]).
    pub async fn update_site(&self, id: SiteId, settings: &SiteSettings) -> StoreResult<()> {
        sqlx::query(self.sql(
            "UPDATE sites SET name = ?, allowed_origins = ?, greeting = ?, color = ?, require_email = ?, widget_position = ? WHERE id = ?",
        ))
        .bind(&settings.name)
        .bind(settings.allowed_origins.join("\n"))
        .bind(&settings.greeting)
        .bind(&settings.color)
        .bind(i64::from(settings.require_email))
        .bind(settings.position.as_str())
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Waits for this transaction's turn to change sites: the update of
    /// one counter row (migration 14) locks it until commit on every
    /// backend, whether or not any site exists yet (a lock on the sites'
    /// own rows would lock nothing then).
    async fn sites_turn(&self, tx: &mut Transaction<'static, Any>) -> StoreResult<()> {
        sqlx::query(self.sql("UPDATE counters SET value = value + 1 WHERE name = 'site_changes'"))
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    /// Adds a site (`id` None, with a fresh random key) or changes one that
    /// is not archived, unless another site's name is the same by
    /// `same_name`. Changes to sites take turns ([`Store::sites_turn`]),
    /// so two saves at once cannot both take one name.
    pub async fn save_site(
        &self,
        id: Option<SiteId>,
        settings: &SiteSettings,
        same_name: fn(&str, &str) -> bool,
    ) -> StoreResult<SiteSaved> {
        let (mut tx, _turn) = self.write_tx().await?;
        self.sites_turn(&mut tx).await?;
        // Read after the turn: a site added meanwhile is seen now.
        let rows = sqlx::query(self.sql("SELECT id, name, archived_at FROM sites"))
            .fetch_all(&mut *tx)
            .await?;
        let mut found = false;
        for row in &rows {
            let other: SiteId = row.try_get("id")?;
            if Some(other) == id {
                found = true;
                if row.try_get::<Option<i64>, _>("archived_at")?.is_some() {
                    tx.rollback().await?;
                    return Ok(SiteSaved::Archived);
                }
            } else if same_name(&row.try_get::<String, _>("name")?, &settings.name) {
                tx.rollback().await?;
                return Ok(SiteSaved::NameTaken);
            }
        }
        let origins = settings.allowed_origins.join("\n");
        let position = settings.position.as_str();
        let saved = match id {
            Some(_) if !found => {
                tx.rollback().await?;
                return Err(StoreError::NotFound);
            }
            Some(id) => {
                sqlx::query(self.sql(
                    "UPDATE sites SET name = ?, allowed_origins = ?, greeting = ?, color = ?, require_email = ?, widget_position = ? WHERE id = ?",
                ))
                .bind(&settings.name)
                .bind(origins)
                .bind(&settings.greeting)
                .bind(&settings.color)
                .bind(i64::from(settings.require_email))
                .bind(position)
                .bind(id)
                .execute(&mut *tx)
                .await?;
                id
            }
            None => {
                let insert = sqlx::query(self.sql(&self.backend.returning(
                    "INSERT INTO sites (site_key, name, allowed_origins, greeting, color, require_email, widget_position, created_at)
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    "id",
                )))
                .bind(crate::auth::random_token(16))
                .bind(&settings.name)
                .bind(origins)
                .bind(&settings.greeting)
                .bind(&settings.color)
                .bind(i64::from(settings.require_email))
                .bind(position)
                .bind(now_ms());
                SiteId(self.inserted_id(insert, &mut tx).await?)
            }
        };
        tx.commit().await?;
        Ok(SiteSaved::Saved(saved))
    }

    /// Removes site `id`: deletes it (with its visitors and its FAQ
    /// choices) when it has no conversation, archives it otherwise; never
    /// the last site that is not archived. Changes to sites take turns
    /// ([`Store::sites_turn`]), so of two removals at once one site stays.
    pub async fn remove_site(&self, id: SiteId) -> StoreResult<SiteRemoved> {
        let (mut tx, _turn) = self.write_tx().await?;
        self.sites_turn(&mut tx).await?;
        // The rows locked too: a conversation being started holds its
        // site's row (the foreign key) until it commits, and is counted.
        let lock = self.backend.for_update();
        let rows = sqlx::query(self.sql(&format!(
            "SELECT id, archived_at FROM sites ORDER BY id{lock}"
        )))
        .fetch_all(&mut *tx)
        .await?;
        let mut target = None;
        let mut active = 0;
        for row in &rows {
            let archived = row.try_get::<Option<i64>, _>("archived_at")?.is_some();
            active += usize::from(!archived);
            if row.try_get::<SiteId, _>("id")? == id {
                target = Some(archived);
            }
        }
        let refused = match target {
            None => Some(Err(StoreError::NotFound)),
            Some(true) => Some(Ok(SiteRemoved::AlreadyArchived)),
            Some(false) if active <= 1 => Some(Ok(SiteRemoved::LastActive)),
            Some(false) => None,
        };
        if let Some(refused) = refused {
            tx.rollback().await?;
            return refused;
        }
        let used: i64 =
            sqlx::query(self.sql("SELECT COUNT(*) AS n FROM conversations WHERE site_id = ?"))
                .bind(id)
                .fetch_one(&mut *tx)
                .await?
                .try_get("n")?;
        let removed = if used > 0 {
            sqlx::query(self.sql("UPDATE sites SET archived_at = ? WHERE id = ?"))
                .bind(now_ms())
                .bind(id)
                .execute(&mut *tx)
                .await?;
            SiteRemoved::Archived
        } else {
            // Notes staff kept on a site's contacts go with them.
            sqlx::query(self.sql(
                "DELETE FROM contact_notes
                 WHERE visitor_id IN (SELECT id FROM visitors WHERE site_id = ?)",
            ))
            .bind(id)
            .execute(&mut *tx)
            .await?;
            sqlx::query(self.sql("DELETE FROM visitors WHERE site_id = ?"))
                .bind(id)
                .execute(&mut *tx)
                .await?;
            sqlx::query(self.sql("DELETE FROM sites WHERE id = ?"))
                .bind(id)
                .execute(&mut *tx)
                .await?;
            SiteRemoved::Deleted
        };
        tx.commit().await?;
        Ok(removed)
    }
}
