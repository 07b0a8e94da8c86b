//! The console's label and bulk forms: a label put on or taken off one
//! ticket (from its page), and a change applied to the tickets ticked in
//! the list (a plain form post). The rules are the domain's
//! (`domain::labels`, `domain::bulk`); here the forms are read and the
//! outcome shown.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::html;
use serde::Deserialize;

use super::console::{ListQuery, Shown, after, list_page};
use super::layout::FormErrors;
use crate::domain::bulk::{self, BulkChange, BulkOutcome};
use crate::domain::tickets::TicketUpdate;
use crate::domain::{DomainResult, invalid, labels};
use crate::model::{LabelId, Priority, TicketNumber, TicketStatus, UserId};
use crate::web::AppState;
use crate::web::csrf::{CsrfForm, CsrfToken};
use crate::web::error::PageError;
use crate::web::session::Staff;

#[derive(Deserialize)]
pub struct AddForm {
    #[serde(default)]
    label: String,
}

fn label_field(text: &str) -> DomainResult<LabelId> {
    text.trim()
        .parse()
        .map_err(|_| invalid("label", "Choose a label from the list."))
}

pub async fn add(
    State(state): State<AppState>,
    Staff(current): Staff,
    csrf: CsrfToken,
    Path(number): Path<TicketNumber>,
    CsrfForm(form): CsrfForm<AddForm>,
) -> Result<Response, PageError> {
    let user = &current.user;
    let result = match label_field(&form.label) {
        Ok(label) => labels::set_on_ticket(state.store(), user, number, label, true)
            .await
            .map(drop),
        Err(e) => Err(e),
    };
    after(&state, user, &csrf.0, number, result).await
}

#[derive(Deserialize)]
pub struct Empty {}

pub async fn remove(
    State(state): State<AppState>,
    Staff(current): Staff,
    csrf: CsrfToken,
    Path((number, label)): Path<(TicketNumber, LabelId)>,
    CsrfForm(_): CsrfForm<Empty>,
) -> Result<Response, PageError> {
    let user = &current.user;
    let result = labels::set_on_ticket(state.store(), user, number, label, false)
        .await
        .map(drop);
    after(&state, user, &csrf.0, number, result).await
}

/// The bulk form: repeated `ticket` fields (the ticked ones), so read as
/// name–value pairs.
pub struct BulkForm(Vec<(String, String)>);

impl<'de> Deserialize<'de> for BulkForm {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Vec::deserialize(deserializer).map(BulkForm)
    }
}

impl BulkForm {
    fn value(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map_or("", |(_, v)| v.trim())
    }

    fn tickets(&self) -> DomainResult<Vec<TicketNumber>> {
        self.0
            .iter()
            .filter(|(n, _)| n == "ticket")
            .map(|(_, v)| {
                v.trim()
                    .trim_start_matches('#')
                    .parse()
                    .map_err(|_| invalid("tickets", "Tick tickets from the list."))
            })
            .collect()
    }

    fn change(&self) -> DomainResult<BulkChange> {
        let label = match self.value("add_label") {
            "" => None,
            id => Some(label_field(id)?),
        };
        let status = match self.value("set_status") {
            "" => None,
            s => Some(
                TicketStatus::parse(s)
                    .ok_or_else(|| invalid("set_status", "Choose a status from the list."))?,
            ),
        };
        let priority = match self.value("set_priority") {
            "" => None,
            p => Some(
                Priority::parse(p)
                    .ok_or_else(|| invalid("set_priority", "Choose a priority from the list."))?,
            ),
        };
        let assignee = match self.value("set_assignee") {
            "" => None,
            "none" => Some(None),
            id => Some(Some(UserId(id.parse().map_err(|_| {
                invalid("set_assignee", "Choose an agent from the list.")
            })?))),
        };
        Ok(BulkChange {
            label,
            update: TicketUpdate {
                status,
                priority,
                assignee,
            },
        })
    }
}

/// "2 tickets changed", with the refused ones and why.
fn outcome_notice(outcome: &BulkOutcome) -> maud::Markup {
    let tickets = |n: usize| if n == 1 { "ticket" } else { "tickets" };
    let changed = outcome.changed.len();
    let unchanged = outcome.unchanged.len();
    html! {
        div.notice role="status" {
            p {
                (changed) " " (tickets(changed)) " changed"
                @if unchanged > 0 { ", " (unchanged) " already as asked" }
                @if !outcome.refused.is_empty() { ", " (outcome.refused.len()) " refused" }
                "."
            }
            @if !outcome.refused.is_empty() {
                ul.refused {
                    @for (number, why) in &outcome.refused {
                        li { a href={ "/console/tickets/" (number) } { "#" (number) } ": " (why) }
                    }
                }
            }
        }
    }
}

pub async fn apply(
    State(state): State<AppState>,
    Staff(current): Staff,
    csrf: CsrfToken,
    CsrfForm(form): CsrfForm<BulkForm>,
) -> Result<Response, PageError> {
    let user = &current.user;
    let query = ListQuery::from_back(form.value("back"));
    let result = match (form.tickets(), form.change()) {
        (Ok(numbers), Ok(change)) => bulk::apply(state.chat(), user, &numbers, &change).await,
        (Err(e), _) | (_, Err(e)) => Err(e),
    };
    let (status, shown) = match result {
        Ok(outcome) => (
            StatusCode::OK,
            Shown {
                outcome: Some(outcome_notice(&outcome)),
                errors: FormErrors::default(),
            },
        ),
        Err(e) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Shown {
                outcome: None,
                errors: FormErrors::from_domain(e).map_err(PageError)?,
            },
        ),
    };
    let body = list_page(&state, user, &csrf.0, &query, shown).await?;
    Ok((status, body).into_response())
}
