//! Contact profiles for staff: the searchable list of customers, and a page
//! per person with their details, attributes (edited here by the API's
//! rules), notes, every conversation and ticket, and merging a duplicate
//! contact into this one. The rules are `domain::contacts`' and
//! `domain::contact_merge`'s.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::layout::{
    FieldAttrs, FormErrors, csrf_field, field, form_errors, page, text_area, time,
};
use super::ticket_parts::{priority_badge, status_badge};
use crate::domain::contacts::{self, ContactChange, Profile};
use crate::domain::{DomainError, contact_merge, invalid};
use crate::model::{User, VisitorId};
use crate::store::{Contact, ContactFilter};
use crate::web::AppState;
use crate::web::csrf::{CsrfForm, CsrfToken};
use crate::web::error::PageError;
use crate::web::session::Staff;

const PAGE_SIZE: i64 = 50;

#[derive(Deserialize, Default)]
pub struct ListQuery {
    #[serde(default)]
    q: String,
    /// The last contact id of the previous page (the list is newest first).
    #[serde(default)]
    before: Option<i64>,
}

/// The email with the console's "unverified" mark when it is only typed.
fn email_line(email: &str, verified: bool) -> Markup {
    html! {
        (email)
        @if !verified && !email.is_empty() {
            " " span.badge.unverified title="Typed by the visitor, not proven" { "unverified" }
        }
    }
}

fn display_name(contact: &Contact) -> String {
    if contact.name.trim().is_empty() {
        format!("Visitor {}", contact.id.0)
    } else {
        contact.name.clone()
    }
}

pub async fn list(
    State(state): State<AppState>,
    Staff(current): Staff,
    csrf: CsrfToken,
    Query(query): Query<ListQuery>,
) -> Result<Response, PageError> {
    let user = &current.user;
    let filter = ContactFilter {
        query: Some(query.q.clone()).filter(|q| !q.trim().is_empty()),
        site: None,
        before: query.before.map(VisitorId),
        limit: PAGE_SIZE + 1,
    };
    let mut found = contacts::list(state.store(), user, filter).await?;
    let more = found.len() as i64 > PAGE_SIZE;
    found.truncate(PAGE_SIZE as usize);
    let next = found.last().filter(|_| more).map(|c| c.id.0).map(|before| {
        serde_urlencoded::to_string([("q", query.q.clone()), ("before", before.to_string())])
            .unwrap_or_default()
    });
    Ok(page(
        "Contacts",
        Some(user),
        &csrf.0,
        html! {
            h1 { "Contacts" }
            form.filters method="get" action="/console/contacts" role="search" {
                div.field {
                    label for="q" { "Search" }
                    input #q name="q" type="search" value=(query.q) placeholder="Name or email";
                }
                button type="submit" { "Search" }
            }
            @if found.is_empty() {
                section.card.empty { p { "No contacts match." } }
            } @else {
                table.contacts {
                    caption.visually-hidden { "Contacts, newest first" }
                    thead { tr {
                        th scope="col" { "Name" } th scope="col" { "Email" } th scope="col" { "Site" }
                        th scope="col" { "Account" } th scope="col" { "First seen" }
                    } }
                    tbody {
                        @for c in &found {
                            tr {
                                td { a href={ "/console/contacts/" (c.id.0) } { (display_name(c)) } }
                                td { (email_line(&c.email, c.email_verified)) }
                                td.site { (c.site_name) }
                                td { @if c.account.is_some() { "yes" } @else { "no" } }
                                td { (time(c.created_at)) }
                            }
                        }
                    }
                }
                @if let Some(next) = next {
                    nav.pager aria-label="Pages" {
                        a href={ "/console/contacts?" (next) } { "Older →" }
                    }
                }
            }
        },
    )
    .into_response())
}

/// A contact's id from the path; anything else is simply not found.
fn contact_id(raw: &str) -> Result<VisitorId, PageError> {
    raw.parse::<i64>()
        .map(VisitorId)
        .map_err(|_| PageError(DomainError::NotFound))
}

fn attribute_text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

fn profile_page(user: &User, csrf: &str, profile: &Profile, errors: &FormErrors) -> Markup {
    let c = &profile.contact;
    let id = c.id.0;
    let attributes: Map<String, Value> = serde_json::from_str(&c.attributes).unwrap_or_default();
    let name = display_name(c);
    let key_attrs = FieldAttrs {
        required: true,
        autocomplete: Some("off"),
        hint: Some("Lower-case letters, digits and _, starting with a letter"),
    };
    let from_attrs = FieldAttrs {
        required: true,
        autocomplete: Some("off"),
        hint: None,
    };
    page(
        &name,
        Some(user),
        csrf,
        html! {
            p.crumbs { a href="/console/contacts" { "Contacts" } " › " (name) }
            h1 { (name) }
            (form_errors(errors, &["note", "key", "value", "from"]))
            div.ticket-layout {
                div.ticket-main {
                    section.card {
                        h2 { "Conversations" }
                        @if profile.conversations.is_empty() {
                            p.hint { "No conversations yet." }
                        } @else {
                            ul.history {
                                @for conv in &profile.conversations {
                                    li {
                                        @if let Some(number) = conv.ticket_number {
                                            a href={ "/console/tickets/" (number) } { "Conversation " (conv.id.0) " · ticket #" (number) }
                                        } @else {
                                            "Conversation " (conv.id.0) " (with the bot only)"
                                        }
                                        " · " (conv.status.as_str()) " · " (conv.site_name) " · " (time(conv.created_at))
                                    }
                                }
                            }
                        }
                    }
                    section.card {
                        h2 { "Tickets" }
                        @if profile.tickets.is_empty() {
                            p.hint { "No tickets yet." }
                        } @else {
                            ul.history {
                                @for t in &profile.tickets {
                                    li {
                                        a href={ "/console/tickets/" (t.number) } { "#" (t.number) " " (t.subject) }
                                        " " (status_badge(t)) " " (priority_badge(t)) " · " (time(t.created_at))
                                    }
                                }
                            }
                        }
                    }
                    section.card.note-form {
                        h2 { "Notes on this person" }
                        p.hint { "Only agents see these notes; the customer never does." }
                        @for note in &profile.notes {
                            article.contact-note {
                                p.meta { strong { (note.author) } " · " (time(note.created_at)) }
                                p.body { (note.body) }
                            }
                        }
                        form method="post" action={ "/console/contacts/" (id) "/notes" } {
                            (csrf_field(csrf))
                            (text_area("Note", "note", "", errors, 3))
                            button.secondary type="submit" { "Add note" }
                        }
                    }
                }
                aside.ticket-side {
                    section.card.contact-details {
                        h2 { "Details" }
                        dl {
                            dt { "Email" } dd { (email_line(&c.email, c.email_verified)) }
                            dt { "Site" } dd.site { (c.site_name) }
                            dt { "Account" } dd { @if c.account.is_some() { "Has a Careline account" } @else { "No account" } }
                            dt { "Host site's user id" } dd { @match &c.external_id { Some(e) => code { (e) }, None => em { "not signed" } } }
                            dt { "First seen" } dd { (time(c.created_at)) }
                        }
                    }
                    section.card.attributes {
                        h2 { "Attributes" }
                        @for (key, value) in &attributes {
                            form.attribute method="post" action={ "/console/contacts/" (id) "/attributes" } {
                                (csrf_field(csrf))
                                input type="hidden" name="key" value=(key);
                                label for={ "attr-" (key) } { (key) }
                                input id={ "attr-" (key) } name="value" type="text" value=(attribute_text(value));
                                button.secondary type="submit" name="action" value="set" { "Save" }
                                button.link type="submit" name="action" value="remove" { "Remove" }
                            }
                        }
                        form method="post" action={ "/console/contacts/" (id) "/attributes" } {
                            (csrf_field(csrf))
                            (field("Name", "key", "text", "", errors, key_attrs))
                            (field("Value", "value", "text", "", errors, FieldAttrs::default()))
                            button type="submit" name="action" value="set" { "Add attribute" }
                        }
                    }
                    section.card.merge {
                        h2 { "Merge another contact into this one" }
                        p.hint { "Their conversations, tickets, notes and attributes come here; this contact's details win where both have one." }
                        form method="post" action={ "/console/contacts/" (id) "/merge" } {
                            (csrf_field(csrf))
                            (field("Their id or email", "from", "text", "", errors, from_attrs))
                            button.secondary type="submit" { "Review the merge" }
                        }
                    }
                }
            }
        },
    )
}

async fn render(
    state: &AppState,
    user: &User,
    csrf: &str,
    id: VisitorId,
    errors: &FormErrors,
) -> Result<Markup, PageError> {
    let profile = contacts::profile(state.store(), user, id).await?;
    Ok(profile_page(user, csrf, &profile, errors))
}

pub async fn show(
    State(state): State<AppState>,
    Staff(current): Staff,
    csrf: CsrfToken,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let id = contact_id(&id)?;
    match render(&state, &current.user, &csrf.0, id, &FormErrors::default()).await {
        Ok(body) => Ok(body.into_response()),
        // A merged contact's old links lead to where its history went.
        Err(PageError(DomainError::NotFound)) => {
            match contacts::successor(state.store(), &current.user, id).await? {
                Some(into) => {
                    Ok(Redirect::to(&format!("/console/contacts/{}", into.0)).into_response())
                }
                None => Err(PageError(DomainError::NotFound)),
            }
        }
        Err(e) => Err(e),
    }
}

/// Back to the profile after a successful post, or the page again with
/// the error.
async fn after(
    state: &AppState,
    user: &User,
    csrf: &str,
    id: VisitorId,
    result: Result<(), DomainError>,
) -> Result<Response, PageError> {
    match result {
        Ok(()) => Ok(Redirect::to(&format!("/console/contacts/{}", id.0)).into_response()),
        Err(e) => {
            let errors = FormErrors::from_domain(e)?;
            let body = render(state, user, csrf, id, &errors).await?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, body).into_response())
        }
    }
}

#[derive(Deserialize)]
pub struct NoteForm {
    #[serde(default)]
    note: String,
}

pub async fn add_note(
    State(state): State<AppState>,
    Staff(current): Staff,
    csrf: CsrfToken,
    Path(id): Path<String>,
    CsrfForm(form): CsrfForm<NoteForm>,
) -> Result<Response, PageError> {
    let id = contact_id(&id)?;
    let result = contacts::add_note(state.store(), &current.user, id, &form.note)
        .await
        .map(drop);
    after(&state, &current.user, &csrf.0, id, result).await
}

#[derive(Deserialize)]
pub struct AttributeForm {
    #[serde(default)]
    key: String,
    #[serde(default)]
    value: String,
    /// `set` (default) or `remove`.
    #[serde(default)]
    action: String,
}

/// A value typed on the page, as the same kind as the one it replaces: a
/// number stays a number and true/false stays true/false when the text
/// reads as one (what an integration set keeps its type); anything else,
/// and every new attribute, is text.
fn typed_like(current: Option<&Value>, text: String) -> Value {
    match current {
        Some(Value::Number(_)) => match serde_json::from_str::<serde_json::Number>(text.trim()) {
            Ok(number) => Value::Number(number),
            Err(_) => Value::String(text),
        },
        Some(Value::Bool(_)) => match text.trim() {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => Value::String(text),
        },
        _ => Value::String(text),
    }
}

pub async fn set_attribute(
    State(state): State<AppState>,
    Staff(current): Staff,
    csrf: CsrfToken,
    Path(id): Path<String>,
    CsrfForm(form): CsrfForm<AttributeForm>,
) -> Result<Response, PageError> {
    let id = contact_id(&id)?;
    let key = form.key.trim().to_string();
    // The API's rules by name: the domain names the field `attributes`;
    // on this form it is the key's.
    let result = if key.is_empty() {
        Err(invalid("key", "Enter the attribute's name."))
    } else {
        let value = match form.action.as_str() {
            "remove" => Value::Null,
            _ => {
                let contact = contacts::find(state.store(), &current.user, id).await?;
                let attributes: Map<String, Value> =
                    serde_json::from_str(&contact.attributes).unwrap_or_default();
                typed_like(attributes.get(&key), form.value)
            }
        };
        let change = ContactChange {
            attributes: Some([(key, value)].into_iter().collect()),
            ..ContactChange::default()
        };
        contacts::update(state.store(), &current.user, id, change)
            .await
            .map(drop)
            .map_err(|e| match e {
                DomainError::Invalid {
                    field: "attributes",
                    message,
                } => invalid("key", message),
                other => other,
            })
    };
    after(&state, &current.user, &csrf.0, id, result).await
}

#[derive(Deserialize)]
pub struct MergeForm {
    /// The other contact: an id or an email.
    #[serde(default)]
    from: String,
    /// Set by the confirmation page's button.
    #[serde(default)]
    confirm: String,
}

fn confirm_page(
    user: &User,
    csrf: &str,
    into: &Contact,
    from: &Contact,
    history: (usize, usize),
) -> Markup {
    let (conversations, tickets) = history;
    page(
        "Merge contacts",
        Some(user),
        csrf,
        html! {
            p.crumbs { a href="/console/contacts" { "Contacts" } " › " a href={ "/console/contacts/" (into.id.0) } { (display_name(into)) } " › Merge" }
            h1 { "Merge contacts" }
            section.card {
                p {
                    "Merge " strong { (display_name(from)) } " (#" (from.id.0) ", " (from.email) ")"
                    " into " strong { (display_name(into)) } " (#" (into.id.0) ", " (into.email) ")?"
                }
                p { (conversations) " conversations and " (tickets) " tickets move, with the notes and attributes; "
                    "each moved ticket's timeline says so. #" (from.id.0) " stops being a contact, and a browser still chatting as it starts again as a new visitor. This cannot be undone." }
                form method="post" action={ "/console/contacts/" (into.id.0) "/merge" } {
                    (csrf_field(csrf))
                    input type="hidden" name="from" value=(from.id.0);
                    input type="hidden" name="confirm" value="yes";
                    button.danger type="submit" { "Merge #" (from.id.0) " into #" (into.id.0) }
                    " " a href={ "/console/contacts/" (into.id.0) } { "Cancel" }
                }
            }
        },
    )
}

pub async fn merge(
    State(state): State<AppState>,
    Staff(current): Staff,
    csrf: CsrfToken,
    Path(id): Path<String>,
    CsrfForm(form): CsrfForm<MergeForm>,
) -> Result<Response, PageError> {
    let id = contact_id(&id)?;
    let user = &current.user;
    let store = state.store();
    let into = contacts::find(store, user, id).await?;
    let from = match contact_merge::pick(store, user, &into, &form.from).await {
        Ok(from) => from,
        Err(e) => return after(&state, user, &csrf.0, id, Err(e)).await,
    };
    if form.confirm != "yes" {
        // Look before merging: who goes into whom and how much moves.
        let (into, from) = match contact_merge::preview(store, user, id, from).await {
            Ok(pair) => pair,
            Err(e) => return after(&state, user, &csrf.0, id, Err(e)).await,
        };
        let conversations = store
            .visitor_conversations_before(from.id, None, contacts::PROFILE_HISTORY)
            .await?
            .len();
        let tickets = store
            .contact_tickets(from.id, contacts::PROFILE_HISTORY)
            .await?
            .len();
        return Ok(
            confirm_page(user, &csrf.0, &into, &from, (conversations, tickets)).into_response(),
        );
    }
    let result = contact_merge::merge(state.chat(), user, id, from)
        .await
        .map(drop);
    after(&state, user, &csrf.0, id, result).await
}
