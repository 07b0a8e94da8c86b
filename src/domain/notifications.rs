//! Agents' emails about their own work: a conversation or a ticket assigned
//! to them, and a customer writing on a conversation they own while they
//! are away. Whom to tell and when is decided here, once; every surface
//! that assigns (claim, transfer, routing, the ticket page) or sends (a
//! customer's message, from the widget or by email) asks it.
//!
//! Rules kept here:
//! - nobody is emailed about their own action: claiming a conversation,
//!   transferring or assigning it to oneself;
//! - automatic assignment (routing, picking up the queue) has no actor: the
//!   agent is told;
//! - only staff are told, and only of the kinds they left on (account page);
//! - "away" is the presence routing already uses: no online console
//!   heartbeat within `ChatConfig::presence_fresh` (closing the console or
//!   choosing Away counts at once, a crashed one once its presence is stale);
//! - a customer writing makes at most one email per conversation per
//!   [`AWAY_COALESCE`] (remembered per instance, like customers' reply
//!   emails); a new owner starts afresh.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::chat::Chat;
use super::{DomainError, DomainResult};
use crate::model::{ConversationId, ConversationStatus, TicketNumber, User, UserId};
use crate::store::{ConversationOwner, NewEmail, NotificationPrefs, Store};

/// At most one "a customer wrote while you were away" email per
/// conversation in this window.
pub const AWAY_COALESCE: Duration = Duration::from_secs(600);

/// Conversations remembered before those past the window are forgotten.
const NOTICES_KEPT: usize = 10_000;

/// How long a look that found nothing to tell (the owner here, or no
/// owner) stands before the next customer message looks again: the chat's
/// hot path reads the owner at most this often per conversation, and an
/// agent who leaves is noticed this much later at most (presence itself
/// allows a crashed console longer).
pub const OWNER_LOOK_STANDS: Duration = Duration::from_secs(10);

/// What was assigned, as the email names it.
#[derive(Debug, Clone, Copy)]
pub enum Assigned<'a> {
    /// A live conversation (its console is the live chat).
    Conversation {
        id: ConversationId,
        ticket_number: Option<TicketNumber>,
        customer: &'a str,
    },
    /// A ticket, from its page.
    Ticket {
        conversation_id: ConversationId,
        number: TicketNumber,
        subject: &'a str,
        customer: &'a str,
    },
}

/// `user`'s choices, for the account page; `None` for a customer, who is
/// never assigned anything.
pub async fn prefs_of(store: &Store, user: &User) -> DomainResult<Option<NotificationPrefs>> {
    if !user.role.is_staff() {
        return Ok(None);
    }
    Ok(Some(store.notification_prefs(user.id).await?))
}

/// Saves `user`'s choices (staff only: "not found" for anyone else).
pub async fn save_prefs(chat: &Chat, user: &User, prefs: NotificationPrefs) -> DomainResult<()> {
    if !user.role.is_staff() {
        return Err(DomainError::NotFound);
    }
    chat.store().set_notification_prefs(user.id, prefs).await?;
    chat.away_notices().forget_looks();
    Ok(())
}

/// Whether an agent whose console was last heard as `presence` (online?,
/// when) counts as away at `now` (ms), presence counting for `fresh_ms`.
pub fn is_away(presence: Option<(bool, i64)>, now: i64, fresh_ms: i64) -> bool {
    !matches!(presence, Some((true, at)) if at > now - fresh_ms)
}

/// Whether `assignee` is told that `by` (`None`: routing) gave them
/// something, before their own choice is read.
fn tells_of_assignment(assignee: &User, by: Option<&User>) -> bool {
    assignee.role.is_staff() && by.is_none_or(|by| by.id != assignee.id)
}

/// The email telling `assignee` that `what` is theirs now, given by `by`
/// (`None`: automatic assignment). `None` when it is their own action, they
/// are not staff, or they turned assignment emails off.
pub async fn assigned_email(
    store: &Store,
    assignee: &User,
    by: Option<&User>,
    what: Assigned<'_>,
) -> DomainResult<Option<NewEmail>> {
    if !tells_of_assignment(assignee, by) {
        return Ok(None);
    }
    if !store.notification_prefs(assignee.id).await?.assigned {
        return Ok(None);
    }
    Ok(Some(assignment_message(assignee, by, what)))
}

/// Queues an assignment email after the assignment committed, for the
/// surfaces whose store write takes no email (claim, transfer, routing):
/// the assignment stands whatever happens to its email, so a failure here
/// is logged, not returned.
pub async fn tell_assignee(store: &Store, assignee: &User, by: Option<&User>, what: Assigned<'_>) {
    let queued = match assigned_email(store, assignee, by, what).await {
        Ok(Some(email)) => store.enqueue_email(&email).await.map_err(Into::into),
        Ok(None) => Ok(()),
        Err(e) => Err(e),
    };
    if let Err(e) = queued {
        tracing::warn!(user = assignee.id.0, error = %e, "could not queue an assignment email");
    }
}

fn assignment_message(assignee: &User, by: Option<&User>, what: Assigned<'_>) -> NewEmail {
    let by = by.map(|u| u.name.as_str()).unwrap_or_default();
    let payload = match what {
        Assigned::Conversation {
            id,
            ticket_number,
            customer,
        } => (
            "conversation_assigned",
            serde_json::json!({
                "conversation_id": id,
                "ticket_number": ticket_number,
                "name": assignee.name,
                "customer": customer,
                "by": by,
            }),
        ),
        Assigned::Ticket {
            conversation_id,
            number,
            subject,
            customer,
        } => (
            "ticket_assigned",
            serde_json::json!({
                "conversation_id": conversation_id,
                "ticket_number": number,
                "ticket_subject": subject,
                "name": assignee.name,
                "customer": customer,
                "by": by,
            }),
        ),
    };
    NewEmail {
        to: assignee.email.clone(),
        template: payload.0,
        payload: payload.1,
    }
}

/// When each conversation's owner was last told that its customer wrote
/// (this instance's memory; see the module's rules).
#[derive(Debug, Default)]
pub struct AwayNotices {
    sent: Mutex<HashMap<ConversationId, Instant>>,
    /// When a look at the owner last found nothing to tell, and which
    /// owner it found here (none when nobody owned it or the choice was off).
    looked: Mutex<HashMap<ConversationId, (Instant, Option<UserId>)>>,
    /// Agents whose console went away on this instance: a look that found
    /// one of them here no longer stands. Entered before the presence is
    /// written, so no message after the write can trust an older look.
    gone: Mutex<HashSet<UserId>>,
}

impl AwayNotices {
    /// Whether there is nothing to look up for `id` now: its owner was
    /// told within the window, or was found here (or absent) just now and
    /// has not gone away on this instance since.
    fn lately(&self, id: ConversationId) -> bool {
        let told = self
            .sent
            .lock()
            .expect("away notices lock")
            .get(&id)
            .is_some_and(|at| at.elapsed() < AWAY_COALESCE);
        if told {
            return true;
        }
        let look = self
            .looked
            .lock()
            .expect("away notices lock")
            .get(&id)
            .copied();
        match look {
            Some((at, owner)) if at.elapsed() < OWNER_LOOK_STANDS => owner.is_none_or(|owner| {
                !self
                    .gone
                    .lock()
                    .expect("away notices lock")
                    .contains(&owner)
            }),
            _ => false,
        }
    }

    /// A look at `id`'s owner found nothing to tell; `here` is the owner
    /// it found present, if that was why.
    fn looked(&self, id: ConversationId, here: Option<UserId>) {
        let mut looked = self.looked.lock().expect("away notices lock");
        if looked.len() >= NOTICES_KEPT {
            looked.retain(|_, (at, _)| at.elapsed() < OWNER_LOOK_STANDS);
        }
        looked.insert(id, (Instant::now(), here));
    }

    /// `agent`'s console is going away on this instance: call before the
    /// presence is written.
    pub fn agent_away(&self, agent: UserId) {
        self.gone.lock().expect("away notices lock").insert(agent);
    }

    /// `agent`'s console is online on this instance again.
    pub fn agent_here(&self, agent: UserId) {
        self.gone.lock().expect("away notices lock").remove(&agent);
    }

    /// Marks `id` as told now, unless it was told within the window (then
    /// false: two messages at once make one email).
    fn mark(&self, id: ConversationId) -> bool {
        let mut sent = self.sent.lock().expect("away notices lock");
        if sent.get(&id).is_some_and(|at| at.elapsed() < AWAY_COALESCE) {
            return false;
        }
        if sent.len() >= NOTICES_KEPT {
            sent.retain(|_, at| at.elapsed() < AWAY_COALESCE);
        }
        sent.insert(id, Instant::now());
        true
    }

    /// The email decided for `id` did not go out (its message was not
    /// stored): the next message may tell the owner.
    pub fn unmark(&self, id: ConversationId) {
        self.sent.lock().expect("away notices lock").remove(&id);
    }

    /// An agent changed their choices on this instance: every conversation
    /// is looked at again (other instances notice within
    /// [`OWNER_LOOK_STANDS`]).
    pub fn forget_looks(&self) {
        self.looked.lock().expect("away notices lock").clear();
    }

    /// `id` changed hands: its new owner has not been told anything yet.
    pub fn owner_changed(&self, id: ConversationId) {
        self.unmark(id);
        self.looked.lock().expect("away notices lock").remove(&id);
    }
}

/// Whether a customer's message on a conversation owned as `owner` is
/// emailed to its owner, at `now` (ms).
fn tells_owner(owner: &ConversationOwner, now: i64, fresh_ms: i64) -> bool {
    matches!(
        owner.status,
        // A resolved or closed conversation reopens to its owner.
        ConversationStatus::Live | ConversationStatus::Resolved | ConversationStatus::Closed
    ) && owner.owner.role.is_staff()
        && owner.prefs.customer_wrote
        && is_away(owner.presence, now, fresh_ms)
}

/// The email telling the owner of conversation `id` that its customer
/// (`customer`) wrote `body` while they are away, to be queued with the
/// message; `None` when nobody owns it, the owner is here, turned these
/// off, or was told within [`AWAY_COALESCE`]. Within a burst already told
/// of, or [`OWNER_LOOK_STANDS`] after a look found nothing to tell,
/// nothing is read at all.
pub async fn customer_wrote_email(
    store: &Store,
    notices: &AwayNotices,
    id: ConversationId,
    customer: &str,
    body: &str,
    fresh_ms: i64,
) -> DomainResult<Option<NewEmail>> {
    if notices.lately(id) {
        return Ok(None);
    }
    let Some(owner) = store.conversation_owner(id).await? else {
        notices.looked(id, None);
        return Ok(None);
    };
    if !tells_owner(&owner, crate::store::now_ms(), fresh_ms) {
        notices.looked(id, Some(owner.owner.id));
        return Ok(None);
    }
    if !notices.mark(id) {
        return Ok(None);
    }
    Ok(Some(NewEmail {
        to: owner.owner.email.clone(),
        template: "customer_wrote",
        payload: serde_json::json!({
            "conversation_id": id,
            "ticket_number": owner.ticket_number,
            "name": owner.owner.name,
            "customer": customer,
            "body": body,
        }),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Role, UserId};

    fn person(id: i64, role: Role) -> User {
        User {
            id: UserId(id),
            email: format!("p{id}@example.com"),
            name: format!("P{id}"),
            role,
            verified: true,
            created_at: 0,
        }
    }

    #[test]
    fn nobody_is_told_of_their_own_assignment() {
        let alan = person(1, Role::Agent);
        let bea = person(2, Role::Agent);
        assert!(!tells_of_assignment(&alan, Some(&alan)));
        assert!(tells_of_assignment(&alan, Some(&bea)));
        assert!(tells_of_assignment(&alan, None), "routing has no actor");
        assert!(!tells_of_assignment(&person(3, Role::Customer), None));
    }

    #[test]
    fn away_is_not_online_or_stale() {
        let fresh = 90_000;
        assert!(is_away(None, 1_000_000, fresh));
        assert!(is_away(Some((false, 999_999)), 1_000_000, fresh));
        assert!(is_away(Some((true, 1_000_000 - fresh)), 1_000_000, fresh));
        assert!(!is_away(Some((true, 999_000)), 1_000_000, fresh));
    }

    #[test]
    fn an_away_owner_who_wants_it_is_told_once_in_the_window() {
        let mut owner = ConversationOwner {
            owner: person(1, Role::Agent),
            status: ConversationStatus::Live,
            ticket_number: None,
            presence: Some((false, 0)),
            prefs: NotificationPrefs::default(),
        };
        assert!(tells_owner(&owner, 1_000, 90_000));
        owner.prefs.customer_wrote = false;
        assert!(!tells_owner(&owner, 1_000, 90_000));
        owner.prefs.customer_wrote = true;
        owner.status = ConversationStatus::Waiting;
        assert!(!tells_owner(&owner, 1_000, 90_000));

        let notices = AwayNotices::default();
        let id = ConversationId(7);
        assert!(notices.mark(id));
        assert!(notices.lately(id) && !notices.mark(id));
        notices.owner_changed(id);
        assert!(notices.mark(id), "a new owner is told afresh");
    }

    #[test]
    fn a_look_that_found_nothing_stands_until_something_changes() {
        let notices = AwayNotices::default();
        let id = ConversationId(7);
        assert!(!notices.lately(id), "never looked at");
        notices.looked(id, Some(UserId(1)));
        assert!(notices.lately(id), "no second read within the window");
        notices.agent_away(UserId(2));
        assert!(notices.lately(id), "another agent went away");
        notices.agent_away(UserId(1));
        assert!(!notices.lately(id), "its owner went away here: look again");
        notices.looked(id, Some(UserId(1)));
        assert!(
            !notices.lately(id),
            "a look while they are away does not stand"
        );
        notices.agent_here(UserId(1));
        assert!(notices.lately(id), "back: the look stands again");
        notices.forget_looks();
        assert!(!notices.lately(id), "choices changed: look again");
        notices.looked(id, None);
        notices.owner_changed(id);
        assert!(!notices.lately(id), "a new owner: look again");
    }
}
