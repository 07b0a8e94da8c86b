//! One generated ticket: whose it is and how it stands, who wrote each
//! message and when, its timeline and maybe a rating, as rows of the seed's
//! batches. The steps draw from one pseudo-random sequence, in a fixed order.

use super::batch::Batches;
use super::rng::Rng;
use super::text::{AGENT_LINES, BOT_ANSWERS, CUSTOMER_LINES, HANDOFF_ASKS, NOTES};
use super::text::{sentences, subject};
use super::timeline::{Event, close, opening_events, write_events};
use super::{Agent, Customer, DAY, HOUR, MINUTE, TicketContext};
use crate::model::EventKind;
use crate::model::{Priority, SenderKind, TicketStatus};
use crate::store::ticket_activity::conversation_status;

/// Who wrote a message.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Turn {
    Customer,
    Bot,
    HandoffAsk,
    Handoff,
    Agent,
    Note,
}

/// A ticket being generated: its ids, and what is decided about it first.
pub(super) struct Outline<'a> {
    pub context: &'a TicketContext<'a>,
    pub conversation_id: i64,
    pub ticket_id: i64,
    pub number: i64,
    pub customer: &'a Customer,
    pub start: i64,
    pub status: TicketStatus,
    pub priority: Priority,
    pub agent: Option<&'a Agent>,
}

/// When the thread's messages were written, and when the ticket opened.
pub(super) struct Timing {
    /// One per turn, already squeezed.
    pub times: Vec<i64>,
    pub resolve_gap: i64,
    pub close_gap: i64,
    pub squeeze: Squeeze,
    pub last_message_at: i64,
    pub opened_at: i64,
}

/// Squeezes a thread that would end after now into the time between its
/// start and now.
#[derive(Clone, Copy)]
pub(super) struct Squeeze {
    start: i64,
    end: i64,
    latest: i64,
}

impl Squeeze {
    pub(super) fn at(&self, at: i64) -> i64 {
        let Squeeze { start, end, latest } = *self;
        if end <= latest {
            at
        } else {
            start + ((at - start) as f64 * ((latest - start) as f64 / (end - start) as f64)) as i64
        }
    }
}

/// The written thread's numbering, for the conversation and ticket rows.
struct Thread {
    seq: i64,
    public_seq: i64,
    first_response_at: Option<i64>,
    agent_read_seq: i64,
    customer_read_seq: i64,
}

/// One ticket with its conversation, thread, timeline and maybe a rating.
pub(super) fn generate_ticket(
    rng: &mut Rng,
    context: &TicketContext<'_>,
    batches: &mut Batches,
    conversation_id: i64,
    ticket_id: i64,
    number: i64,
    length: i64,
) {
    let outline = outline(rng, context, conversation_id, ticket_id, number);
    let turns = turns(rng, &outline, length);
    let timing = timing(rng, &outline, &turns);
    // Step 4, the subject, is drawn here: between the timing and the
    // timeline, where it always was, so that a plan's data set stays the same.
    let subject = subject(rng);
    let mut events = opening_events(rng, &outline, &turns, &timing);
    let thread = write_thread(rng, batches, &outline, &turns, &timing, &mut events);
    let resolved_at = close(rng, batches, &outline, &timing, &mut events);
    // The timeline reads in id order: write it in time order.
    events.sort_by_key(|e| e.at);
    let (last_public, last_any) = last_activity(&outline, &turns, &timing, &events);
    write_conversation(batches, &outline, &timing, &thread, last_any);
    write_ticket(
        batches,
        &outline,
        subject,
        &timing,
        &thread,
        resolved_at,
        last_public,
    );
    write_events(batches, &outline, events);
}

/// Step 1: the customer, the start, the status reached, the priority and the agent.
fn outline<'a>(
    rng: &mut Rng,
    context: &'a TicketContext<'a>,
    conversation_id: i64,
    ticket_id: i64,
    number: i64,
) -> Outline<'a> {
    let now = context.now;
    let customer = rng.pick(context.customers);
    let start = now - rng.between(HOUR, context.span);
    let age = now - start;

    let status = if age < 14 * DAY {
        rng.weighted(&[
            (35, TicketStatus::Open),
            (20, TicketStatus::Pending),
            (30, TicketStatus::Resolved),
            (15, TicketStatus::Closed),
        ])
    } else {
        rng.weighted(&[
            (2, TicketStatus::Open),
            (3, TicketStatus::Pending),
            (25, TicketStatus::Resolved),
            (70, TicketStatus::Closed),
        ])
    };
    let priority = rng.weighted(&[
        (15, Priority::Low),
        (60, Priority::Normal),
        (20, Priority::High),
        (5, Priority::Urgent),
    ]);
    let assigned = !context.agents.is_empty() && (status != TicketStatus::Open || rng.percent(70));
    let agent = assigned.then(|| rng.pick(context.agents));
    Outline {
        context,
        conversation_id,
        ticket_id,
        number,
        customer,
        start,
        status,
        priority,
        agent,
    }
}

/// Step 2: who writes each message, in order.
fn turns(rng: &mut Rng, outline: &Outline<'_>, length: i64) -> Vec<Turn> {
    let mut turns = vec![Turn::Customer];
    if outline.customer.chat {
        turns.extend([Turn::Bot, Turn::HandoffAsk, Turn::Handoff]);
    }
    turns.truncate(length as usize);
    let mut staff_next = true;
    while (turns.len() as i64) < length {
        if outline.agent.is_none() {
            turns.push(Turn::Customer);
        } else if staff_next {
            turns.push(if rng.percent(12) {
                Turn::Note
            } else {
                Turn::Agent
            });
            staff_next = false;
        } else {
            turns.push(Turn::Customer);
            staff_next = true;
        }
    }
    turns
}

/// Step 3: when each message was written, and when the ticket opened.
fn timing(rng: &mut Rng, outline: &Outline<'_>, turns: &[Turn]) -> Timing {
    let now = outline.context.now;
    let start = outline.start;
    // When: minutes between bot turns, hours between people; then the
    // whole thread is squeezed into the time between its start and now.
    let mut times = Vec::with_capacity(turns.len());
    let mut t = start;
    for (i, turn) in turns.iter().enumerate() {
        if i > 0 {
            t += match turn {
                Turn::Bot | Turn::Handoff => rng.between(2_000, 20_000),
                Turn::HandoffAsk => rng.between(20_000, 3 * MINUTE),
                _ => rng.between(5 * MINUTE, 20 * HOUR),
            };
        }
        times.push(t);
    }
    // Status changes and ratings come after the last message.
    let resolve_gap = rng.between(10 * MINUTE, 2 * DAY);
    let close_gap = rng.between(3 * DAY, 7 * DAY);
    let tail = match outline.status {
        TicketStatus::Open => 0,
        TicketStatus::Pending | TicketStatus::Resolved => resolve_gap,
        TicketStatus::Closed => resolve_gap + close_gap,
    };
    let end = t + tail;
    let latest = now - MINUTE;
    let squeeze = Squeeze { start, end, latest };
    let times: Vec<i64> = times.into_iter().map(|at| squeeze.at(at)).collect();
    let last_message_at = *times.last().unwrap_or(&start);

    // A chat ticket opens at the handoff; a portal ticket with its first message.
    let opened_at = if outline.customer.chat {
        times[turns.len().min(4) - 1]
    } else {
        start
    };
    Timing {
        times,
        resolve_gap,
        close_gap,
        squeeze,
        last_message_at,
        opened_at,
    }
}

/// Step 6: the messages, numbered, with a timeline entry for each reply and note.
fn write_thread(
    rng: &mut Rng,
    batches: &mut Batches,
    outline: &Outline<'_>,
    turns: &[Turn],
    timing: &Timing,
    events: &mut Vec<Event>,
) -> Thread {
    let customer = outline.customer;
    let agent = outline.agent;
    let opened_at = timing.opened_at;
    let mut seq = 0;
    let mut public_seq = 0;
    let mut first_response_at = None;
    let mut agent_read_seq = 0;
    let mut customer_read_seq = 0;
    for (turn, &at) in turns.iter().zip(&timing.times) {
        seq += 1;
        let private = *turn == Turn::Note;
        let public = (!private).then(|| {
            public_seq += 1;
            public_seq
        });
        let (kind, sender, name, body) = match turn {
            Turn::Customer => (
                SenderKind::Customer,
                customer.user_id,
                customer.name.clone(),
                sentences(rng, CUSTOMER_LINES, 4),
            ),
            Turn::HandoffAsk => (
                SenderKind::Customer,
                customer.user_id,
                customer.name.clone(),
                rng.pick(HANDOFF_ASKS).to_string(),
            ),
            Turn::Bot => (
                SenderKind::Bot,
                None,
                "Assistant".to_string(),
                rng.pick(BOT_ANSWERS).to_string(),
            ),
            Turn::Handoff => (
                SenderKind::System,
                None,
                "Careline".to_string(),
                "A person will take over this conversation shortly.".to_string(),
            ),
            Turn::Agent | Turn::Note => {
                let agent = agent.expect("staff turns only on assigned tickets");
                let body = if private {
                    sentences(rng, NOTES, 2)
                } else {
                    format!(
                        "Hello {},\n\n{}",
                        customer.name.split(' ').next().unwrap_or_default(),
                        sentences(rng, AGENT_LINES, 3)
                    )
                };
                (SenderKind::Agent, Some(agent.id), agent.name.clone(), body)
            }
        };
        match turn {
            Turn::Customer | Turn::HandoffAsk => customer_read_seq = public_seq,
            Turn::Agent | Turn::Note => agent_read_seq = seq,
            Turn::Bot | Turn::Handoff => {}
        }
        if *turn == Turn::Agent && first_response_at.is_none() {
            first_response_at = Some(at);
        }
        // Replies and notes on the ticket are on its timeline; the chat
        // before the handoff is only in the transcript.
        if seq > 1 && at >= opened_at {
            let (event_kind, actor, actor_name) = match turn {
                Turn::Customer => (
                    Some(EventKind::CustomerReply),
                    customer.user_id,
                    customer.name.clone(),
                ),
                Turn::Agent => (Some(EventKind::AgentReply), sender, name.clone()),
                Turn::Note => (Some(EventKind::Note), sender, name.clone()),
                _ => (None, None, String::new()),
            };
            if let Some(event_kind) = event_kind {
                events.push(Event {
                    at,
                    actor,
                    actor_name,
                    kind: event_kind,
                    old: None,
                    new: None,
                    private,
                });
            }
        }
        batches.messages.row([
            outline.conversation_id.into(),
            seq.into(),
            public.into(),
            kind.as_str().into(),
            sender.into(),
            name.into(),
            body.into(),
            i64::from(private).into(),
            format!("seed:{seq}").into(),
            at.into(),
        ]);
    }
    Thread {
        seq,
        public_seq,
        first_response_at,
        agent_read_seq,
        customer_read_seq,
    }
}

/// Step 8: the last public activity (the ticket's) and the last of any (the conversation's).
fn last_activity(
    outline: &Outline<'_>,
    turns: &[Turn],
    timing: &Timing,
    events: &[Event],
) -> (i64, i64) {
    let start = outline.start;
    let times = &timing.times;
    let last_public = events
        .iter()
        .filter(|e| !e.private)
        .map(|e| e.at)
        .chain(
            turns
                .iter()
                .zip(times)
                .filter(|(t, _)| **t != Turn::Note)
                .map(|(_, at)| *at),
        )
        .max()
        .unwrap_or(start);
    let last_any = events
        .iter()
        .map(|e| e.at)
        .chain(times.iter().copied())
        .max()
        .unwrap_or(start);
    (last_public, last_any)
}

/// Step 9: the conversation row, mirroring its ticket, read up to the end when finished.
fn write_conversation(
    batches: &mut Batches,
    outline: &Outline<'_>,
    timing: &Timing,
    thread: &Thread,
    last_any: i64,
) {
    let Thread {
        seq,
        public_seq,
        agent_read_seq,
        customer_read_seq,
        ..
    } = *thread;
    let status = outline.status;
    let finished = matches!(status, TicketStatus::Resolved | TicketStatus::Closed);
    let mirrored = conversation_status(status, outline.agent.is_some());

    batches.conversations.row([
        outline.conversation_id.into(),
        outline.context.site_id.into(),
        outline.customer.visitor_id.into(),
        mirrored.as_str().into(),
        outline.agent.map(|a| a.id).into(),
        seq.into(),
        public_seq.into(),
        (if finished { seq } else { agent_read_seq }).into(),
        (if finished {
            public_seq
        } else {
            customer_read_seq
        })
        .into(),
        Some(timing.opened_at).into(),
        outline.start.into(),
        last_any.into(),
    ]);
}

/// Step 10: the ticket row.
fn write_ticket(
    batches: &mut Batches,
    outline: &Outline<'_>,
    subject: String,
    timing: &Timing,
    thread: &Thread,
    resolved_at: Option<i64>,
    last_public: i64,
) {
    batches.tickets.row([
        outline.ticket_id.into(),
        outline.number.into(),
        outline.conversation_id.into(),
        outline.customer.visitor_id.into(),
        subject.into(),
        outline.status.as_str().into(),
        outline.priority.as_str().into(),
        outline.agent.map(|a| a.id).into(),
        timing.opened_at.into(),
        last_public.into(),
        thread.first_response_at.into(),
        resolved_at.into(),
    ]);
}
