//! The agent console: the ticket list with filters and search (and the
//! selection that bulk actions apply to: `ticket_labels`), and a ticket
//! page where staff reply, write private notes, assign, change status and
//! priority, and put labels on and off.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{FormErrors, csrf_field, form_errors, page, text_area, time};
use super::ticket_parts::{
    ReplyForm, attach_field, label_chip, priority_badge, status_badge, summary, thread, timeline,
};
use crate::domain::invalid;
use crate::domain::tickets::{self, TicketUpdate, TicketView};
use crate::model::{Label, Priority, TicketNumber, TicketStatus, User, UserId};
use crate::store::{AssigneeFilter, TicketFilter};
use crate::web::AppState;
use crate::web::csrf::{CsrfForm, CsrfToken};
use crate::web::error::PageError;
use crate::web::session::Staff;

const PAGE_SIZE: i64 = 50;
/// Far beyond any real list; keeps the offset arithmetic from overflowing.
const MAX_PAGE: i64 = 100_000;

#[derive(Deserialize, Default)]
pub(super) struct ListQuery {
    #[serde(default)]
    status: String,
    #[serde(default)]
    priority: String,
    /// `anyone` (default), `unassigned`, `me` or an agent's id.
    #[serde(default)]
    assignee: String,
    /// A site's id: only tickets whose conversation came from it.
    #[serde(default)]
    site: String,
    /// A label's id: only tickets carrying it.
    #[serde(default)]
    label: String,
    #[serde(default)]
    q: String,
    #[serde(default)]
    page: Option<i64>,
}

impl ListQuery {
    fn filter(&self) -> TicketFilter {
        let page = self.page.unwrap_or(1).clamp(1, MAX_PAGE);
        TicketFilter {
            customer: None,
            customer_email: None,
            status: TicketStatus::parse(&self.status),
            priority: Priority::parse(&self.priority),
            assignee: match self.assignee.as_str() {
                "unassigned" => AssigneeFilter::Unassigned,
                "me" => AssigneeFilter::Me,
                other => other
                    .parse()
                    .map(|id| AssigneeFilter::User(UserId(id)))
                    .unwrap_or(AssigneeFilter::Anyone),
            },
            site: self.site.parse().ok(),
            label: self.label.parse().ok(),
            query: Some(self.q.clone()).filter(|q| !q.trim().is_empty()),
            limit: PAGE_SIZE + 1,
            offset: (page - 1) * PAGE_SIZE,
            after: None,
        }
    }

    fn with_page(&self, page: i64) -> String {
        serde_urlencoded::to_string([
            ("status", self.status.as_str()),
            ("priority", self.priority.as_str()),
            ("assignee", self.assignee.as_str()),
            ("site", self.site.as_str()),
            ("label", self.label.as_str()),
            ("q", self.q.as_str()),
            ("page", &page.to_string()),
        ])
        .unwrap_or_default()
    }

    /// The list as it was shown, from the query string a bulk form carried
    /// back (`back`); a bad one is the plain list.
    pub(super) fn from_back(back: &str) -> ListQuery {
        serde_urlencoded::from_str(back).unwrap_or_default()
    }
}

pub(super) fn select(
    label: &str,
    name: &str,
    current: &str,
    options: &[(String, String)],
) -> Markup {
    html! {
        div.field {
            label for=(name) { (label) }
            select id=(name) name=(name) {
                @for (value, text) in options {
                    option value=(value) selected[value == current] { (text) }
                }
            }
        }
    }
}

/// "Any site", then every site by name (archived ones too: their tickets
/// stay listed), as a filter's choices.
pub(super) fn site_choices(sites: &[crate::store::Site]) -> Vec<(String, String)> {
    std::iter::once((String::new(), "Any".to_string()))
        .chain(sites.iter().map(|s| {
            let name = if s.is_archived() {
                format!("{} (archived)", s.name)
            } else {
                s.name.clone()
            };
            (s.id.to_string(), name)
        }))
        .collect()
}

fn any_and<T: Copy>(all: &[T], text: fn(T) -> &'static str) -> Vec<(String, String)> {
    std::iter::once((String::new(), "Any".to_string()))
        .chain(
            all.iter()
                .map(|v| (text(*v).to_string(), text(*v).to_string())),
        )
        .collect()
}

/// What the list shows above the tickets after a bulk action: its outcome,
/// or why it was refused.
#[derive(Default)]
pub(super) struct Shown {
    pub outcome: Option<Markup>,
    pub errors: FormErrors,
}

/// "Leave as is", then `choices`: a bulk action's select.
fn unchanged_and(choices: Vec<(String, String)>) -> Vec<(String, String)> {
    std::iter::once((String::new(), "Leave as is".to_string()))
        .chain(choices)
        .collect()
}

pub async fn list(
    State(state): State<AppState>,
    Staff(current): Staff,
    csrf: CsrfToken,
    Query(query): Query<ListQuery>,
) -> Result<Response, PageError> {
    let body = list_page(&state, &current.user, &csrf.0, &query, Shown::default()).await?;
    Ok(body.into_response())
}

/// The ticket list with its filters, label chips and the bulk form.
pub(super) async fn list_page(
    state: &AppState,
    user: &User,
    csrf: &str,
    query: &ListQuery,
    shown: Shown,
) -> Result<Markup, PageError> {
    let mut found = tickets::list(state.store(), user, query.filter()).await?;
    let more = found.len() as i64 > PAGE_SIZE;
    found.truncate(PAGE_SIZE as usize);
    let page_no = query.page.unwrap_or(1).clamp(1, MAX_PAGE);
    let staff = state.store().staff().await?;
    let mut assignees = vec![
        (String::new(), "Anyone".to_string()),
        ("me".to_string(), "Me".to_string()),
        ("unassigned".to_string(), "Unassigned".to_string()),
    ];
    assignees.extend(staff.iter().map(|s| (s.id.to_string(), s.name.clone())));
    let sites = site_choices(&state.store().sites().await?);
    let all_labels = crate::domain::labels::list(state.store(), user).await?;
    let label_choices: Vec<(String, String)> = all_labels
        .iter()
        .map(|l| (l.id.to_string(), l.name.clone()))
        .collect();
    let label_filter: Vec<(String, String)> = std::iter::once((String::new(), "Any".to_string()))
        .chain(label_choices.iter().cloned())
        .collect();
    let statuses: Vec<(String, String)> = TicketStatus::ALL
        .iter()
        .map(|s| (s.as_str().to_string(), s.as_str().to_string()))
        .collect();
    let priorities: Vec<(String, String)> = Priority::ALL
        .iter()
        .map(|p| (p.as_str().to_string(), p.as_str().to_string()))
        .collect();
    let mut set_assignees = vec![("none".to_string(), "Nobody (unassign)".to_string())];
    set_assignees.extend(staff.iter().map(|s| (s.id.to_string(), s.name.clone())));
    let back = query.with_page(page_no);
    Ok(page(
        "Tickets",
        Some(user),
        csrf,
        html! {
            h1 { "Tickets" }
            form.filters method="get" action="/console" role="search" {
                div.field {
                    label for="q" { "Search" }
                    input #q name="q" type="search" value=(query.q) placeholder="Number, subject or customer email";
                }
                (select("Status", "status", &query.status, &any_and(TicketStatus::ALL, TicketStatus::as_str)))
                (select("Priority", "priority", &query.priority, &any_and(Priority::ALL, Priority::as_str)))
                (select("Assignee", "assignee", &query.assignee, &assignees))
                (select("Site", "site", &query.site, &sites))
                (select("Label", "label", &query.label, &label_filter))
                button type="submit" { "Filter" }
            }
            @if let Some(outcome) = &shown.outcome { (outcome) }
            (form_errors(&shown.errors, &[]))
            @if found.is_empty() {
                section.card.empty { p { "No tickets match these filters." } }
            } @else {
                form method="post" action="/console/bulk" {
                    (csrf_field(csrf))
                    input type="hidden" name="back" value=(back);
                    fieldset.bulk {
                        legend { "Change the ticked tickets" }
                        (select("Add label", "add_label", "", &unchanged_and(label_choices.clone())))
                        (select("Assign to", "set_assignee", "", &unchanged_and(set_assignees)))
                        (select("Set status", "set_status", "", &unchanged_and(statuses)))
                        (select("Set priority", "set_priority", "", &unchanged_and(priorities)))
                        button type="submit" { "Apply to ticked" }
                    }
                    table.tickets {
                        caption.visually-hidden { "Tickets, most recently updated first" }
                        thead { tr {
                            th scope="col" { span.visually-hidden { "Select" } }
                            th scope="col" { "Number" } th scope="col" { "Subject" } th scope="col" { "Customer" }
                            th scope="col" { "Site" } th scope="col" { "Status" } th scope="col" { "Priority" } th scope="col" { "Assignee" } th scope="col" { "Updated" }
                        } }
                        tbody {
                            @for t in &found {
                                tr {
                                    td {
                                        input type="checkbox" name="ticket" value=(t.number)
                                            id={ "pick-" (t.number) } aria-label={ "Select #" (t.number) };
                                    }
                                    td { a href={ "/console/tickets/" (t.number) } { "#" (t.number) } }
                                    td {
                                        a href={ "/console/tickets/" (t.number) } { (t.subject) }
                                        @if !t.labels.is_empty() {
                                            br;
                                            span.labels { @for l in &t.labels { (label_chip(l)) } }
                                        }
                                    }
                                    td { (t.customer.name) br; small { (t.customer.email) } }
                                    td.site { (t.site_name) }
                                    td { (status_badge(t)) }
                                    td { (priority_badge(t)) }
                                    td { @match &t.assignee { Some(a) => (a.name), None => em { "Unassigned" } } }
                                    td { (time(t.updated_at)) }
                                }
                            }
                        }
                    }
                }
                nav.pager aria-label="Pages" {
                    @if page_no > 1 { a href={ "/console?" (query.with_page(page_no - 1)) } { "← Newer" } }
                    @if more { a href={ "/console?" (query.with_page(page_no + 1)) } { "Older →" } }
                }
            }
        },
    ))
}

/// The ticket's labels, each with its button to take it off, and the form
/// to put on one it does not have yet.
fn labels_card(csrf: &str, ticket: &crate::model::Ticket, all: &[Label]) -> Markup {
    let n = ticket.number;
    let addable: Vec<(String, String)> = all
        .iter()
        .filter(|l| !ticket.labels.iter().any(|on| on.id == l.id))
        .map(|l| (l.id.to_string(), l.name.clone()))
        .collect();
    html! {
        section.card.labels {
            h2 { "Labels" }
            @if ticket.labels.is_empty() {
                p.hint { "No labels." }
            } @else {
                ul.labels {
                    @for label in &ticket.labels {
                        li {
                            (label_chip(label))
                            form.inline method="post" action={ "/console/tickets/" (n) "/labels/" (label.id) "/remove" } {
                                (csrf_field(csrf))
                                button.link type="submit" aria-label={ "Remove the label " (label.name) } { "×" }
                            }
                        }
                    }
                }
            }
            @if addable.is_empty() {
                @if all.is_empty() { p.hint { "An admin defines labels under Admin → Labels." } }
            } @else {
                form method="post" action={ "/console/tickets/" (n) "/labels" } {
                    (csrf_field(csrf))
                    (select("Add a label", "label", "", &addable))
                    button.secondary type="submit" { "Add label" }
                }
            }
        }
    }
}

fn ticket_page(
    user: &User,
    csrf: &str,
    view: &TicketView,
    (staff, labels): (&[User], &[Label]),
    errors: &FormErrors,
) -> Markup {
    let ticket = &view.ticket;
    let n = ticket.number;
    let assignee_id = ticket.assignee_id();
    page(
        &format!("#{n} {}", ticket.subject),
        Some(user),
        csrf,
        html! {
            p.crumbs { a href="/console" { "Tickets" } " › #" (n) }
            h1 { "#" (n) " " (ticket.subject) }
            p.customer {
                "From " strong { a href={ "/console/contacts/" (ticket.customer_contact.0) } { (ticket.customer.name) } } " · " (ticket.customer.email)
                @if !ticket.customer_verified && !ticket.customer.email.is_empty() {
                    " " span.badge.unverified title="Typed by the visitor, not proven" { "unverified" }
                }
                " · on " span.site { (ticket.site_name) }
            }
            (form_errors(errors, &["body", "note"]))
            div.ticket-layout {
                div.ticket-main {
                    (thread(&view.messages, &view.emailed))
                    section.card {
                        h2 { "Reply to the customer" }
                        form method="post" action={ "/console/tickets/" (n) "/reply" } {
                            (csrf_field(csrf))
                            (text_area("Reply", "body", "", errors, 5))
                            (attach_field(ticket.conversation_id, "reply-file"))
                            script src="/assets/ticket.js" defer {}
                            button type="submit" { "Send reply" }
                        }
                    }
                    section.card.note-form {
                        h2 { "Private note" }
                        p.hint { "Only agents see notes; the customer never does." }
                        form method="post" action={ "/console/tickets/" (n) "/note" } {
                            (csrf_field(csrf))
                            (text_area("Note", "note", "", errors, 3))
                            (attach_field(ticket.conversation_id, "note-file"))
                            button.secondary type="submit" { "Add note" }
                        }
                    }
                }
                aside.ticket-side {
                    (summary(ticket))
                    section.card {
                        h2 { "Update" }
                        form method="post" action={ "/console/tickets/" (n) "/update" } {
                            (csrf_field(csrf))
                            (select("Status", "status", ticket.status.as_str(),
                                &TicketStatus::ALL.iter().map(|s| (s.as_str().to_string(), s.as_str().to_string())).collect::<Vec<_>>()))
                            (select("Priority", "priority", ticket.priority.as_str(),
                                &Priority::ALL.iter().map(|p| (p.as_str().to_string(), p.as_str().to_string())).collect::<Vec<_>>()))
                            (select("Assignee", "assignee", &assignee_id.map(|a| a.to_string()).unwrap_or_default(),
                                &std::iter::once((String::new(), "Nobody".to_string()))
                                    .chain(staff.iter().map(|s| (s.id.to_string(), s.name.clone())))
                                    .collect::<Vec<_>>()))
                            button type="submit" { "Save changes" }
                        }
                    }
                    (labels_card(csrf, ticket, labels))
                    (timeline(&view.timeline))
                }
            }
        },
    )
}

async fn render(
    state: &AppState,
    user: &User,
    csrf: &str,
    number: TicketNumber,
    errors: &FormErrors,
) -> Result<Markup, PageError> {
    let view = tickets::view(state.store(), user, number).await?;
    let staff = state.store().staff().await?;
    let labels = crate::domain::labels::list(state.store(), user).await?;
    Ok(ticket_page(
        user,
        csrf,
        &view,
        (staff.as_slice(), labels.as_slice()),
        errors,
    ))
}

pub async fn show(
    State(state): State<AppState>,
    Staff(current): Staff,
    csrf: CsrfToken,
    Path(number): Path<TicketNumber>,
) -> Result<Response, PageError> {
    Ok(render(
        &state,
        &current.user,
        &csrf.0,
        number,
        &FormErrors::default(),
    )
    .await?
    .into_response())
}

/// Back to the ticket after a successful post, or the page again with the error.
pub(super) async fn after(
    state: &AppState,
    user: &User,
    csrf: &str,
    number: TicketNumber,
    result: Result<(), crate::domain::DomainError>,
) -> Result<Response, PageError> {
    match result {
        Ok(()) => Ok(Redirect::to(&format!("/console/tickets/{number}")).into_response()),
        Err(e) => {
            let errors = FormErrors::from_domain(e)?;
            let body = render(state, user, csrf, number, &errors).await?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, body).into_response())
        }
    }
}

pub async fn reply(
    State(state): State<AppState>,
    Staff(current): Staff,
    csrf: CsrfToken,
    Path(number): Path<TicketNumber>,
    CsrfForm(form): CsrfForm<ReplyForm>,
) -> Result<Response, PageError> {
    let result = tickets::reply(
        state.chat(),
        &current.user,
        number,
        &form.body,
        Some(&form.attachment_id),
    )
    .await
    .map(drop);
    after(&state, &current.user, &csrf.0, number, result).await
}

#[derive(Deserialize)]
pub struct NoteForm {
    note: String,
    #[serde(default)]
    attachment_id: String,
}

pub async fn note(
    State(state): State<AppState>,
    Staff(current): Staff,
    csrf: CsrfToken,
    Path(number): Path<TicketNumber>,
    CsrfForm(form): CsrfForm<NoteForm>,
) -> Result<Response, PageError> {
    let result = tickets::note(
        state.chat(),
        &current.user,
        number,
        &form.note,
        Some(&form.attachment_id),
    )
    .await
    .map(drop);
    after(&state, &current.user, &csrf.0, number, result).await
}

#[derive(Deserialize)]
pub struct UpdateForm {
    #[serde(default)]
    status: String,
    #[serde(default)]
    priority: String,
    /// Empty means unassigned; absent means unchanged.
    assignee: Option<String>,
}

fn parse_update(form: &UpdateForm) -> Result<TicketUpdate, crate::domain::DomainError> {
    let status = match form.status.as_str() {
        "" => None,
        s => Some(
            TicketStatus::parse(s)
                .ok_or_else(|| invalid("status", "Choose a status from the list."))?,
        ),
    };
    let priority = match form.priority.as_str() {
        "" => None,
        p => Some(
            Priority::parse(p)
                .ok_or_else(|| invalid("priority", "Choose a priority from the list."))?,
        ),
    };
    let assignee = match form.assignee.as_deref() {
        None => None,
        Some("") => Some(None),
        Some(id) => {
            Some(Some(UserId(id.parse().map_err(|_| {
                invalid("assignee", "Choose an agent from the list.")
            })?)))
        }
    };
    Ok(TicketUpdate {
        status,
        priority,
        assignee,
    })
}

pub async fn update(
    State(state): State<AppState>,
    Staff(current): Staff,
    csrf: CsrfToken,
    Path(number): Path<TicketNumber>,
    CsrfForm(form): CsrfForm<UpdateForm>,
) -> Result<Response, PageError> {
    let result = match parse_update(&form) {
        Ok(changes) => tickets::update(state.chat(), &current.user, number, changes)
            .await
            .map(drop),
        Err(e) => Err(e),
    };
    after(&state, &current.user, &csrf.0, number, result).await
}
