//! Admin settings: the FAQ bot's entries (each for every site or chosen
//! ones), canned replies, and the email outbox. Sites have their own page
//! (`sites.rs`).

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{FormErrors, csrf_field, form_errors, page, time};
use crate::domain::{DomainError, invalid, sites};
use crate::model::User;
use crate::store::{FaqEntry, FaqSites, Site};
use crate::web::AppState;
use crate::web::csrf::{CsrfForm, CsrfToken};
use crate::web::error::PageError;
use crate::web::session::Admin;

/// Links between the admin pages.
pub fn admin_nav(current: &str) -> Markup {
    let links = [
        ("/admin/people", "People"),
        ("/admin/sites", "Sites & widget"),
        ("/admin/bot", "Bot"),
        ("/admin/faq", "FAQ bot"),
        ("/admin/canned", "Canned replies"),
        ("/admin/labels", "Labels"),
        ("/admin/outbox", "Email outbox"),
        ("/admin/inbound", "Inbound email"),
        ("/admin/webhooks", "Webhooks"),
        ("/admin/reports", "Reports"),
    ];
    html! {
        nav.subnav aria-label="Admin" {
            @for (href, label) in links {
                a href=(href) aria-current=[(href == current).then_some("page")] { (label) }
            }
        }
    }
}

#[derive(Deserialize, Default)]
pub struct Done {
    #[serde(default)]
    pub(super) done: String,
}

pub(super) fn notice(done: &str) -> Option<&'static str> {
    match done {
        "saved" => Some("Saved."),
        "added" => Some("Added."),
        "deleted" => Some("Deleted."),
        _ => None,
    }
}

fn faq_page(
    admin: &User,
    csrf: &str,
    entries: &[FaqEntry],
    sites: &[Site],
    done: Option<&str>,
    errors: &FormErrors,
) -> Markup {
    page(
        "FAQ bot",
        Some(admin),
        csrf,
        html! {
            h1 { "FAQ bot" }
            (admin_nav("/admin/faq"))
            p.hint {
                "The assistant compares each customer message with every question variant below that answers on the customer's site, and answers with the best match when it is close enough. "
                "Write several ways people ask the same thing, one per line."
            }
            @if let Some(done) = done { div.notice role="status" { p { (done) } } }
            (form_errors(errors, &[]))
            section.card {
                h2 { "Add an entry" }
                (faq_form(csrf, "/admin/faq", "new", None, sites, "Add entry"))
            }
            @for entry in entries {
                section.card.faq-entry id={ "faq-" (entry.id) } {
                    (faq_form(csrf, &format!("/admin/faq/{}", entry.id), &entry.id.to_string(), Some(entry), sites, "Save"))
                    form.inline method="post" action={ "/admin/faq/" (entry.id) "/delete" } {
                        (csrf_field(csrf))
                        button.secondary type="submit" { "Delete" }
                    }
                }
            }
        },
    )
}

/// Where an entry answers, in words: "All sites", or the chosen ones.
fn answers_on(entry: &FaqEntry, sites: &[Site]) -> String {
    match &entry.sites {
        FaqSites::All => "All sites".into(),
        FaqSites::Only(ids) => {
            let names: Vec<&str> = sites
                .iter()
                .filter(|s| ids.contains(&s.id))
                .map(|s| s.name.as_str())
                .collect();
            if names.is_empty() {
                "No site: the sites it answered on were removed".into()
            } else {
                names.join(", ")
            }
        }
    }
}

fn faq_form(
    csrf: &str,
    action: &str,
    key: &str,
    entry: Option<&FaqEntry>,
    sites: &[Site],
    label: &str,
) -> Markup {
    let (questions, answer) = entry.map_or(("", ""), |e| (e.questions.as_str(), e.answer.as_str()));
    let all = entry.is_none_or(|e| e.sites == FaqSites::All);
    html! {
        form method="post" action=(action) {
            (csrf_field(csrf))
            div.field {
                label for={ "questions-" (key) } { "Questions (one per line)" }
                textarea id={ "questions-" (key) } name="questions" rows="4" required { (questions) }
            }
            div.field {
                label for={ "answer-" (key) } { "Answer" }
                textarea id={ "answer-" (key) } name="answer" rows="3" required { (answer) }
            }
            fieldset.field {
                legend { "Answers on" }
                @if let Some(entry) = entry { p.hint.answers-on { "Now: " (answers_on(entry, sites)) } }
                label { input type="radio" name="answers" value="all" checked[all]; " All sites" }
                label { input type="radio" name="answers" value="some" checked[!all]; " Only these sites:" }
                @for site in sites.iter().filter(|s| !s.is_archived()) {
                    label.choice {
                        input type="checkbox" name="site" value=(site.id)
                            checked[entry.is_some_and(|e| !all && e.sites.includes(site.id))];
                        " " (site.name)
                    }
                }
            }
            button type="submit" { (label) }
        }
    }
}

pub async fn faq(
    State(state): State<AppState>,
    Admin(current): Admin,
    csrf: CsrfToken,
    Query(done): Query<Done>,
) -> Result<Response, PageError> {
    let entries = state.store().faq_entries().await?;
    let sites = state.store().sites().await?;
    Ok(faq_page(
        &current.user,
        &csrf.0,
        &entries,
        &sites,
        notice(&done.done),
        &FormErrors::default(),
    )
    .into_response())
}

/// The FAQ form as posted: `questions`, `answer`, `answers` (`all` or
/// `some`) and a `site` for each site chosen.
pub struct FaqForm(Vec<(String, String)>);

impl<'de> Deserialize<'de> for FaqForm {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Vec::deserialize(deserializer).map(FaqForm)
    }
}

impl FaqForm {
    fn value(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map_or("", |(_, v)| v.as_str())
    }
}

fn parse_faq(form: &FaqForm, sites: &[Site]) -> Result<(String, String, FaqSites), DomainError> {
    let questions: Vec<&str> = form
        .value("questions")
        .lines()
        .map(str::trim)
        .filter(|q| !q.is_empty())
        .collect();
    if questions.is_empty() {
        return Err(invalid("questions", "Write at least one question."));
    }
    let answer = form.value("answer").trim();
    if answer.is_empty() {
        return Err(invalid("answer", "Write the answer the assistant gives."));
    }
    if answer.chars().count() > crate::model::MAX_BODY {
        return Err(invalid(
            "answer",
            "The answer is too long for one chat message.",
        ));
    }
    let chosen: Vec<&str> = form
        .0
        .iter()
        .filter(|(n, _)| n == "site")
        .map(|(_, v)| v.as_str())
        .collect();
    let answers_on = sites::parse_faq_sites(form.value("answers") != "some", &chosen, sites)?;
    Ok((questions.join("\n"), answer.to_string(), answers_on))
}

async fn save_faq_entry(
    state: &AppState,
    admin: &User,
    csrf: &str,
    id: Option<i64>,
    form: FaqForm,
) -> Result<Response, PageError> {
    let sites = state.store().sites().await?;
    match parse_faq(&form, &sites) {
        Ok((questions, answer, answers_on)) => {
            state
                .store()
                .save_faq_entry(id, &questions, &answer, &answers_on)
                .await?;
            state.chat().bot().reload();
            let done = if id.is_some() { "saved" } else { "added" };
            Ok(Redirect::to(&format!("/admin/faq?done={done}")).into_response())
        }
        Err(e) => {
            let errors = FormErrors::from_domain(e)?;
            let entries = state.store().faq_entries().await?;
            Ok((
                StatusCode::UNPROCESSABLE_ENTITY,
                faq_page(admin, csrf, &entries, &sites, None, &errors),
            )
                .into_response())
        }
    }
}

pub async fn add_faq(
    State(state): State<AppState>,
    Admin(current): Admin,
    csrf: CsrfToken,
    CsrfForm(form): CsrfForm<FaqForm>,
) -> Result<Response, PageError> {
    save_faq_entry(&state, &current.user, &csrf.0, None, form).await
}

pub async fn save_faq(
    State(state): State<AppState>,
    Admin(current): Admin,
    csrf: CsrfToken,
    Path(id): Path<i64>,
    CsrfForm(form): CsrfForm<FaqForm>,
) -> Result<Response, PageError> {
    save_faq_entry(&state, &current.user, &csrf.0, Some(id), form).await
}

#[derive(Deserialize)]
pub struct Empty {}

pub async fn delete_faq(
    State(state): State<AppState>,
    Admin(_): Admin,
    Path(id): Path<i64>,
    CsrfForm(_): CsrfForm<Empty>,
) -> Result<Response, PageError> {
    state.store().delete_faq_entry(id).await?;
    state.chat().bot().reload();
    Ok(Redirect::to("/admin/faq?done=deleted").into_response())
}

pub async fn canned(
    State(state): State<AppState>,
    Admin(current): Admin,
    csrf: CsrfToken,
    Query(done): Query<Done>,
) -> Result<Response, PageError> {
    let replies = state.store().canned_replies().await?;
    let errors = FormErrors::default();
    Ok(canned_page(
        &current.user,
        &csrf.0,
        &replies,
        notice(&done.done),
        &errors,
    )
    .into_response())
}

fn canned_page(
    admin: &User,
    csrf: &str,
    replies: &[crate::store::CannedReply],
    done: Option<&str>,
    errors: &FormErrors,
) -> Markup {
    page(
        "Canned replies",
        Some(admin),
        csrf,
        html! {
            h1 { "Canned replies" }
            (admin_nav("/admin/canned"))
            p.hint { "Agents insert these into a chat reply from the console." }
            @if let Some(done) = done { div.notice role="status" { p { (done) } } }
            (form_errors(errors, &[]))
            section.card {
                h2 { "Add a reply" }
                form method="post" action="/admin/canned" {
                    (csrf_field(csrf))
                    div.field { label for="title" { "Title" } input #title name="title" type="text" required maxlength="100"; }
                    div.field { label for="body" { "Text" } textarea #body name="body" rows="3" required {} }
                    button type="submit" { "Add reply" }
                }
            }
            @for reply in replies {
                section.card {
                    h2 { (reply.title) }
                    p.pre { (reply.body) }
                    form.inline method="post" action={ "/admin/canned/" (reply.id) "/delete" } {
                        (csrf_field(csrf))
                        button.secondary type="submit" { "Delete" }
                    }
                }
            }
        },
    )
}

#[derive(Deserialize)]
pub struct CannedForm {
    title: String,
    body: String,
}

pub async fn add_canned(
    State(state): State<AppState>,
    Admin(current): Admin,
    csrf: CsrfToken,
    CsrfForm(form): CsrfForm<CannedForm>,
) -> Result<Response, PageError> {
    let title = form.title.trim();
    let body = form.body.trim();
    let problem = if title.is_empty() || title.chars().count() > 100 {
        Some(invalid(
            "title",
            "Give the reply a title of 1 to 100 characters.",
        ))
    } else if body.is_empty() || body.chars().count() > crate::model::MAX_BODY {
        Some(invalid(
            "body",
            "Write the reply's text (at most 8000 characters).",
        ))
    } else {
        None
    };
    if let Some(e) = problem {
        let errors = FormErrors::from_domain(e)?;
        let replies = state.store().canned_replies().await?;
        return Ok((
            StatusCode::UNPROCESSABLE_ENTITY,
            canned_page(&current.user, &csrf.0, &replies, None, &errors),
        )
            .into_response());
    }
    state.store().add_canned_reply(title, body).await?;
    Ok(Redirect::to("/admin/canned?done=added").into_response())
}

pub async fn delete_canned(
    State(state): State<AppState>,
    Admin(_): Admin,
    Path(id): Path<i64>,
    CsrfForm(_): CsrfForm<Empty>,
) -> Result<Response, PageError> {
    state.store().delete_canned_reply(id).await?;
    Ok(Redirect::to("/admin/canned?done=deleted").into_response())
}

pub async fn outbox(
    State(state): State<AppState>,
    Admin(current): Admin,
    csrf: CsrfToken,
) -> Result<Response, PageError> {
    let emails = state.store().outbox(100).await?;
    Ok(page(
        "Email outbox",
        Some(&current.user),
        &csrf.0,
        html! {
            h1 { "Email outbox" }
            (admin_nav("/admin/outbox"))
            p.hint {
                "Every email Careline sends is queued here first and delivered with retries. "
                @match state.config().mail.transport.name() {
                    "sendgrid" => { "Delivery: SendGrid." }
                    "smtp" => { "Delivery: SMTP." }
                    _ => { "No mail service is configured (set mail_transport, with sendgrid_api_key or the smtp_ settings): emails stay here for you to read." }
                }
            }
            @if emails.is_empty() {
                section.card.empty { p { "No emails yet." } }
            } @else {
                table {
                    caption.visually-hidden { "Emails, newest first" }
thead { tr { th scope="col" { "To" } th scope="col" { "Kind" } th scope="col" { "Status" } th scope="col" { "Attempts" } th scope="col" { "Queued" } th scope="col" { "Problem" } } }
                    tbody {
                        @for email in &emails {
                            tr {
                                td { (email.to_email) }
                                td { (email.template) }
                                td { (email.status) }
                                td { (email.attempts) }
                                td { (time(email.created_at)) }
                                td { (email.last_error) }
                            }
                        }
                    }
                }
            }
        },
    )
    .into_response())
}
