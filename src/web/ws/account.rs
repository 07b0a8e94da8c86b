//! An agent's account as the console's socket last saw it, and the
//! heartbeat that keeps it checked (and the agent's presence fresh) while
//! the socket is open.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinHandle;

use super::hub::close;
use super::session::Session;
use crate::model::{User, UserId};
use crate::store::now_ms;

/// How often an agent's presence is refreshed and their session re-checked
/// (besides at once on an account event, and at the session's expiry).
const HEARTBEAT: Duration = Duration::from_secs(30);

/// How soon a session check that failed (the database did not answer) is
/// tried again.
const RECHECK_AFTER_ERROR: Duration = Duration::from_secs(1);

/// The agent behind a console as of the last check of their session, or
/// `None` once it ended. Frames read it instead of asking the database each
/// time: the heartbeat task re-checks when the account changes (a bus event
/// on its account topic), when the session expires, and every [`HEARTBEAT`].
#[derive(Default)]
pub(super) struct AgentAccount(Mutex<Option<User>>);

impl AgentAccount {
    pub(super) fn current(&self) -> Option<User> {
        self.0.lock().expect("account lock").clone()
    }

    pub(super) fn set(&self, user: Option<User>) {
        *self.0.lock().expect("account lock") = user;
    }
}

impl Session {
    /// While an agent's socket is open: refresh presence, and re-check the
    /// session when the account changes, when it expires and on each beat;
    /// once it has ended (logout, password change, lost staff role) the
    /// socket closes (4401).
    pub(super) fn spawn_heartbeat(
        &self,
        agent: UserId,
        token_hash: String,
        expires_at: i64,
        account: Arc<AgentAccount>,
    ) -> JoinHandle<()> {
        let state = self.state.clone();
        let online = self.agent_online.clone();
        let changed = self.account_changed.clone().unwrap_or_default();
        let id = self.id;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(HEARTBEAT);
            tick.tick().await;
            let expiry = tokio::time::sleep_until(instant_of(expires_at));
            tokio::pin!(expiry);
            loop {
                let beat = tokio::select! {
                    _ = tick.tick() => true,
                    () = changed.notified() => false,
                    () = &mut expiry => false,
                };
                match state.store().live_session(&token_hash).await {
                    Ok(Some((user, expires_at))) if user.role.is_staff() => {
                        expiry.as_mut().reset(instant_of(expires_at));
                        account.set(Some(user));
                    }
                    Ok(_) => {
                        account.set(None);
                        state.hub().kill(id, close::SESSION_ENDED);
                        return;
                    }
                    // Try again shortly, not at the next beat: the change that
                    // woke us (a logout, say) must not wait 30 s for the
                    // database to answer. (Re-arming also keeps a fired
                    // expiry from spinning the loop.)
                    Err(e) => {
                        tracing::warn!(error = %e, "session check failed; retrying in 1 s");
                        expiry
                            .as_mut()
                            .reset(tokio::time::Instant::now() + RECHECK_AFTER_ERROR);
                    }
                }
                if beat
                    && online.load(Ordering::Acquire)
                    && let Err(e) = state.store().set_presence(agent, true).await
                {
                    tracing::warn!(error = %e, "presence heartbeat failed");
                }
            }
        })
    }
}

/// When a session that expires at `expires_at` (ms since the epoch) ends,
/// on the runtime's clock. At least a moment ahead, so that a clock that
/// disagrees with the database's cannot spin the heartbeat.
fn instant_of(expires_at: i64) -> tokio::time::Instant {
    let left = u64::try_from(expires_at - now_ms()).unwrap_or(0);
    tokio::time::Instant::now() + Duration::from_millis(left.max(100))
}
