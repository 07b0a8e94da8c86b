//! Who is here: visitors connected to any instance (shared through the
//! database), and agents online or away.

use super::Chat;
use crate::domain::DomainResult;
use crate::model::{User, VisitorId};
use std::time::Duration;

/// How often each instance refreshes the presence of its connected visitors.
pub const PRESENCE_PERIOD: Duration = Duration::from_secs(30);

/// Before this time (ms), a customer not connected here counts as away
/// (presence is refreshed every [`PRESENCE_PERIOD`]; one missed refresh is
/// allowed for).
pub(super) fn away_if_unseen_since() -> i64 {
    crate::store::now_ms() - 2 * PRESENCE_PERIOD.as_millis() as i64
}

impl Chat {
    /// A visitor's socket opened on this instance. Presence is shared
    /// through the database (`visitors.last_seen_at`), refreshed for every
    /// connected visitor by [`Chat::refresh_presence`], so that any instance
    /// can tell whether a customer is away.
    pub async fn visitor_connected(&self, visitor_id: VisitorId) {
        *self
            .online_visitors
            .lock()
            .expect("online lock")
            .entry(visitor_id)
            .or_default() += 1;
        if let Err(e) = self.store.touch_visitors(&[visitor_id]).await {
            tracing::warn!(error = %e, "could not record visitor presence");
        }
    }

    pub async fn visitor_disconnected(&self, visitor_id: VisitorId) {
        let gone = {
            let mut online = self.online_visitors.lock().expect("online lock");
            match online.get_mut(&visitor_id) {
                Some(count) if *count > 1 => {
                    *count -= 1;
                    false
                }
                Some(_) => {
                    online.remove(&visitor_id);
                    true
                }
                None => false,
            }
        };
        // Another instance holding a socket of the same visitor refreshes
        // the mark within one presence period.
        if gone && let Err(e) = self.store.visitor_left(visitor_id).await {
            tracing::warn!(error = %e, "could not record visitor leaving");
        }
    }

    /// Refreshes the presence of every visitor connected here (one batched
    /// write per period, not one per socket).
    pub async fn refresh_presence(&self) -> DomainResult<()> {
        let ids: Vec<VisitorId> = self
            .online_visitors
            .lock()
            .expect("online lock")
            .keys()
            .copied()
            .collect();
        for chunk in ids.chunks(500) {
            self.store.touch_visitors(chunk).await?;
        }
        Ok(())
    }

    /// Connected here, or seen by another instance within two periods.
    pub(super) async fn visitor_online(&self, visitor_id: VisitorId) -> DomainResult<bool> {
        if self
            .online_visitors
            .lock()
            .expect("online lock")
            .contains_key(&visitor_id)
        {
            return Ok(true);
        }
        let seen = self.store.visitor_last_seen(visitor_id).await?;
        Ok(seen > away_if_unseen_since())
    }

    /// An agent's console says online or away. Coming online picks up
    /// whatever is waiting, up to the agent's capacity.
    pub async fn presence(&self, agent: &User, online: bool) -> DomainResult<()> {
        if !online {
            self.away_notices.agent_away(agent.id);
        }
        self.store.set_presence(agent.id, online).await?;
        if online {
            self.away_notices.agent_here(agent.id);
            self.pick_up_waiting(agent).await?;
        }
        Ok(())
    }

    /// The last console of `agent` on this instance closed while online:
    /// they are away until a console says otherwise.
    pub async fn agent_left(&self, agent: &User) -> DomainResult<()> {
        self.away_notices.agent_away(agent.id);
        self.store.set_presence(agent.id, false).await?;
        Ok(())
    }

    /// Whether any agent's console is online now.
    /// Agents and admins with their presence, for staff (the API's
    /// directory); anyone else gets "not found".
    pub async fn staff_presence(
        &self,
        viewer: &crate::model::User,
    ) -> DomainResult<Vec<(crate::model::User, &'static str, i64, i64)>> {
        if !viewer.role.is_staff() {
            return Err(super::super::DomainError::NotFound);
        }
        Ok(self.store.staff_presence(self.presence_fresh_ms()).await?)
    }

    pub async fn agents_online(&self) -> DomainResult<bool> {
        Ok(self
            .store
            .any_agent_online(self.presence_fresh_ms())
            .await?)
    }
}
