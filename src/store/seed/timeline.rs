//! The ticket's timeline as the seed writes it: the entries at its opening
//! (opened, assigned, a priority change), those after its thread (status
//! changes, a rating), and their rows. Replies and notes add theirs in `ticket`.

use super::batch::Batches;
use super::rng::Rng;
use super::ticket::{Outline, Timing, Turn};
use super::{HOUR, MINUTE};
use crate::model::{EventKind, Priority, TicketStatus};

/// A timeline entry about to be written.
pub(super) struct Event {
    pub at: i64,
    pub actor: Option<i64>,
    pub actor_name: String,
    pub kind: EventKind,
    pub old: Option<&'static str>,
    pub new: Option<String>,
    pub private: bool,
}

/// Step 5: the timeline's first entries: opened, assigned, maybe a priority change.
pub(super) fn opening_events(
    rng: &mut Rng,
    outline: &Outline<'_>,
    turns: &[Turn],
    timing: &Timing,
) -> Vec<Event> {
    let customer = outline.customer;
    let opened_at = timing.opened_at;
    let times = &timing.times;
    let mut events = vec![Event {
        at: opened_at,
        actor: customer.user_id,
        actor_name: customer.name.clone(),
        kind: EventKind::Opened,
        old: None,
        new: None,
        private: false,
    }];
    if let Some(agent) = outline.agent {
        let first_staff = turns
            .iter()
            .position(|t| matches!(t, Turn::Agent | Turn::Note))
            .map(|i| times[i] - rng.between(MINUTE, 10 * MINUTE))
            .unwrap_or(opened_at + rng.between(MINUTE, HOUR))
            .max(opened_at);
        events.push(Event {
            at: first_staff,
            actor: Some(agent.id),
            actor_name: agent.name.clone(),
            kind: EventKind::Assigned,
            old: None,
            new: Some(agent.name.clone()),
            private: false,
        });
        if outline.priority != Priority::Normal && rng.percent(30) {
            events.push(Event {
                at: first_staff,
                actor: Some(agent.id),
                actor_name: agent.name.clone(),
                kind: EventKind::Priority,
                old: Some(Priority::Normal.as_str()),
                new: Some(outline.priority.to_string()),
                private: false,
            });
        }
    }
    events
}

/// Step 7: the status changes after the thread, and maybe a rating; returns `resolved_at`.
pub(super) fn close(
    rng: &mut Rng,
    batches: &mut Batches,
    outline: &Outline<'_>,
    timing: &Timing,
    events: &mut Vec<Event>,
) -> Option<i64> {
    let now = outline.context.now;
    let status = outline.status;
    let last_message_at = timing.last_message_at;
    let (resolve_gap, close_gap) = (timing.resolve_gap, timing.close_gap);
    let mut resolved_at = None;
    if let Some(agent) = outline.agent {
        let staff = |at: i64, old: TicketStatus, new: TicketStatus| Event {
            at,
            actor: Some(agent.id),
            actor_name: agent.name.clone(),
            kind: EventKind::Status,
            old: Some(old.as_str()),
            new: Some(new.to_string()),
            private: false,
        };
        let resolved = timing
            .squeeze
            .at(last_message_at + resolve_gap)
            .max(last_message_at);
        match status {
            TicketStatus::Open => {}
            TicketStatus::Pending => {
                events.push(staff(resolved, TicketStatus::Open, TicketStatus::Pending))
            }
            TicketStatus::Resolved | TicketStatus::Closed => {
                events.push(staff(resolved, TicketStatus::Open, TicketStatus::Resolved));
                resolved_at = Some(resolved);
                if rng.percent(40) {
                    let score = rng.weighted(&[(5, 1), (5, 2), (10, 3), (30, 4), (50, 5)]);
                    let rated = resolved + rng.between(MINUTE, HOUR).min((now - resolved) / 2);
                    let comment = if rng.percent(30) {
                        "Quick and friendly, thank you."
                    } else {
                        ""
                    };
                    batches.ratings.row([
                        outline.conversation_id.into(),
                        score.into(),
                        comment.into(),
                        rated.into(),
                    ]);
                    events.push(Event {
                        at: rated,
                        actor: None,
                        actor_name: outline.customer.name.clone(),
                        kind: EventKind::Rated,
                        old: None,
                        new: Some(format!("{score}/5")),
                        private: false,
                    });
                }
                if status == TicketStatus::Closed {
                    let closed = timing
                        .squeeze
                        .at(last_message_at + resolve_gap + close_gap)
                        .max(resolved);
                    events.push(staff(closed, TicketStatus::Resolved, TicketStatus::Closed));
                }
            }
        }
    }
    resolved_at
}

/// Step 11: the timeline rows, in the order given (time order).
pub(super) fn write_events(batches: &mut Batches, outline: &Outline<'_>, events: Vec<Event>) {
    for event in events {
        batches.events.row([
            outline.ticket_id.into(),
            event.at.into(),
            event.actor.into(),
            event.actor_name.into(),
            event.kind.as_str().into(),
            event.old.map(str::to_string).into(),
            event.new.into(),
            i64::from(event.private).into(),
        ]);
    }
}
