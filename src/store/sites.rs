//! Sites: the websites that embed the chat widget, with the origins allowed
//! to embed it and how the widget looks. A fresh install has one.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::rows::flag;
use super::{Store, StoreResult, now_ms};
use crate::model::SiteId;

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
}

/// What an admin may change about a site.
#[derive(Debug, Clone)]
pub struct SiteSettings {
    pub name: String,
    pub allowed_origins: Vec<String>,
    pub greeting: String,
    pub color: String,
    pub require_email: bool,
}

const SITE_COLUMNS: &str = "id, site_key, name, allowed_origins, greeting, color, require_email";

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
    })
}

pub const DEFAULT_GREETING: &str =
    "Hi! Ask us anything — our assistant answers right away, and a person is one click away.";

impl Store {
    /// The first site, created on first use with a random key.
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

    async fn first_site(&self) -> StoreResult<Option<Site>> {
        let row = sqlx::query(self.sql(&format!(
            "SELECT {SITE_COLUMNS} FROM sites ORDER BY id LIMIT 1"
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

    pub async fn sites(&self) -> StoreResult<Vec<Site>> {
        let rows = sqlx::query(self.sql(&format!("SELECT {SITE_COLUMNS} FROM sites ORDER BY id")))
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(site).collect::<Result<_, _>>()?)
    }

    pub async fn update_site(&self, id: SiteId, settings: &SiteSettings) -> StoreResult<()> {
        sqlx::query(self.sql(
            "UPDATE sites SET name = ?, allowed_origins = ?, greeting = ?, color = ?, require_email = ? WHERE id = ?",
        ))
        .bind(&settings.name)
        .bind(settings.allowed_origins.join("\n"))
        .bind(&settings.greeting)
        .bind(&settings.color)
        .bind(i64::from(settings.require_email))
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
