//! Admin → Labels: the coloured labels agents put on tickets. Admins add
//! them (a name and a colour from the palette), rename and recolour them,
//! and delete them after a confirmation that says how many tickets lose
//! the label. The rules are `domain::labels`'.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{FormErrors, csrf_field, form_errors, page};
use super::settings::{Done, admin_nav, notice};
use super::ticket_parts::label_chip;
use crate::domain::labels::{self, MAX_LABEL_NAME};
use crate::model::{Label, LabelColour, LabelId, User};
use crate::web::AppState;
use crate::web::csrf::{CsrfForm, CsrfToken};
use crate::web::error::PageError;
use crate::web::session::Admin;

/// A label's form as posted.
#[derive(Deserialize, Default)]
pub struct LabelForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    colour: String,
}

/// A refused form, shown again as typed: `None` the new label's.
struct Draft<'a> {
    target: Option<LabelId>,
    form: &'a LabelForm,
}

fn fields(key: &str, name: &str, colour: &str, errors: &FormErrors, mine: bool) -> Markup {
    let name_error = errors.get("name").filter(|_| mine);
    let colour_error = errors.get("colour").filter(|_| mine);
    html! {
        div.field.invalid[name_error.is_some()] {
            label for={ "name-" (key) } { "Name" }
            input id={ "name-" (key) } name="name" type="text" value=(name) required
                maxlength=(MAX_LABEL_NAME)
                aria-invalid=[name_error.map(|_| "true")]
                aria-describedby=[name_error.map(|_| format!("name-{key}-error"))];
            @if let Some(message) = name_error { p.error id={ "name-" (key) "-error" } { (message) } }
        }
        div.field.invalid[colour_error.is_some()] {
            label for={ "colour-" (key) } { "Colour" }
            select id={ "colour-" (key) } name="colour"
                aria-invalid=[colour_error.map(|_| "true")]
                aria-describedby=[colour_error.map(|_| format!("colour-{key}-error"))] {
                @for c in LabelColour::ALL {
                    option value=(c.as_str()) selected[c.as_str() == colour] { (c.as_str()) }
                }
            }
            @if let Some(message) = colour_error { p.error id={ "colour-" (key) "-error" } { (message) } }
        }
    }
}

/// `1 ticket`, `2 tickets`.
fn tickets(n: i64) -> String {
    format!("{n} {}", if n == 1 { "ticket" } else { "tickets" })
}

fn labels_page(
    admin: &User,
    csrf: &str,
    labels: &[Label],
    counts: &[(LabelId, i64)],
    done: Option<&str>,
    errors: &FormErrors,
    draft: Option<Draft<'_>>,
) -> Markup {
    let on = |id: LabelId| counts.iter().find(|(l, _)| *l == id).map_or(0, |(_, n)| *n);
    let draft_for = |target: Option<LabelId>| {
        draft
            .as_ref()
            .filter(|d| d.target == target)
            .map(|d| d.form)
    };
    let new = draft_for(None);
    page(
        "Labels",
        Some(admin),
        csrf,
        html! {
            h1 { "Labels" }
            (admin_nav("/admin/labels"))
            p.hint {
                "Agents put labels on tickets to group work (refunds, VIP customers, bugs) and filter the ticket list by them. "
                "Customers never see them."
            }
            @if let Some(done) = done { div.notice role="status" { p { (done) } } }
            (form_errors(errors, &["name", "colour"]))
            section.card {
                h2 { "Add a label" }
                form method="post" action="/admin/labels" {
                    (csrf_field(csrf))
                    (fields("new", new.map_or("", |f| f.name.as_str()), new.map_or("blue", |f| f.colour.as_str()), errors, new.is_some()))
                    button type="submit" { "Add label" }
                }
            }
            @if labels.is_empty() {
                section.card.empty { p { "No labels yet." } }
            }
            @for label in labels {
                @let mine = draft_for(Some(label.id));
                section.card.label-entry id={ "label-" (label.id) } {
                    h2 { (label_chip(label)) }
                    p.hint { "On " a href={ "/console?label=" (label.id) } { (tickets(on(label.id))) } "." }
                    form method="post" action={ "/admin/labels/" (label.id) } {
                        (csrf_field(csrf))
                        (fields(&label.id.to_string(),
                            mine.map_or(label.name.as_str(), |f| f.name.as_str()),
                            mine.map_or(label.colour.as_str(), |f| f.colour.as_str()),
                            errors, mine.is_some()))
                        button type="submit" { "Save" }
                    }
                    form.inline method="post" action={ "/admin/labels/" (label.id) "/delete" } {
                        (csrf_field(csrf))
                        button.secondary type="submit" { "Delete…" }
                    }
                }
            }
        },
    )
}

async fn show_page(
    state: &AppState,
    admin: &User,
    csrf: &str,
    done: Option<&str>,
    errors: &FormErrors,
    draft: Option<Draft<'_>>,
) -> Result<Markup, PageError> {
    let all = labels::list(state.store(), admin).await?;
    let counts = state.store().label_counts().await?;
    Ok(labels_page(admin, csrf, &all, &counts, done, errors, draft))
}

pub async fn show(
    State(state): State<AppState>,
    Admin(current): Admin,
    csrf: CsrfToken,
    Query(done): Query<Done>,
) -> Result<Response, PageError> {
    let body = show_page(
        &state,
        &current.user,
        &csrf.0,
        notice(&done.done),
        &FormErrors::default(),
        None,
    )
    .await?;
    Ok(body.into_response())
}

/// Saved: back to the list; refused: the page again with the form as typed.
async fn saved(
    state: &AppState,
    admin: &User,
    csrf: &str,
    result: Result<Label, crate::domain::DomainError>,
    draft: Draft<'_>,
) -> Result<Response, PageError> {
    match result {
        Ok(_) => {
            let done = if draft.target.is_some() {
                "saved"
            } else {
                "added"
            };
            Ok(Redirect::to(&format!("/admin/labels?done={done}")).into_response())
        }
        Err(e) => {
            let errors = FormErrors::from_domain(e)?;
            let body = show_page(state, admin, csrf, None, &errors, Some(draft)).await?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, body).into_response())
        }
    }
}

pub async fn add(
    State(state): State<AppState>,
    Admin(current): Admin,
    csrf: CsrfToken,
    CsrfForm(form): CsrfForm<LabelForm>,
) -> Result<Response, PageError> {
    let result = labels::create(state.store(), &current.user, &form.name, &form.colour).await;
    let draft = Draft {
        target: None,
        form: &form,
    };
    saved(&state, &current.user, &csrf.0, result, draft).await
}

pub async fn save(
    State(state): State<AppState>,
    Admin(current): Admin,
    csrf: CsrfToken,
    Path(id): Path<LabelId>,
    CsrfForm(form): CsrfForm<LabelForm>,
) -> Result<Response, PageError> {
    let result = labels::save(state.store(), &current.user, id, &form.name, &form.colour).await;
    let draft = Draft {
        target: Some(id),
        form: &form,
    };
    saved(&state, &current.user, &csrf.0, result, draft).await
}

#[derive(Deserialize)]
pub struct DeleteForm {
    /// `yes` from the confirmation page; absent from the label's own
    /// "Delete…" button, which asks first.
    #[serde(default)]
    confirm: String,
}

/// "Delete…" asks first (how many tickets lose it); the confirmation
/// page's button deletes.
pub async fn delete(
    State(state): State<AppState>,
    Admin(current): Admin,
    csrf: CsrfToken,
    Path(id): Path<LabelId>,
    CsrfForm(form): CsrfForm<DeleteForm>,
) -> Result<Response, PageError> {
    let admin = &current.user;
    if form.confirm == "yes" {
        labels::delete(state.store(), admin, id).await?;
        return Ok(Redirect::to("/admin/labels?done=deleted").into_response());
    }
    let label = state
        .store()
        .label(id)
        .await?
        .ok_or(PageError(crate::domain::DomainError::NotFound))?;
    let counts = state.store().label_counts().await?;
    let on = counts.iter().find(|(l, _)| *l == id).map_or(0, |(_, n)| *n);
    Ok(page(
        "Delete a label",
        Some(admin),
        &csrf.0,
        html! {
            h1 { "Delete the label " (label_chip(&label)) "?" }
            section.card {
                p { "It is on " strong { (tickets(on)) } ". Deleting it takes it off all of them; this cannot be undone." }
                form.inline method="post" action={ "/admin/labels/" (id) "/delete" } {
                    (csrf_field(&csrf.0))
                    input type="hidden" name="confirm" value="yes";
                    button type="submit" { "Delete the label" }
                }
                " "
                a href="/admin/labels" { "Keep it" }
            }
        },
    )
    .into_response())
}
