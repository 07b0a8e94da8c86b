//! The page shell and small pieces every page uses: navigation, form
//! fields with their error messages, status badges and times.

use maud::{DOCTYPE, Markup, html};

use crate::domain::DomainError;

use crate::model::{Role, User};

/// Field errors for a form, shown next to the field that is wrong.
#[derive(Default, Debug)]
pub struct FormErrors {
    errors: Vec<(&'static str, String)>,
}

impl FormErrors {
    pub fn get(&self, field: &str) -> Option<&str> {
        self.errors
            .iter()
            .find(|(f, _)| *f == field)
            .map(|(_, m)| m.as_str())
    }

    /// Errors not tied to a field shown in this form (shown at the top).
    pub fn general(&self, shown: &[&str]) -> Vec<&str> {
        self.errors
            .iter()
            .filter(|(f, _)| !shown.contains(f))
            .map(|(_, m)| m.as_str())
            .collect()
    }

    pub fn one(field: &'static str, message: impl Into<String>) -> FormErrors {
        FormErrors {
            errors: vec![(field, message.into())],
        }
    }
}

impl FormErrors {
    /// Turns a domain error into form errors, or gives it back when it is
    /// not about the input (not found, internal…).
    pub fn from_domain(error: DomainError) -> Result<FormErrors, DomainError> {
        match error {
            DomainError::Invalid { field, message } | DomainError::TooLarge { field, message } => {
                Ok(FormErrors::one(field, message))
            }
            DomainError::Conflict(message) => Ok(FormErrors::one("form", message)),
            DomainError::BadCredentials => Ok(FormErrors::one("form", error.to_string())),
            other => Err(other),
        }
    }
}

pub fn page(title: &str, user: Option<&User>, csrf: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Careline" }
                link rel="stylesheet" href="/assets/careline.css";
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    nav aria-label="Main" {
                        a.brand href="/" { "Careline" }
                        ul {
                            @match user {
                                Some(user) => {
                                    @if user.role.is_staff() {
                                        li { a href="/console/chat" { "Live chat" } }
                                        li { a href="/console" { "Tickets" } }
                                        li { a href="/console/contacts" { "Contacts" } }
                                    } @else {
                                        li { a href="/dashboard" { "My tickets" } }
                                        li { a href="/tickets/new" { "Raise a ticket" } }
                                    }
                                    @if user.role == Role::Admin {
                                        li { a href="/admin/people" { "Admin" } }
                                    }
                                    li { a href="/account" { (user.name) } }
                                    li {
                                        form.inline method="post" action="/logout" {
                                            (csrf_field(csrf))
                                            button.link type="submit" { "Log out" }
                                        }
                                    }
                                }
                                None => {
                                    li { a href="/login" { "Log in" } }
                                    li { a href="/register" { "Register" } }
                                }
                            }
                        }
                    }
                }
                main #main { (body) }
                footer.bottom { p { "Careline · Customer Care Registry" } }
            }
        }
    }
}

pub fn error_page(title: &str, message: &str) -> Markup {
    page(
        title,
        None,
        "",
        html! {
            section.card {
                h1 { (title) }
                p { (message) }
                p { a href="/" { "Go to the home page" } }
            }
        },
    )
}

/// The hidden CSRF token every form carries.
pub fn csrf_field(token: &str) -> Markup {
    html! { input type="hidden" name="csrf" value=(token); }
}

/// A labelled input with its error message (linked by aria-describedby).
pub fn field(
    label: &str,
    name: &str,
    kind: &str,
    value: &str,
    errors: &FormErrors,
    attrs: FieldAttrs,
) -> Markup {
    let error = errors.get(name);
    let error_id = format!("{name}-error");
    html! {
        div.field.invalid[error.is_some()] {
            label for=(name) { (label) }
            @if let Some(hint) = attrs.hint { p.hint id=(format!("{name}-hint")) { (hint) } }
            input id=(name) name=(name) type=(kind) value=(value)
                required[attrs.required] autocomplete=[attrs.autocomplete]
                aria-invalid=[error.map(|_| "true")]
                aria-describedby=[error.map(|_| error_id.as_str())];
            @if let Some(message) = error { p.error id=(error_id) { (message) } }
        }
    }
}

#[derive(Default, Clone, Copy)]
pub struct FieldAttrs {
    pub required: bool,
    pub autocomplete: Option<&'static str>,
    pub hint: Option<&'static str>,
}

pub fn required(autocomplete: &'static str) -> FieldAttrs {
    FieldAttrs {
        required: true,
        autocomplete: Some(autocomplete),
        hint: None,
    }
}

/// A textarea with its label and error message.
pub fn text_area(label: &str, name: &str, value: &str, errors: &FormErrors, rows: u8) -> Markup {
    let error = errors.get(name);
    let error_id = format!("{name}-error");
    html! {
        div.field.invalid[error.is_some()] {
            label for=(name) { (label) }
            textarea id=(name) name=(name) rows=(rows) required
                aria-invalid=[error.map(|_| "true")]
                aria-describedby=[error.map(|_| error_id.as_str())] { (value) }
            @if let Some(message) = error { p.error id=(error_id) { (message) } }
        }
    }
}

/// Errors that belong to the whole form, at its top.
pub fn form_errors(errors: &FormErrors, shown: &[&str]) -> Markup {
    let general = errors.general(shown);
    html! {
        @if !general.is_empty() {
            div.alert role="alert" {
                @for message in general { p { (message) } }
            }
        }
    }
}

pub fn badge(kind: &str, text: &str) -> Markup {
    html! { span class=(format!("badge badge-{kind}")) { (text) } }
}

/// A UTC time as people read it, with the machine form for assistive tech.
pub fn time(ms: i64) -> Markup {
    let at = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let human = at
        .format(time::macros::format_description!(
            "[year]-[month]-[day] [hour]:[minute] UTC"
        ))
        .unwrap_or_default();
    let machine = at
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    html! { time datetime=(machine) { (human) } }
}
