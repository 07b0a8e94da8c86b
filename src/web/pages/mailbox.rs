//! Admin → Inbound email → Support mailbox: the IMAP mailbox Careline reads
//! (host, port, TLS, user, password, folder, where taken mail goes), what
//! the last check found, and on save a check of the new settings. The
//! password is write-only: stored sealed, never shown back.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{FormErrors, csrf_field, form_errors, page, time};
use super::settings::admin_nav;
use crate::domain::mailbox::{self, MailboxConfig, MailboxStatus};
use crate::domain::{DomainError, invalid};
use crate::mail::imap::{ImapSecurity, ImapSettings};
use crate::model::User;
use crate::web::AppState;
use crate::web::csrf::{CsrfForm, CsrfToken};
use crate::web::error::PageError;
use crate::web::session::Admin;

#[derive(Deserialize, Default)]
pub struct Notice {
    #[serde(default)]
    saved: String,
    #[serde(default)]
    waiting: String,
    #[serde(default)]
    reason: String,
}

fn notice_text(n: &Notice) -> Option<String> {
    match n.saved.as_str() {
        "off" => Some("Saved. The mailbox is not read while it is switched off.".into()),
        "ok" => Some(format!(
            "Saved and connected: {} unread email(s) waiting. Careline takes them within a poll.",
            n.waiting
        )),
        "failed" => Some(format!("Saved, but the connection failed: {}", n.reason)),
        _ => None,
    }
}

fn render(
    admin: &User,
    csrf: &str,
    settings: &ImapSettings,
    status: Option<&MailboxStatus>,
    notice: Option<String>,
    errors: &FormErrors,
) -> Markup {
    let field_error = |name: &str| errors.get(name).map(str::to_string);
    page(
        "Support mailbox",
        Some(admin),
        csrf,
        html! {
            h1 { "Support mailbox" }
            (admin_nav("/admin/inbound"))
            @if let Some(notice) = notice { div.notice role="status" { p { (notice) } } }
            (form_errors(errors, &["host", "port", "security", "user", "password", "folder", "done_folder"]))
            p.hint {
                "Careline reads this mailbox over IMAP and takes each unread email: a reply to one of its emails "
                "enters its conversation, any other email opens a ticket. Taken mail is marked read (and moved, "
                "if you name a folder). "
                a href="/admin/inbound" { "What came in" }
            }
            @if let Some(status) = status {
                section.card.narrow {
                    h2 { "Last check" }
                    p { (time(status.at)) ": " (status.detail) }
                }
            }
            section.card.narrow {
                form method="post" action="/admin/inbound/mailbox" {
                    (csrf_field(csrf))
                    label { input type="checkbox" name="enabled" value="on" checked[settings.enabled]; " Read this mailbox" }
                    (text_field("host", "IMAP server", "outlook.office365.com, imap.gmail.com, or your own", &settings.host, field_error("host")))
                    (text_field("port", "Port", "993 for TLS, 143 for STARTTLS", &settings.port.to_string(), field_error("port")))
                    div.field {
                        label for="security" { "Encryption" }
                        select #security name="security" {
                            option value="tls" selected[settings.security == ImapSecurity::Tls] { "TLS (port 993)" }
                            option value="starttls" selected[settings.security == ImapSecurity::StartTls] { "STARTTLS (port 143)" }
                        }
                    }
                    (text_field("user", "User", "usually the mailbox's address", &settings.user, field_error("user")))
                    div.field {
                        label for="password" { "Password" }
                        p.hint {
                            @if settings.password.is_empty() { "Not set yet. " } @else { "Stored. Leave empty to keep it. " }
                            "Gmail and Microsoft 365 need an app password."
                        }
                        @if let Some(e) = field_error("password") { p.error { (e) } }
                        input #password name="password" type="password" autocomplete="off" value="";
                    }
                    (text_field("folder", "Folder to read", "usually INBOX", &settings.folder, field_error("folder")))
                    (text_field("done_folder", "Move taken mail to", "a folder that exists, like Careline; empty: only mark it read", &settings.done_folder, field_error("done_folder")))
                    button type="submit" { "Save and check" }
                }
            }
        },
    )
}

fn text_field(name: &str, label: &str, hint: &str, value: &str, error: Option<String>) -> Markup {
    html! {
        div.field {
            label for=(name) { (label) }
            p.hint { (hint) }
            @if let Some(e) = error { p.error { (e) } }
            input id=(name) name=(name) type="text" value=(value);
        }
    }
}

pub async fn show(
    State(state): State<AppState>,
    Admin(current): Admin,
    csrf: CsrfToken,
    Query(notice): Query<Notice>,
) -> Result<Response, PageError> {
    let settings = ImapSettings::load(state.store(), state.secret()).await?;
    let status = MailboxStatus::load(state.store()).await?;
    Ok(render(
        &current.user,
        &csrf.0,
        &settings,
        status.as_ref(),
        notice_text(&notice),
        &FormErrors::default(),
    )
    .into_response())
}

#[derive(Deserialize)]
pub struct MailboxForm {
    #[serde(default)]
    enabled: String,
    #[serde(default)]
    host: String,
    #[serde(default)]
    port: String,
    #[serde(default)]
    security: String,
    #[serde(default)]
    user: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    folder: String,
    #[serde(default)]
    done_folder: String,
}

fn parse(form: &MailboxForm, stored: &ImapSettings) -> Result<ImapSettings, DomainError> {
    let settings = ImapSettings {
        enabled: form.enabled == "on",
        host: form.host.trim().to_string(),
        port: form
            .port
            .trim()
            .parse()
            .map_err(|_| invalid("port", "Use a port number, like 993."))?,
        security: match form.security.as_str() {
            "starttls" => ImapSecurity::StartTls,
            "tls" => ImapSecurity::Tls,
            _ => return Err(invalid("security", "Choose TLS or STARTTLS.")),
        },
        user: form.user.trim().to_string(),
        // The password as written (spaces may be part of it), or the stored one.
        password: if form.password.is_empty() {
            stored.password.clone()
        } else {
            form.password.clone()
        },
        folder: form.folder.trim().to_string(),
        done_folder: form.done_folder.trim().to_string(),
    };
    settings.check().map_err(|bad| {
        let label = match bad.field {
            "host" => "The IMAP server",
            "port" => "The port",
            "user" => "The user",
            "folder" => "The folder to read",
            _ => "The folder taken mail moves to",
        };
        invalid(bad.field, format!("{label} {}", bad.message))
    })?;
    if settings.enabled && settings.password.is_empty() {
        return Err(invalid("password", "Enter the mailbox's password."));
    }
    Ok(settings)
}

pub async fn save(
    State(state): State<AppState>,
    Admin(current): Admin,
    csrf: CsrfToken,
    CsrfForm(form): CsrfForm<MailboxForm>,
) -> Result<Response, PageError> {
    let stored = ImapSettings::load(state.store(), state.secret()).await?;
    let settings = match parse(&form, &stored) {
        Ok(settings) => settings,
        Err(e) => {
            let errors = FormErrors::from_domain(e)?;
            let status = MailboxStatus::load(state.store()).await?;
            let body = render(
                &current.user,
                &csrf.0,
                &stored,
                status.as_ref(),
                None,
                &errors,
            );
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, body).into_response());
        }
    };
    settings
        .save(state.store(), state.secret(), &form.password)
        .await?;
    // Recorded without the password, of course.
    state
        .store()
        .audit(Some(current.user.id), "mailbox.settings", &settings.label())
        .await?;
    if !settings.enabled {
        return Ok(Redirect::to("/admin/inbound/mailbox?saved=off").into_response());
    }
    let config = MailboxConfig::from_settings(&state.config().mail, &state.config().egress)
        .map_err(|e| DomainError::Internal(e.to_string()))?;
    let to = match mailbox::try_settings(&settings, &config).await {
        Ok(waiting) => format!("/admin/inbound/mailbox?saved=ok&waiting={waiting}"),
        Err(e) => format!(
            "/admin/inbound/mailbox?saved=failed&{}",
            serde_urlencoded::to_string([("reason", e.to_string())]).unwrap_or_default()
        ),
    };
    Ok(Redirect::to(&to).into_response())
}
