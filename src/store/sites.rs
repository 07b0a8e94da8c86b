//! Sites: the websites that embed the chat widget. A fresh install has one,
//! which the portal's tickets belong to.

use sqlx::Row;

use super::{Store, StoreResult, now_ms};

#[derive(Debug, Clone)]
pub struct Site {
    pub id: i64,
    pub key: String,
    pub name: String,
}

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
            "INSERT INTO sites (site_key, name, created_at)
             SELECT ?, 'Support', ? WHERE NOT EXISTS (SELECT 1 FROM sites)",
        ))
        .bind(key)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        self.first_site().await?.ok_or(super::StoreError::NotFound)
    }

    async fn first_site(&self) -> StoreResult<Option<Site>> {
        let row = sqlx::query(self.sql("SELECT id, site_key, name FROM sites ORDER BY id LIMIT 1"))
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| {
            Ok(Site {
                id: r.try_get("id")?,
                key: r.try_get("site_key")?,
                name: r.try_get("name")?,
            })
        })
        .transpose()
    }
}
