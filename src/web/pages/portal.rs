//! The customer portal: the dashboard of one's own tickets, raising a
//! ticket, and a ticket's thread, reply box and progress timeline.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{FormErrors, csrf_field, form_errors, page, text_area, time};
use super::ticket_parts::{ReplyForm, attach_field, status_badge, summary, thread, timeline};
use crate::domain::tickets::{self, MAX_SUBJECT};
use crate::model::{Priority, TicketNumber, TicketStatus, User};
use crate::store::TicketFilter;
use crate::web::AppState;
use crate::web::csrf::{CsrfForm, CsrfToken};
use crate::web::error::PageError;
use crate::web::session::CurrentUser;

pub async fn dashboard(
    State(state): State<AppState>,
    CurrentUser { user, .. }: CurrentUser,
    csrf: CsrfToken,
) -> Result<Response, PageError> {
    if user.role.is_staff() {
        return Ok(Redirect::to("/console").into_response());
    }
    let filter = TicketFilter {
        limit: 200,
        ..TicketFilter::default()
    };
    let list = tickets::list(state.store(), &user, filter).await?;
    Ok(page(
        "My tickets",
        Some(&user),
        &csrf.0,
        html! {
            div.page-head {
                h1 { "My tickets" }
                a.button href="/tickets/new" { "Raise a ticket" }
            }
            section.card {
                h2 { "Profile" }
                p { (user.name) " · " (user.email) " · " a href="/account" { "Edit profile" } }
            }
            @if list.is_empty() {
                section.card.empty {
                    p { "You have no tickets yet. When something needs our attention, raise a ticket and we will reply here." }
                }
            } @else {
                table.tickets {
                    caption.visually-hidden { "Your tickets, most recently updated first" }
                    thead { tr { th scope="col" { "Number" } th scope="col" { "Subject" } th scope="col" { "Status" } th scope="col" { "Updated" } } }
                    tbody {
                        @for t in &list {
                            tr {
                                td { a href={ "/tickets/" (t.number) } { "#" (t.number) } }
                                td { a href={ "/tickets/" (t.number) } { (t.subject) } }
                                td { (status_badge(t)) }
                                td { (time(t.updated_at)) }
                            }
                        }
                    }
                }
            }
        },
    )
    .into_response())
}

#[derive(Deserialize)]
pub struct NewTicketForm {
    subject: String,
    description: String,
    #[serde(default)]
    priority: String,
}

fn new_ticket_form(
    user: &User,
    csrf: &str,
    subject: &str,
    description: &str,
    priority: &str,
    errors: &FormErrors,
) -> Markup {
    page(
        "Raise a ticket",
        Some(user),
        csrf,
        html! {
            section.card.narrow {
                h1 { "Raise a ticket" }
                (form_errors(errors, &["subject", "description", "priority"]))
                form method="post" action="/tickets" {
                    (csrf_field(csrf))
                    div.field.invalid[errors.get("subject").is_some()] {
                        label for="subject" { "Subject" }
                        input #subject name="subject" type="text" value=(subject) required maxlength=(MAX_SUBJECT)
                            aria-invalid=[errors.get("subject").map(|_| "true")]
                            aria-describedby=[errors.get("subject").map(|_| "subject-error")];
                        @if let Some(m) = errors.get("subject") { p.error #subject-error { (m) } }
                    }
                    (text_area("What happened? Describe the problem", "description", description, errors, 8))
                    div.field.invalid[errors.get("priority").is_some()] {
                        label for="priority" { "Priority" }
                        select #priority name="priority" {
                            @for p in Priority::ALL {
                                option value=(p.as_str()) selected[p.as_str() == priority || (priority.is_empty() && *p == Priority::Normal)] { (p.as_str()) }
                            }
                        }
                        @if let Some(m) = errors.get("priority") { p.error { (m) } }
                    }
                    button type="submit" { "Raise ticket" }
                }
            }
        },
    )
}

pub async fn new_ticket(CurrentUser { user, .. }: CurrentUser, csrf: CsrfToken) -> Response {
    new_ticket_form(&user, &csrf.0, "", "", "", &FormErrors::default()).into_response()
}

pub async fn create(
    State(state): State<AppState>,
    CurrentUser { user, .. }: CurrentUser,
    csrf: CsrfToken,
    CsrfForm(form): CsrfForm<NewTicketForm>,
) -> Result<Response, PageError> {
    let priority = if form.priority.is_empty() {
        Some(Priority::Normal)
    } else {
        Priority::parse(&form.priority)
    };
    let result = match priority {
        Some(priority) => {
            tickets::raise(
                state.chat(),
                &user,
                &form.subject,
                &form.description,
                priority,
            )
            .await
        }
        None => Err(crate::domain::invalid(
            "priority",
            "Choose a priority from the list.",
        )),
    };
    match result {
        Ok(ticket) => Ok(Redirect::to(&format!("/tickets/{}", ticket.number)).into_response()),
        Err(e) => {
            let errors = FormErrors::from_domain(e)?;
            let body = new_ticket_form(
                &user,
                &csrf.0,
                &form.subject,
                &form.description,
                &form.priority,
                &errors,
            );
            Ok((StatusCode::UNPROCESSABLE_ENTITY, body).into_response())
        }
    }
}

fn rating_form(
    csrf: &str,
    number: TicketNumber,
    rating: Option<&(i64, String)>,
    errors: &FormErrors,
) -> Markup {
    html! {
        section.card #rate {
            h2 { "How did we do?" }
            @if let Some((score, _)) = rating {
                p { "You rated this " strong { (score) " out of 5" } ". You can change it." }
            }
            @if let Some(m) = errors.get("score") { p.error role="alert" { (m) } }
            form method="post" action={ "/tickets/" (number) "/rate" } {
                (csrf_field(csrf))
                fieldset.stars {
                    legend { "Your rating" }
                    @for n in 1..=5 {
                        label {
                            input type="radio" name="score" value=(n) required checked[rating.is_some_and(|(s, _)| *s == n)];
                            " " (n)
                        }
                    }
                }
                div.field {
                    label for="comment" { "Comment (optional)" }
                    textarea #comment name="comment" rows="2" maxlength="2000" {
                        (rating.map(|(_, c)| c.as_str()).unwrap_or(""))
                    }
                }
                button type="submit" { "Send rating" }
            }
        }
    }
}

fn ticket_page(
    user: &User,
    csrf: &str,
    view: &tickets::TicketView,
    draft: &str,
    errors: &FormErrors,
    rating: Option<&(i64, String)>,
) -> Markup {
    let ticket = &view.ticket;
    page(
        &format!("#{} {}", ticket.number, ticket.subject),
        Some(user),
        csrf,
        html! {
            p.crumbs { a href="/dashboard" { "My tickets" } " › #" (ticket.number) }
            h1 { "#" (ticket.number) " " (ticket.subject) }
            div.ticket-layout {
                div.ticket-main {
                    (thread(&view.messages, &view.emailed))
                    @if ticket.status == TicketStatus::Closed {
                        div.notice { p { "This ticket is closed. " a href="/tickets/new" { "Raise a new ticket" } " if you need more help." } }
                    } @else {
                        section.card {
                            h2 { "Reply" }
                            (form_errors(errors, &["body"]))
                            form method="post" action={ "/tickets/" (ticket.number) "/reply" } {
                                (csrf_field(csrf))
                                (text_area("Your message", "body", draft, errors, 5))
                                (attach_field(ticket.conversation_id, "reply-file"))
                                script src="/assets/ticket.js" defer {}
                                button type="submit" { "Send reply" }
                            }
                        }
                    }
                }
                aside.ticket-side {
                    (summary(ticket))
                    @if matches!(ticket.status, TicketStatus::Resolved | TicketStatus::Closed) {
                        (rating_form(csrf, ticket.number, rating, errors))
                    }
                    (timeline(&view.timeline))
                }
            }
        },
    )
}

pub async fn show(
    State(state): State<AppState>,
    CurrentUser { user, .. }: CurrentUser,
    csrf: CsrfToken,
    Path(number): Path<TicketNumber>,
) -> Result<Response, PageError> {
    if user.role.is_staff() {
        return Ok(Redirect::to(&format!("/console/tickets/{number}")).into_response());
    }
    let view = tickets::view(state.store(), &user, number).await?;
    let rating = state.store().rating(view.ticket.conversation_id).await?;
    Ok(ticket_page(
        &user,
        &csrf.0,
        &view,
        "",
        &FormErrors::default(),
        rating.as_ref(),
    )
    .into_response())
}

pub async fn reply(
    State(state): State<AppState>,
    CurrentUser { user, .. }: CurrentUser,
    csrf: CsrfToken,
    Path(number): Path<TicketNumber>,
    CsrfForm(form): CsrfForm<ReplyForm>,
) -> Result<Response, PageError> {
    let result = tickets::reply(
        state.chat(),
        &user,
        number,
        &form.body,
        Some(&form.attachment_id),
    )
    .await;
    match result {
        Ok(_) => Ok(Redirect::to(&format!("/tickets/{number}")).into_response()),
        Err(e) => {
            let errors = FormErrors::from_domain(e)?;
            let view = tickets::view(state.store(), &user, number).await?;
            let rating = state.store().rating(view.ticket.conversation_id).await?;
            let body = ticket_page(&user, &csrf.0, &view, &form.body, &errors, rating.as_ref());
            Ok((StatusCode::UNPROCESSABLE_ENTITY, body).into_response())
        }
    }
}

#[derive(Deserialize)]
pub struct RateForm {
    /// Absent when no star was chosen (the radios are `required`, but not
    /// every client checks): the page says to choose, not "bad form".
    #[serde(default)]
    score: Option<String>,
    #[serde(default)]
    comment: String,
}

pub async fn rate(
    State(state): State<AppState>,
    CurrentUser { user, .. }: CurrentUser,
    csrf: CsrfToken,
    Path(number): Path<TicketNumber>,
    CsrfForm(form): CsrfForm<RateForm>,
) -> Result<Response, PageError> {
    let score = form
        .score
        .as_deref()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    match tickets::rate(state.store(), &user, number, score, &form.comment).await {
        Ok(_) => Ok(Redirect::to(&format!("/tickets/{number}#rate")).into_response()),
        Err(e) => {
            let errors = FormErrors::from_domain(e)?;
            let view = tickets::view(state.store(), &user, number).await?;
            let rating = state.store().rating(view.ticket.conversation_id).await?;
            let body = ticket_page(&user, &csrf.0, &view, "", &errors, rating.as_ref());
            Ok((StatusCode::UNPROCESSABLE_ENTITY, body).into_response())
        }
    }
}
