//! What admins write for others to use: FAQ entries for the built-in bot,
//! and canned replies for agents.

use std::collections::BTreeMap;

use sqlx::Row;
use sqlx::any::AnyRow;

use super::rows::flag;
use super::{Store, StoreResult, now_ms};
use crate::model::SiteId;

#[derive(Debug, Clone)]
pub struct FaqEntry {
    pub id: i64,
    /// One question variant per line.
    pub questions: String,
    pub answer: String,
    /// The sites whose conversations it answers.
    pub sites: FaqSites,
}

/// Which sites' conversations an FAQ entry answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaqSites {
    /// Every site, those added later too.
    All,
    /// Only these (none left when they were all deleted: it answers nowhere).
    Only(Vec<SiteId>),
}

impl FaqSites {
    pub fn includes(&self, site: SiteId) -> bool {
        match self {
            FaqSites::All => true,
            FaqSites::Only(sites) => sites.contains(&site),
        }
    }
}

fn faq_entry(row: &AnyRow, chosen: &BTreeMap<i64, Vec<SiteId>>) -> Result<FaqEntry, sqlx::Error> {
    let id: i64 = row.try_get("id")?;
    Ok(FaqEntry {
        id,
        questions: row.try_get("questions")?,
        answer: row.try_get("answer")?,
        sites: if flag(row, "all_sites")? {
            FaqSites::All
        } else {
            FaqSites::Only(chosen.get(&id).cloned().unwrap_or_default())
        },
    })
}

#[derive(Debug, Clone)]
pub struct CannedReply {
    pub id: i64,
    pub title: String,
    pub body: String,
}

impl Store {
    /// Every entry, whichever sites it answers.
    pub async fn faq_entries(&self) -> StoreResult<Vec<FaqEntry>> {
        let rows = sqlx::query(
            self.sql("SELECT id, questions, answer, all_sites FROM faq_entries ORDER BY id"),
        )
        .fetch_all(&self.pool)
        .await?;
        let mut chosen: BTreeMap<i64, Vec<SiteId>> = BTreeMap::new();
        for row in sqlx::query(
            self.sql("SELECT faq_entry_id, site_id FROM faq_entry_sites ORDER BY site_id"),
        )
        .fetch_all(&self.pool)
        .await?
        {
            chosen
                .entry(row.try_get("faq_entry_id")?)
                .or_default()
                .push(row.try_get("site_id")?);
        }
        Ok(rows
            .iter()
            .map(|r| faq_entry(r, &chosen))
            .collect::<Result<_, _>>()?)
    }

    /// The entries that answer conversations of `site`.
    pub async fn faq_entries_for_site(&self, site: SiteId) -> StoreResult<Vec<FaqEntry>> {
        let rows = sqlx::query(self.sql(
            "SELECT id, questions, answer, all_sites FROM faq_entries
             WHERE all_sites = 1
                OR id IN (SELECT faq_entry_id FROM faq_entry_sites WHERE site_id = ?)
             ORDER BY id",
        ))
        .bind(site)
        .fetch_all(&self.pool)
        .await?;
        let chosen = rows
            .iter()
            .map(|r| Ok((r.try_get("id")?, vec![site])))
            .collect::<Result<BTreeMap<_, _>, sqlx::Error>>()?;
        Ok(rows
            .iter()
            .map(|r| faq_entry(r, &chosen))
            .collect::<Result<_, _>>()?)
    }

    /// Adds an entry (`id` None) or replaces one, with the sites it answers.
    pub async fn save_faq_entry(
        &self,
        id: Option<i64>,
        questions: &str,
        answer: &str,
        sites: &FaqSites,
    ) -> StoreResult<()> {
        let now = now_ms();
        let all = i64::from(*sites == FaqSites::All);
        let (mut tx, _turn) = self.write_tx().await?;
        let id = match id {
            None => {
                let insert = sqlx::query(self.sql(&self.backend.returning(
                    "INSERT INTO faq_entries (questions, answer, all_sites, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
                    "id",
                )))
                .bind(questions)
                .bind(answer)
                .bind(all)
                .bind(now)
                .bind(now);
                self.inserted_id(insert, &mut tx).await?
            }
            Some(id) => {
                let done = sqlx::query(self.sql(
                    "UPDATE faq_entries SET questions = ?, answer = ?, all_sites = ?, updated_at = ? WHERE id = ?",
                ))
                .bind(questions)
                .bind(answer)
                .bind(all)
                .bind(now)
                .bind(id)
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() == 0 {
                    tx.rollback().await?;
                    return Err(super::StoreError::NotFound);
                }
                sqlx::query(self.sql("DELETE FROM faq_entry_sites WHERE faq_entry_id = ?"))
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                id
            }
        };
        if let FaqSites::Only(chosen) = sites {
            for site in chosen {
                sqlx::query(
                    self.sql("INSERT INTO faq_entry_sites (faq_entry_id, site_id) VALUES (?, ?)"),
                )
                .bind(id)
                .bind(*site)
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn delete_faq_entry(&self, id: i64) -> StoreResult<()> {
        sqlx::query(self.sql("DELETE FROM faq_entries WHERE id = ?"))
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn canned_replies(&self) -> StoreResult<Vec<CannedReply>> {
        let rows =
            sqlx::query(self.sql("SELECT id, title, body FROM canned_replies ORDER BY title, id"))
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|r| {
                Ok(CannedReply {
                    id: r.try_get("id")?,
                    title: r.try_get("title")?,
                    body: r.try_get("body")?,
                })
            })
            .collect()
    }

    pub async fn add_canned_reply(&self, title: &str, body: &str) -> StoreResult<()> {
        sqlx::query(
            self.sql("INSERT INTO canned_replies (title, body, created_at) VALUES (?, ?, ?)"),
        )
        .bind(title)
        .bind(body)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn delete_canned_reply(&self, id: i64) -> StoreResult<()> {
        sqlx::query(self.sql("DELETE FROM canned_replies WHERE id = ?"))
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
