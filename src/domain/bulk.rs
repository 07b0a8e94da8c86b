//! Bulk actions on a selection of tickets: a label, an assignee, a status
//! or a priority applied to each, by exactly the rules that apply to one
//! ticket (`tickets::update`, `labels::set_on_ticket`). Each ticket is its
//! own change: one that is refused (someone else owns it, it changed
//! meanwhile) leaves the others changed, and the outcome says which and why.

use super::chat::Chat;
use super::tickets::{self, TicketUpdate};
use super::{DomainError, DomainResult, invalid, labels};
use crate::model::{LabelId, Ticket, TicketNumber, User};

/// The most tickets one bulk action takes (a page of the list is 50).
pub const MAX_SELECTION: usize = 200;

/// What to do to every selected ticket; `None` leaves that alone.
#[derive(Debug, Default, Clone)]
pub struct BulkChange {
    pub label: Option<LabelId>,
    pub update: TicketUpdate,
}

impl BulkChange {
    fn is_empty(&self) -> bool {
        self.label.is_none()
            && self.update.status.is_none()
            && self.update.priority.is_none()
            && self.update.assignee.is_none()
    }
}

/// What a bulk action did, ticket by ticket.
#[derive(Debug, Default, Clone)]
pub struct BulkOutcome {
    pub changed: Vec<TicketNumber>,
    /// Already as asked: nothing to do.
    pub unchanged: Vec<TicketNumber>,
    /// Refused, with the reason in words.
    pub refused: Vec<(TicketNumber, String)>,
}

fn same_fields(before: &Ticket, after: &Ticket) -> bool {
    before.status == after.status
        && before.priority == after.priority
        && before.assignee_id() == after.assignee_id()
}

/// Why one ticket was refused, as its line of the outcome says it.
fn reason(error: DomainError) -> String {
    match error {
        DomainError::NotFound => "no such ticket".into(),
        DomainError::Unavailable(e) | DomainError::Internal(e) => {
            tracing::warn!(error = %e, "a bulk action could not change a ticket");
            "Careline could not save this change; try again".into()
        }
        other => other.to_string(),
    }
}

/// Applies `change` to each ticket of `numbers` (staff), in the order
/// given, each once.
pub async fn apply(
    chat: &Chat,
    staff: &User,
    numbers: &[TicketNumber],
    change: &BulkChange,
) -> DomainResult<BulkOutcome> {
    if !staff.role.is_staff() {
        return Err(DomainError::NotFound);
    }
    let mut selected: Vec<TicketNumber> = Vec::new();
    for number in numbers {
        if !selected.contains(number) {
            selected.push(*number);
        }
    }
    if selected.is_empty() {
        return Err(invalid("tickets", "Tick the tickets to change first."));
    }
    if selected.len() > MAX_SELECTION {
        return Err(invalid(
            "tickets",
            format!("Change at most {MAX_SELECTION} tickets at once."),
        ));
    }
    if change.is_empty() {
        return Err(invalid(
            "change",
            "Choose a label, an assignee, a status or a priority to apply.",
        ));
    }
    let store = chat.store();
    // A label that does not exist is the form's mistake, not each ticket's.
    if let Some(label) = change.label {
        labels::find(store, staff, label).await?;
    }
    let mut outcome = BulkOutcome::default();
    for number in selected {
        match apply_one(chat, staff, number, change).await {
            Ok(true) => outcome.changed.push(number),
            Ok(false) => outcome.unchanged.push(number),
            Err(e) => outcome.refused.push((number, reason(e))),
        }
    }
    Ok(outcome)
}

/// One ticket's part: its fields first, then the label, so that a refused
/// change of fields leaves the ticket's labels as they were too.
async fn apply_one(
    chat: &Chat,
    staff: &User,
    number: TicketNumber,
    change: &BulkChange,
) -> DomainResult<bool> {
    let store = chat.store();
    let before = tickets::find(store, staff, number).await?;
    let after = tickets::update(chat, staff, number, change.update.clone()).await?;
    let mut changed = !same_fields(&before, &after);
    if let Some(label) = change.label {
        let (_, labelled) = labels::set_on_ticket(store, staff, number, label, true).await?;
        changed |= labelled;
    }
    Ok(changed)
}
