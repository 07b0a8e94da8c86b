//! Contacts: the visitors as an integration reads and keeps them — who
//! they are (their own details, or their account's), which site they came
//! from, whether their email is proven, and the attributes an integration
//! set on them (`domain::contacts` decides what may be set).

use sqlx::Row;
use sqlx::any::AnyRow;

use super::rows::flag;
use super::{Store, StoreResult};
use crate::model::{SiteId, UserId, VisitorId};

#[derive(Debug, Clone, PartialEq)]
pub struct Contact {
    pub id: VisitorId,
    pub site_id: SiteId,
    pub site_name: String,
    pub name: String,
    pub email: String,
    /// A verified account's, or vouched for by the host site.
    pub email_verified: bool,
    /// The host site's user id, when it signed who this is.
    pub external_id: Option<String>,
    /// Their Careline account, when they have one.
    pub account: Option<UserId>,
    /// A JSON object, as `domain::contacts` checked it.
    pub attributes: String,
    pub created_at: i64,
    /// When their widget was last connected (0: not now, or never).
    pub last_seen_at: i64,
    /// Set once staff merged this contact into another: that one now has
    /// its history.
    pub merged_into: Option<VisitorId>,
}

/// An account's own details stand in for what its visitor never typed.
const CONTACT_SELECT: &str = "
    SELECT v.id, v.site_id, s.name AS site_name,
           CASE WHEN v.name = '' AND u.id IS NOT NULL THEN u.name ELSE v.name END AS name,
           CASE WHEN u.id IS NOT NULL THEN u.email ELSE v.email END AS email,
           CASE WHEN u.id IS NOT NULL THEN u.verified ELSE v.email_verified END AS email_verified,
           v.external_id, v.user_id, COALESCE(v.attributes, '{}') AS attributes,
           v.created_at, v.last_seen_at, v.merged_into
    FROM visitors v
    JOIN sites s ON s.id = v.site_id
    LEFT JOIN users u ON u.id = v.user_id";

fn contact(row: &AnyRow) -> Result<Contact, sqlx::Error> {
    Ok(Contact {
        id: row.try_get("id")?,
        site_id: row.try_get("site_id")?,
        site_name: row.try_get("site_name")?,
        name: row.try_get("name")?,
        email: row.try_get("email")?,
        email_verified: flag(row, "email_verified")?,
        external_id: row.try_get("external_id")?,
        account: row.try_get::<Option<i64>, _>("user_id")?.map(UserId),
        attributes: row.try_get("attributes")?,
        created_at: row.try_get("created_at")?,
        last_seen_at: row.try_get("last_seen_at")?,
        merged_into: row.try_get::<Option<i64>, _>("merged_into")?.map(VisitorId),
    })
}

/// Which contacts a list shows.
#[derive(Debug, Clone, Default)]
pub struct ContactFilter {
    /// Words of the name or email.
    pub query: Option<String>,
    pub site: Option<SiteId>,
    /// Only contacts older than this one (the list is newest first).
    pub before: Option<VisitorId>,
    pub limit: i64,
}

impl Store {
    pub async fn contact(&self, id: VisitorId) -> StoreResult<Option<Contact>> {
        let row = sqlx::query(self.sql(&format!("{CONTACT_SELECT} WHERE v.id = ?")))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(contact).transpose()?)
    }

    /// Contacts newest first. Visitors who never said who they are (no
    /// name, no email, no account) are left out: a list of every browser
    /// that opened the widget would bury the people.
    pub async fn contacts(&self, filter: &ContactFilter) -> StoreResult<Vec<Contact>> {
        let mut sql = format!(
            "{CONTACT_SELECT} WHERE (v.name <> '' OR v.email <> '' OR v.user_id IS NOT NULL)
               AND v.merged_into IS NULL AND v.id < ?"
        );
        if filter.site.is_some() {
            sql.push_str(" AND v.site_id = ?");
        }
        let pattern = filter
            .query
            .as_deref()
            .map(str::trim)
            .filter(|q| !q.is_empty())
            .map(|q| super::tickets::like_pattern(&q.to_lowercase()));
        if pattern.is_some() {
            sql.push_str(
                " AND (LOWER(v.name) LIKE ? ESCAPE '\\' OR LOWER(v.email) LIKE ? ESCAPE '\\'
                       OR LOWER(u.email) LIKE ? ESCAPE '\\' OR LOWER(u.name) LIKE ? ESCAPE '\\')",
            );
        }
        sql.push_str(" ORDER BY v.id DESC LIMIT ?");
        let mut query = sqlx::query(self.sql(&sql)).bind(filter.before.map_or(i64::MAX, |b| b.0));
        if let Some(site) = filter.site {
            query = query.bind(site);
        }
        if let Some(pattern) = &pattern {
            for _ in 0..4 {
                query = query.bind(pattern.clone());
            }
        }
        let rows = query
            .bind(filter.limit.clamp(1, 200))
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(contact).collect::<Result<_, _>>()?)
    }

    /// Sets a contact's details: `None` keeps each as it is. A new email is
    /// nobody's proof, so it ends the old one's verification.
    pub async fn update_contact(
        &self,
        id: VisitorId,
        name: Option<&str>,
        email: Option<&str>,
        attributes: Option<&str>,
    ) -> StoreResult<()> {
        let _turn = self.write_turn().await;
        sqlx::query(self.sql(
            // email_verified first: MariaDB assigns left to right, so
            // `email` must still be the old one when it is compared.
            "UPDATE visitors SET
                 email_verified = CASE WHEN ? IS NULL OR ? = email THEN email_verified ELSE 0 END,
                 name = COALESCE(?, name),
                 email = COALESCE(?, email),
                 attributes = COALESCE(?, attributes)
             WHERE id = ?",
        ))
        .bind(email)
        .bind(email)
        .bind(name)
        .bind(email)
        .bind(attributes)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
