//! The raw figures behind the admins' report: counts, and the timestamps
//! that durations are computed from. Medians and percentiles are computed
//! in `domain::reports` (SQLite has no percentile functions), over one
//! period's rows only.

use std::collections::BTreeMap;

use sqlx::Row;

use super::{Store, StoreResult};
use crate::model::SiteId;

/// How long one ticket took (to a first answer, or to resolution), who
/// has it now, and which site its conversation came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TicketTime {
    pub assignee_id: Option<i64>,
    pub site_id: SiteId,
    pub ms: i64,
}

/// One rating given in the period, with who had the conversation and
/// which site it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RatingGiven {
    pub score: i64,
    pub assignee_id: Option<i64>,
    pub site_id: SiteId,
}

/// One site's counts since a moment (sites with none are left out).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SiteCounts {
    pub conversations: i64,
    pub without_ticket: i64,
    pub opened: i64,
}

/// Everything a report reads, since one moment.
#[derive(Debug, Clone, Default)]
pub struct ReportRows {
    /// Conversations started since then (widget chats and tickets raised
    /// from the portal alike).
    pub conversations: i64,
    /// Of those, the ones no person was needed for (they never became a
    /// ticket).
    pub without_ticket: i64,
    /// Tickets opened since then.
    pub opened: i64,
    /// The same three counts, site by site.
    pub by_site: BTreeMap<SiteId, SiteCounts>,
    /// Of those, the ones answered: from opening to the first answer.
    pub first_responses: Vec<TicketTime>,
    /// Tickets resolved since then: from opening to resolution.
    pub resolutions: Vec<TicketTime>,
    /// Open tickets nobody has answered yet, now (whenever opened).
    pub awaiting_first_response: i64,
    pub ratings: Vec<RatingGiven>,
}

impl Store {
    /// The rows of a report over everything since `since_ms`.
    pub async fn report_rows(&self, since_ms: i64) -> StoreResult<ReportRows> {
        let mut by_site: BTreeMap<SiteId, SiteCounts> = BTreeMap::new();
        let started = sqlx::query(self.sql(
            "SELECT c.site_id, COUNT(*) AS n,
                    COUNT(CASE WHEN t.id IS NULL THEN 1 END) AS without_ticket
             FROM conversations c LEFT JOIN tickets t ON t.conversation_id = c.id
             WHERE c.created_at >= ? GROUP BY c.site_id",
        ))
        .bind(since_ms)
        .fetch_all(&self.pool)
        .await?;
        for row in &started {
            let site = by_site.entry(row.try_get("site_id")?).or_default();
            site.conversations = row.try_get("n")?;
            site.without_ticket = row.try_get("without_ticket")?;
        }
        let opened = sqlx::query(self.sql(
            "SELECT c.site_id, COUNT(*) AS n FROM tickets t
             JOIN conversations c ON c.id = t.conversation_id
             WHERE t.created_at >= ? GROUP BY c.site_id",
        ))
        .bind(since_ms)
        .fetch_all(&self.pool)
        .await?;
        for row in &opened {
            by_site.entry(row.try_get("site_id")?).or_default().opened = row.try_get("n")?;
        }
        // Two columns a row from covering indexes (migration 8), and each
        // ticket's site from its conversation by primary key.
        let first_responses = sqlx::query(self.sql(
            "SELECT t.assignee_id, c.site_id, t.first_response_at - t.created_at AS ms
             FROM tickets t JOIN conversations c ON c.id = t.conversation_id
             WHERE t.created_at >= ? AND t.first_response_at IS NOT NULL",
        ))
        .bind(since_ms)
        .fetch_all(&self.pool)
        .await?;
        let resolutions = sqlx::query(self.sql(
            "SELECT t.assignee_id, c.site_id, t.resolved_at - t.created_at AS ms
             FROM tickets t JOIN conversations c ON c.id = t.conversation_id
             WHERE t.resolved_at >= ?",
        ))
        .bind(since_ms)
        .fetch_all(&self.pool)
        .await?;
        let awaiting = sqlx::query(self.sql(
            "SELECT COUNT(*) AS n FROM tickets WHERE status = 'open' AND first_response_at IS NULL",
        ))
        .fetch_one(&self.pool)
        .await?;
        let ratings = sqlx::query(self.sql(
            "SELECT r.score, c.assignee_id, c.site_id FROM csat_ratings r
             JOIN conversations c ON c.id = r.conversation_id
             WHERE r.created_at >= ?",
        ))
        .bind(since_ms)
        .fetch_all(&self.pool)
        .await?;
        let total = |count: fn(&SiteCounts) -> i64| by_site.values().map(count).sum();
        Ok(ReportRows {
            conversations: total(|s| s.conversations),
            without_ticket: total(|s| s.without_ticket),
            opened: total(|s| s.opened),
            first_responses: ticket_times(&first_responses)?,
            resolutions: ticket_times(&resolutions)?,
            awaiting_first_response: awaiting.try_get("n")?,
            ratings: ratings
                .iter()
                .map(|row| {
                    Ok(RatingGiven {
                        score: row.try_get("score")?,
                        assignee_id: row.try_get("assignee_id")?,
                        site_id: row.try_get("site_id")?,
                    })
                })
                .collect::<Result<_, sqlx::Error>>()?,
            by_site,
        })
    }
}

fn ticket_times(rows: &[sqlx::any::AnyRow]) -> Result<Vec<TicketTime>, sqlx::Error> {
    rows.iter()
        .map(|row| {
            Ok(TicketTime {
                assignee_id: row.try_get("assignee_id")?,
                site_id: row.try_get("site_id")?,
                // A clock set back between the two: not a negative wait.
                ms: row.try_get::<i64, _>("ms")?.max(0),
            })
        })
        .collect()
}
