//! Admin → Webhooks: the endpoints Careline posts signed events to. Admins
//! add one (its secret shown once), change or remove it, send it a test
//! event, turn it back on after Careline turned it off, and read its
//! delivery log. The rules are in `domain::webhooks`.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};

use super::layout::{FormErrors, badge, csrf_field, form_errors, page, time};
use super::settings::{Done, Empty, admin_nav};
use crate::domain::DomainError;
use crate::domain::webhooks::{self, EVENT_TYPES, Settings};
use crate::model::User;
use crate::store::{AttemptLog, WebhookEndpoint};
use crate::web::AppState;
use crate::web::csrf::{CsrfForm, CsrfToken};
use crate::web::error::PageError;
use crate::web::session::Admin;

/// Attempts shown on an endpoint's page.
const LOG_SHOWN: i64 = 50;

/// The form as posted: `url`, `include_private`, and one checkbox per event
/// type (`event:<type>`), since a url-encoded form repeats no key here.
fn settings_of(form: &HashMap<String, String>) -> Settings {
    Settings {
        url: form.get("url").cloned().unwrap_or_default(),
        events: EVENT_TYPES
            .iter()
            .filter(|(name, _)| form.contains_key(&format!("event:{name}")))
            .map(|(name, _)| name.to_string())
            .collect(),
        include_private: form.contains_key("include_private"),
    }
}

fn notice(done: &str) -> Option<&'static str> {
    match done {
        "saved" => Some("Saved."),
        "deleted" => Some("Deleted."),
        "test_sent" => Some("A test event (ping) is on its way; its attempt appears below."),
        "enabled" => Some("Turned back on: waiting deliveries go out now, oldest first."),
        _ => None,
    }
}

fn endpoint_form(
    csrf: &str,
    action: &str,
    settings: &Settings,
    errors: &FormErrors,
    submit: &str,
) -> Markup {
    let url_error = errors.get("url");
    let events_error = errors.get("events");
    html! {
        form method="post" action=(action) {
            (csrf_field(csrf))
            div.field.invalid[url_error.is_some()] {
                label for="url" { "URL" }
                p.hint id="url-hint" { "Careline posts each event here as JSON, signed (README: \"Webhooks\")." }
                input id="url" name="url" type="url" value=(settings.url) required
                    aria-describedby="url-hint" aria-invalid=[url_error.map(|_| "true")];
                @if let Some(message) = url_error { p.error role="alert" { (message) } }
            }
            fieldset.invalid[events_error.is_some()] {
                legend { "Events" }
                @for (name, meaning) in EVENT_TYPES {
                    label {
                        input type="checkbox" name=(format!("event:{name}")) value="on"
                            checked[settings.events.iter().any(|e| e == name)];
                        " " code { (name) } ": " (meaning)
                    }
                }
                @if let Some(message) = events_error { p.error role="alert" { (message) } }
            }
            label {
                input type="checkbox" name="include_private" value="on" checked[settings.include_private];
                " Include private notes in message.created (staff-only text leaves Careline)"
            }
            button type="submit" { (submit) }
        }
    }
}

fn status_of(endpoint: &WebhookEndpoint) -> Markup {
    if endpoint.enabled {
        badge("resolved", "On")
    } else {
        badge("priority-urgent", "Turned off")
    }
}

fn list_page(
    admin: &User,
    csrf: &str,
    endpoints: &[WebhookEndpoint],
    form: (&Settings, &FormErrors),
    shown: (Option<&str>, Option<(i64, &str)>),
) -> Markup {
    let (settings, errors) = form;
    let (done, new_secret) = shown;
    page(
        "Webhooks",
        Some(admin),
        csrf,
        html! {
            h1 { "Webhooks" }
            (admin_nav("/admin/webhooks"))
            @if let Some(text) = done.and_then(notice) { p.notice role="status" { (text) } }
            @if let Some((id, secret)) = new_secret {
                div.notice role="status" {
                    p { strong { "The endpoint's signing secret, shown this once:" } }
                    pre { code { (secret) } }
                    p { "Keep it in the receiver's configuration: it checks each delivery's "
                        code { "Careline-Signature" } " with it. "
                        a href=(format!("/admin/webhooks/{id}")) { "Open the endpoint" } }
                }
            }
            (form_errors(errors, &["url", "events"]))
            p.hint {
                "Careline posts a signed JSON event to each endpoint when something happens: "
                "at least once, in order per conversation, retried with backoff. An endpoint that "
                "keeps failing is turned off and the admins are emailed."
            }
            @if endpoints.is_empty() {
                section.card.empty { p { "No endpoints yet." } }
            } @else {
                table {
                    caption.visually-hidden { "Webhook endpoints" }
                    thead { tr { th scope="col" { "URL" } th scope="col" { "Events" } th scope="col" { "State" } th scope="col" { "Failures in a row" } } }
                    tbody {
                        @for e in endpoints {
                            tr {
                                td { a href=(format!("/admin/webhooks/{}", e.id)) { (e.url) } }
                                td { (e.events.join(", ")) }
                                td { (status_of(e)) }
                                td { (e.failures_in_row) }
                            }
                        }
                    }
                }
            }
            section.card.narrow {
                h2 { "Add an endpoint" }
                (endpoint_form(csrf, "/admin/webhooks", settings, errors, "Add endpoint"))
            }
        },
    )
}

pub async fn show(
    State(state): State<AppState>,
    Admin(current): Admin,
    csrf: CsrfToken,
    Query(done): Query<Done>,
) -> Result<Response, PageError> {
    let endpoints = state.store().webhook_endpoints().await?;
    let empty = Settings {
        url: String::new(),
        events: Vec::new(),
        include_private: false,
    };
    Ok(list_page(
        &current.user,
        &csrf.0,
        &endpoints,
        (&empty, &FormErrors::default()),
        (Some(done.done.as_str()), None),
    )
    .into_response())
}

/// Adds an endpoint and shows its secret once: answered as a page, not a
/// redirect, so that the secret is never in a URL or a later page.
pub async fn add(
    State(state): State<AppState>,
    Admin(current): Admin,
    csrf: CsrfToken,
    CsrfForm(form): CsrfForm<HashMap<String, String>>,
) -> Result<Response, PageError> {
    let settings = settings_of(&form);
    let created = webhooks::create(
        state.store(),
        state.secret(),
        &state.config().egress,
        &settings,
    )
    .await;
    let endpoints = |state: AppState| async move { state.store().webhook_endpoints().await };
    match created {
        Ok(registered) => {
            let list = endpoints(state.clone()).await?;
            let empty = Settings {
                url: String::new(),
                events: Vec::new(),
                include_private: false,
            };
            let mut response = list_page(
                &current.user,
                &csrf.0,
                &list,
                (&empty, &FormErrors::default()),
                (None, Some((registered.id, &registered.secret))),
            )
            .into_response();
            response.headers_mut().insert(
                axum::http::header::CACHE_CONTROL,
                axum::http::HeaderValue::from_static("no-store"),
            );
            Ok(response)
        }
        Err(e) => {
            let errors = FormErrors::from_domain(e)?;
            let list = endpoints(state.clone()).await?;
            let body = list_page(
                &current.user,
                &csrf.0,
                &list,
                (&settings, &errors),
                (None, None),
            );
            Ok((StatusCode::UNPROCESSABLE_ENTITY, body).into_response())
        }
    }
}

async fn endpoint_of(state: &AppState, id: i64) -> Result<WebhookEndpoint, PageError> {
    state
        .store()
        .webhook_endpoint(id)
        .await?
        .ok_or_else(|| DomainError::NotFound.into())
}

fn endpoint_page(
    admin: &User,
    csrf: &str,
    endpoint: &WebhookEndpoint,
    form: (&Settings, &FormErrors),
    done: &str,
    log: &[AttemptLog],
) -> Markup {
    let (settings, errors) = form;
    let base = format!("/admin/webhooks/{}", endpoint.id);
    page(
        "Webhook endpoint",
        Some(admin),
        csrf,
        html! {
            h1 { "Webhook endpoint" }
            (admin_nav("/admin/webhooks"))
            @if let Some(text) = notice(done) { p.notice role="status" { (text) } }
            (form_errors(errors, &["url", "events"]))
            section.card {
                p { (status_of(endpoint)) " " code { (endpoint.url) } }
                @if !endpoint.enabled {
                    p { (endpoint.disabled_reason) }
                    form method="post" action=(format!("{base}/enable")) {
                        (csrf_field(csrf))
                        button type="submit" { "Turn back on" }
                    }
                }
                form method="post" action=(format!("{base}/test")) {
                    (csrf_field(csrf))
                    button type="submit" { "Send test event" }
                }
            }
            section.card {
                h2 { "Delivery log" }
                @if log.is_empty() {
                    p { "No attempts yet." }
                } @else {
                    table {
                        caption.visually-hidden { "Attempts, newest first" }
                        thead { tr {
                            th scope="col" { "Attempted" } th scope="col" { "Event" } th scope="col" { "Type" }
                            th scope="col" { "Answer" } th scope="col" { "Time" } th scope="col" { "Response or problem" }
                            th scope="col" { "Delivery" }
                        } }
                        tbody {
                            @for a in log {
                                tr {
                                    td { (time(a.at)) }
                                    td { (a.event_id) }
                                    td { code { (a.kind) } }
                                    td { @match a.status { Some(s) => (s), None => "none" } }
                                    td { (a.latency_ms) " ms" }
                                    td { @if a.error.is_empty() { (a.excerpt) } @else { (a.error) } }
                                    td { (a.delivery_status) }
                                }
                            }
                        }
                    }
                }
            }
            section.card.narrow {
                h2 { "Settings" }
                (endpoint_form(csrf, &base, settings, errors, "Save"))
                form method="post" action=(format!("{base}/delete")) {
                    (csrf_field(csrf))
                    button.danger type="submit" { "Delete this endpoint and its log" }
                }
            }
        },
    )
}

fn settings_from(endpoint: &WebhookEndpoint) -> Settings {
    Settings {
        url: endpoint.url.clone(),
        events: endpoint.events.clone(),
        include_private: endpoint.include_private,
    }
}

pub async fn show_endpoint(
    State(state): State<AppState>,
    Admin(current): Admin,
    csrf: CsrfToken,
    Path(id): Path<i64>,
    Query(done): Query<Done>,
) -> Result<Response, PageError> {
    let endpoint = endpoint_of(&state, id).await?;
    let log = state.store().webhook_log(id, LOG_SHOWN).await?;
    Ok(endpoint_page(
        &current.user,
        &csrf.0,
        &endpoint,
        (&settings_from(&endpoint), &FormErrors::default()),
        &done.done,
        &log,
    )
    .into_response())
}

pub async fn save(
    State(state): State<AppState>,
    Admin(current): Admin,
    csrf: CsrfToken,
    Path(id): Path<i64>,
    CsrfForm(form): CsrfForm<HashMap<String, String>>,
) -> Result<Response, PageError> {
    let endpoint = endpoint_of(&state, id).await?;
    let settings = settings_of(&form);
    match webhooks::update(state.store(), &state.config().egress, id, &settings).await {
        Ok(()) => Ok(Redirect::to(&format!("/admin/webhooks/{id}?done=saved")).into_response()),
        Err(e) => {
            let errors = FormErrors::from_domain(e)?;
            let log = state.store().webhook_log(id, LOG_SHOWN).await?;
            let body = endpoint_page(
                &current.user,
                &csrf.0,
                &endpoint,
                (&settings, &errors),
                "",
                &log,
            );
            Ok((StatusCode::UNPROCESSABLE_ENTITY, body).into_response())
        }
    }
}

pub async fn send_test(
    State(state): State<AppState>,
    Admin(_): Admin,
    Path(id): Path<i64>,
    CsrfForm(_): CsrfForm<Empty>,
) -> Result<Response, PageError> {
    webhooks::send_test(state.store(), id).await?;
    Ok(Redirect::to(&format!("/admin/webhooks/{id}?done=test_sent")).into_response())
}

pub async fn enable(
    State(state): State<AppState>,
    Admin(_): Admin,
    Path(id): Path<i64>,
    CsrfForm(_): CsrfForm<Empty>,
) -> Result<Response, PageError> {
    webhooks::enable(state.store(), id).await?;
    Ok(Redirect::to(&format!("/admin/webhooks/{id}?done=enabled")).into_response())
}

pub async fn delete(
    State(state): State<AppState>,
    Admin(_): Admin,
    Path(id): Path<i64>,
    CsrfForm(_): CsrfForm<Empty>,
) -> Result<Response, PageError> {
    endpoint_of(&state, id).await?;
    webhooks::delete(state.store(), id).await?;
    Ok(Redirect::to("/admin/webhooks?done=deleted").into_response())
}
