//! What admins write for others to use: FAQ entries for the built-in bot,
//! and canned replies for agents.

use sqlx::Row;

use super::{Store, StoreResult, now_ms};

#[derive(Debug, Clone)]
pub struct FaqEntry {
    pub id: i64,
    /// One question variant per line.
    pub questions: String,
    pub answer: String,
}

#[derive(Debug, Clone)]
pub struct CannedReply {
    pub id: i64,
    pub title: String,
    pub body: String,
}

impl Store {
    pub async fn faq_entries(&self) -> StoreResult<Vec<FaqEntry>> {
        let rows =
            sqlx::query(self.sql("SELECT id, questions, answer FROM faq_entries ORDER BY id"))
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|r| {
                Ok(FaqEntry {
                    id: r.try_get("id")?,
                    questions: r.try_get("questions")?,
                    answer: r.try_get("answer")?,
                })
            })
            .collect()
    }

    /// Adds an entry (`id` None) or replaces one.
    pub async fn save_faq_entry(
        &self,
        id: Option<i64>,
        questions: &str,
        answer: &str,
    ) -> StoreResult<()> {
        let now = now_ms();
        match id {
            None => {
                sqlx::query(self.sql(
                    "INSERT INTO faq_entries (questions, answer, created_at, updated_at) VALUES (?, ?, ?, ?)",
                ))
                .bind(questions)
                .bind(answer)
                .bind(now)
                .bind(now)
                .execute(&self.pool)
                .await?;
            }
            Some(id) => {
                let done = sqlx::query(self.sql(
                    "UPDATE faq_entries SET questions = ?, answer = ?, updated_at = ? WHERE id = ?",
                ))
                .bind(questions)
                .bind(answer)
                .bind(now)
                .bind(id)
                .execute(&self.pool)
                .await?;
                if done.rows_affected() == 0 {
                    return Err(super::StoreError::NotFound);
                }
            }
        }
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
