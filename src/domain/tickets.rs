//! Tickets: what a customer raised, who works on it, where it stands, and
//! the timeline of everything that happened to it.
//!
//! Rules kept here:
//! - a customer sees only their own tickets; anyone else's answers "not found";
//! - private notes and their timeline entries are for staff only;
//! - a customer's reply reopens a pending or resolved ticket; a closed ticket
//!   takes no more replies (raise a new one);
//! - the first staff reply stamps the first-response time; resolving stamps
//!   the resolution time;
//! - a new assignee is emailed with the change (unless they assigned it to
//!   themselves: `notifications`).

use super::attachments::{Reader, sender_upload};
use super::chat::Chat;
use super::notifications;
use super::ownership;
use super::{DomainError, DomainResult, invalid};
use crate::model::text::{clean_line, clean_text};
use crate::model::{
    AttachmentRef, EventKind, MAX_BODY, Message, Priority, SenderKind, Ticket, TicketEvent,
    TicketNumber, TicketStatus, User, UserId,
};
use crate::store::{AssigneeFilter, NewEmail, Store, StoreError, TicketActivity, TicketFilter};

pub const MAX_SUBJECT: usize = 200;

/// A ticket with what the viewer may see of its thread and timeline.
#[derive(Debug, Clone)]
pub struct TicketView {
    pub ticket: Ticket,
    pub messages: Vec<Message>,
    pub timeline: Vec<TicketEvent>,
    /// The messages that came by email and kept their original: (staff
    /// `seq`, the original's id), in `seq` order (`email_originals`).
    pub emailed: Vec<(i64, i64)>,
}

fn parse_subject(subject: &str) -> DomainResult<String> {
    let subject = clean_line(subject);
    let subject = subject.trim();
    if subject.is_empty() {
        return Err(invalid(
            "subject",
            "Say in a few words what the ticket is about.",
        ));
    }
    if subject.chars().count() > MAX_SUBJECT {
        return Err(invalid(
            "subject",
            format!("Use at most {MAX_SUBJECT} characters."),
        ));
    }
    Ok(subject.to_string())
}

fn parse_body(field: &'static str, body: &str) -> DomainResult<String> {
    let body = clean_text(body);
    let body = body.trim();
    if body.is_empty() {
        return Err(invalid(field, "Write a message."));
    }
    if body.chars().count() > MAX_BODY {
        return Err(invalid(
            field,
            format!("Use at most {MAX_BODY} characters; split a longer message in two."),
        ));
    }
    Ok(body.to_string())
}

/// Opens a ticket for `customer` from the portal form; it waits in the
/// live queue like an escalated chat.
pub async fn raise(
    chat: &Chat,
    customer: &User,
    subject: &str,
    description: &str,
    priority: Priority,
) -> DomainResult<Ticket> {
    raise_answering(chat, customer, (subject, description), priority, None, None).await
}

/// [`raise`], for a ticket that an email opened: `answering` is that
/// email's `Message-ID`, which "we received your request" answers (so it
/// threads under it, and says it is automatic: no auto-responder answers it).
/// `source`, the email's key, makes it open once however often the email
/// is delivered (`Store::create_ticket`).
pub async fn raise_answering(
    chat: &Chat,
    customer: &User,
    (subject, description): (&str, &str),
    priority: Priority,
    answering: Option<&str>,
    source: Option<&str>,
) -> DomainResult<Ticket> {
    let store = chat.store();
    let subject = parse_subject(subject)?;
    let body = parse_body("description", description)?;
    let site = store.default_site().await?;
    let ticket = store
        .create_ticket(
            site.id,
            customer,
            (&subject, &body),
            priority,
            (answering, source),
        )
        .await?;
    chat.ticket_changed(ticket.conversation_id, None).await;
    Ok(ticket)
}

/// Opens a ticket for the customer at `email` on a staff member's say-so
/// (an integration: a CRM, a form elsewhere): the customer gets an account
/// as an email to support would give them, and the ticket is theirs to
/// follow. Staff addresses are refused: a ticket is a customer's.
pub async fn raise_for(
    chat: &Chat,
    staff: &User,
    (email, name): (&str, &str),
    written: (&str, &str),
    priority: Priority,
) -> DomainResult<Ticket> {
    if !staff.role.is_staff() {
        return Err(DomainError::Forbidden(
            "only agents and admins open tickets for someone else",
        ));
    }
    let email = crate::model::Email::parse(email)
        .map_err(|_| invalid("customer.email", "Enter the customer's email address."))?;
    // Checked before an account is made for the address.
    parse_subject(written.0)?;
    parse_body("description", written.1)?;
    let customer = super::accounts::customer_by_email(chat.store(), &email, name).await?;
    if customer.role.is_staff() {
        return Err(invalid(
            "customer.email",
            "This address is an agent's or an admin's: a ticket is a customer's.",
        ));
    }
    raise_answering(chat, &customer, written, priority, None, None).await
}

/// The ticket numbered `number`, if `viewer` may see it.
pub async fn find(store: &Store, viewer: &User, number: TicketNumber) -> DomainResult<Ticket> {
    let ticket = store
        .ticket_by_number(number)
        .await?
        .ok_or(DomainError::NotFound)?;
    let by_verified_email = viewer.verified && ticket.customer.email == viewer.email;
    if viewer.role.is_staff() || ticket.customer.id == Some(viewer.id) || by_verified_email {
        Ok(ticket)
    } else {
        // The same answer as for a ticket that does not exist, so that ids
        // cannot be probed.
        Err(DomainError::NotFound)
    }
}

/// The ticket, its thread and timeline, as `viewer` may see them.
pub async fn view(store: &Store, viewer: &User, number: TicketNumber) -> DomainResult<TicketView> {
    let ticket = find(store, viewer, number).await?;
    let staff = viewer.role.is_staff();
    let messages = store.messages(ticket.conversation_id, staff).await?;
    let timeline = store.ticket_events(ticket.id, staff).await?;
    let emailed = store.emailed_messages(ticket.conversation_id).await?;
    Ok(TicketView {
        ticket,
        messages,
        timeline,
        emailed,
    })
}

/// Lists tickets: a customer gets their own, whatever the filter says.
pub async fn list(
    store: &Store,
    viewer: &User,
    mut filter: TicketFilter,
) -> DomainResult<Vec<Ticket>> {
    if !viewer.role.is_staff() {
        filter.customer = Some(viewer.id);
        filter.customer_email = viewer.verified.then(|| viewer.email.clone());
        // Labels are for staff: a customer cannot sort theirs by one.
        filter.label = None;
    }
    if let AssigneeFilter::Me = filter.assignee {
        filter.assignee = AssigneeFilter::User(viewer.id);
    }
    Ok(store.list_tickets(&filter).await?)
}

/// Starts an activity that applies only if the ticket is still as `ticket` shows it.
fn activity_on(ticket: &Ticket, actor: &User) -> TicketActivity {
    let mut activity = TicketActivity::new(actor);
    activity.expect = Some((ticket.status, ticket.priority, ticket.assignee_id()));
    activity
}

async fn record(
    store: &Store,
    ticket: &Ticket,
    activity: TicketActivity,
) -> DomainResult<Option<Message>> {
    match store.record_ticket_activity(ticket, activity).await {
        Err(StoreError::Conflict) => Err(DomainError::Conflict(
            "Someone changed this ticket while you were writing. Reload the page and try again."
                .into(),
        )),
        Err(StoreError::AttachmentTaken) => Err(super::chat::attachment_taken()),
        other => Ok(other?),
    }
}

/// The email telling a customer about a staff reply on their ticket.
fn reply_email(ticket: &Ticket, author: &User, body: &str) -> Option<NewEmail> {
    (!ticket.customer.email.is_empty()).then(|| NewEmail {
        to: ticket.customer.email.clone(),
        template: "agent_reply",
        payload: serde_json::json!({
            "conversation_id": ticket.conversation_id,
            "name": ticket.customer.name,
            "ticket_number": ticket.number,
            "agent": author.name,
            "body": body,
        }),
    })
}

/// The email telling a customer their ticket is resolved, with a rating link.
pub fn resolved_email(
    conversation: crate::model::ConversationId,
    number: TicketNumber,
    subject: &str,
    name: &str,
    to: &str,
) -> Option<NewEmail> {
    (!to.is_empty()).then(|| NewEmail {
        to: to.to_string(),
        template: "ticket_resolved",
        payload: serde_json::json!({
            "name": name,
            "ticket_number": number,
            "subject": subject,
            "conversation_id": conversation,
        }),
    })
}

/// How an author's uploads are checked: staff by who they are, customers
/// by the conversation.
fn reader_of(author: &User) -> Reader {
    if author.role.is_staff() {
        Reader::Staff { user_id: author.id }
    } else {
        Reader::Customer
    }
}

/// What an author writes on a ticket: the text, and the author's own
/// upload that goes with it.
async fn written(
    store: &Store,
    ticket: &Ticket,
    author: &User,
    field: &'static str,
    body: &str,
    attachment_id: Option<&str>,
) -> DomainResult<(String, Option<AttachmentRef>)> {
    let attachment = sender_upload(
        store,
        ticket.conversation_id,
        reader_of(author),
        attachment_id,
    )
    .await?;
    let body = parse_body_with(field, body, attachment.as_ref())?;
    Ok((body, attachment))
}

/// A message's text on a ticket: a file alone needs no words.
fn parse_body_with(
    field: &'static str,
    body: &str,
    attachment: Option<&AttachmentRef>,
) -> DomainResult<String> {
    if attachment.is_some() && body.trim().is_empty() {
        return Ok(String::new());
    }
    parse_body(field, body)
}

/// A reply in the thread, by the customer or by staff, with a file
/// (`attachment_id`, uploaded first) or not. A staff reply is emailed to
/// the customer in the same transaction. Live clients hear of it (the
/// message, and where the conversation stands) after the commit.
pub async fn reply(
    chat: &Chat,
    author: &User,
    number: TicketNumber,
    body: &str,
    attachment_id: Option<&str>,
) -> DomainResult<Ticket> {
    let store = chat.store();
    let ticket = find(store, author, number).await?;
    let (body, attachment) = written(store, &ticket, author, "body", body, attachment_id).await?;
    let mut activity = activity_on(&ticket, author);
    if author.role.is_staff() {
        ownership::may_write(author, ticket.owner())?;
        let text = super::chat::message_text(&body, attachment.as_ref());
        activity.emails.extend(reply_email(&ticket, author, &text));
        activity.message(SenderKind::Agent, body, false);
        activity.event(EventKind::AgentReply, None, None, false);
        if ticket.first_response_at.is_none() {
            activity.first_response = true;
        }
    } else {
        if ticket.status == TicketStatus::Closed {
            return Err(DomainError::Conflict(
                "This ticket is closed. Raise a new ticket and mention its number.".into(),
            ));
        }
        activity.message(SenderKind::Customer, body, false);
        activity.event(EventKind::CustomerReply, None, None, false);
        if matches!(
            ticket.status,
            TicketStatus::Pending | TicketStatus::Resolved
        ) {
            change_status(&ticket, TicketStatus::Open, &mut activity);
        }
    }
    if let Some(attachment) = attachment {
        activity.attach(attachment);
    }
    let message = record(store, &ticket, activity).await?;
    chat.ticket_changed(ticket.conversation_id, message.as_ref())
        .await;
    find(store, author, number).await
}

/// A private note: staff only, never shown to the customer (nor its file);
/// live consoles get it after the commit.
pub async fn note(
    chat: &Chat,
    author: &User,
    number: TicketNumber,
    body: &str,
    attachment_id: Option<&str>,
) -> DomainResult<Ticket> {
    let store = chat.store();
    if !author.role.is_staff() {
        return Err(DomainError::NotFound);
    }
    let ticket = find(store, author, number).await?;
    let (body, attachment) = written(store, &ticket, author, "note", body, attachment_id).await?;
    let mut activity = TicketActivity::new(author);
    activity.message(SenderKind::Agent, body, true);
    if let Some(attachment) = attachment {
        activity.attach(attachment);
    }
    activity.event(EventKind::Note, None, None, true);
    let message = record(store, &ticket, activity).await?;
    chat.ticket_changed(ticket.conversation_id, message.as_ref())
        .await;
    Ok(ticket)
}

/// What staff may change on a ticket; `None` leaves a field as it is.
#[derive(Debug, Default, Clone)]
pub struct TicketUpdate {
    pub status: Option<TicketStatus>,
    pub priority: Option<Priority>,
    /// `Some(None)` unassigns.
    pub assignee: Option<Option<UserId>>,
}

/// Applies `update` and records a timeline entry for each real change;
/// live clients hear where the conversation stands after the commit.
pub async fn update(
    chat: &Chat,
    staff: &User,
    number: TicketNumber,
    update: TicketUpdate,
) -> DomainResult<Ticket> {
    let store = chat.store();
    if !staff.role.is_staff() {
        return Err(DomainError::NotFound);
    }
    let ticket = find(store, staff, number).await?;
    if update.status.is_some_and(|s| {
        s != ticket.status && matches!(s, TicketStatus::Resolved | TicketStatus::Closed)
    }) {
        ownership::may_close(staff, ticket.owner())?;
    }
    if update.assignee.is_some_and(|a| a != ticket.assignee_id()) {
        ownership::may_reassign(staff, ticket.owner())?;
    }
    let mut activity = activity_on(&ticket, staff);
    if let Some(status) = update.status {
        change_status(&ticket, status, &mut activity);
    }
    if let Some(priority) = update.priority
        && priority != ticket.priority
    {
        activity.priority = Some(priority);
        activity.event(
            EventKind::Priority,
            Some(ticket.priority.to_string()),
            Some(priority.to_string()),
            false,
        );
    }
    if let Some(assignee) = update.assignee
        && assignee != ticket.assignee_id()
    {
        let new_name = match assignee {
            Some(id) => {
                let user = store
                    .user(id)
                    .await?
                    .filter(|u| u.role.is_staff())
                    .ok_or_else(|| invalid("assignee", "Choose an agent from the list."))?;
                // Queued with the change, in its transaction.
                let what = notifications::Assigned::Ticket {
                    conversation_id: ticket.conversation_id,
                    number: ticket.number,
                    subject: &ticket.subject,
                    customer: &ticket.customer.name,
                };
                activity
                    .emails
                    .extend(notifications::assigned_email(store, &user, Some(staff), what).await?);
                user.name
            }
            None => String::new(),
        };
        activity.assignee = Some(assignee);
        activity.event(
            EventKind::Assigned,
            ticket.assignee.as_ref().map(|a| a.name.clone()),
            Some(new_name),
            false,
        );
    }
    if activity.is_empty() {
        chat.ticket_changed(ticket.conversation_id, None).await;
        return Ok(ticket);
    }
    let reassigned = activity.assignee.is_some();
    record(store, &ticket, activity).await?;
    if reassigned {
        chat.changed_hands(ticket.conversation_id);
    }
    chat.ticket_changed(ticket.conversation_id, None).await;
    find(store, staff, number).await
}

fn change_status(ticket: &Ticket, status: TicketStatus, activity: &mut TicketActivity) {
    if status == ticket.status {
        return;
    }
    if status == TicketStatus::Resolved {
        activity.emails.extend(resolved_email(
            ticket.conversation_id,
            ticket.number,
            &ticket.subject,
            &ticket.customer.name,
            &ticket.customer.email,
        ));
    }
    activity.status = Some(status);
    activity.event(
        EventKind::Status,
        Some(ticket.status.to_string()),
        Some(status.to_string()),
        false,
    );
}

/// The customer rates the help on a resolved ticket (1 to 5, and a
/// comment); rating again replaces the earlier rating.
pub async fn rate(
    store: &Store,
    customer: &User,
    number: TicketNumber,
    score: i64,
    comment: &str,
) -> DomainResult<Ticket> {
    let ticket = find(store, customer, number).await?;
    if customer.role.is_staff() {
        return Err(DomainError::Forbidden("Only the customer rates a ticket."));
    }
    if !(1..=5).contains(&score) {
        return Err(invalid("score", "Choose from 1 to 5 stars."));
    }
    if !matches!(ticket.status, TicketStatus::Resolved | TicketStatus::Closed) {
        return Err(DomainError::Conflict(
            "You can rate a ticket once it is resolved.".into(),
        ));
    }
    let comment: String = comment.trim().chars().take(2000).collect();
    store
        .rate(ticket.conversation_id, score, &comment, &customer.name)
        .await?;
    Ok(ticket)
}
