//! The original of an email a message came from, for those who may read it
//! (`domain::email_originals::find`; anyone else gets "not found"): its
//! headers and whole text, quoted history included, as escaped text in a
//! page of our own, never the email's own HTML; and the email as it came,
//! as a download (`message/rfc822`, `attachment`) that a browser saves and
//! never shows as a page of Careline's origin.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use maud::html;

use super::layout::{page, time};
use crate::domain::attachments::human_size;
use crate::domain::{DomainError, email_originals};
use crate::mail::original::read;
use crate::web::AppState;
use crate::web::csrf::CsrfToken;
use crate::web::error::PageError;
use crate::web::session::CurrentUser;

/// An id from the path: anything but a number is "not found", like a number
/// that is not there.
fn id_of(raw: &str) -> Result<i64, PageError> {
    raw.parse().map_err(|_| PageError(DomainError::NotFound))
}

pub async fn show(
    State(state): State<AppState>,
    CurrentUser { user, .. }: CurrentUser,
    csrf: CsrfToken,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let original = email_originals::find(state.store(), &user, id_of(&id)?).await?;
    let raw = email_originals::read_whole(state.chat(), &original).await?;
    let email = read(&raw);
    let ticket = state
        .store()
        .conversation(original.conversation_id)
        .await?
        .and_then(|c| c.ticket_number);
    let back = match ticket {
        Some(n) if user.role.is_staff() => Some((format!("/console/tickets/{n}"), n)),
        Some(n) => Some((format!("/tickets/{n}"), n)),
        None => None,
    };
    let download = format!("/emails/{}/original.eml", original.id);
    Ok(page(
        "Original email",
        Some(&user),
        &csrf.0,
        html! {
            @if let Some((href, n)) = &back {
                p.crumbs { a href=(href) { "#" (n) } " › Original email" }
            }
            h1 { "Original email" }
            p.hint {
                "As it came from " (original.from_email) ", " (time(original.received_at))
                ". The message on the ticket has only its new text; here is all of it, shown as plain text."
            }
            @match &email {
                Some(email) => {
                    dl.summary.email-headers {
                        dt { "From" } dd { (email.from) }
                        dt { "To" } dd { (email.to) }
                        @if !email.cc.is_empty() { dt { "Cc" } dd { (email.cc) } }
                        dt { "Date" } dd { (email.date) }
                        dt { "Subject" } dd { (email.subject) }
                        @if !email.files.is_empty() {
                            dt { "Files" } dd { (email.files.join(", ")) }
                        }
                    }
                    pre.email-text { (email.text) }
                }
                None => {
                    p.notice { "This email cannot be read as MIME any more; download it to see it as it came." }
                }
            }
            p {
                a href=(download) download { "Download the email as it came (.eml, " (human_size(original.size)) ")" }
            }
        },
    )
    .into_response())
}

pub async fn download(
    State(state): State<AppState>,
    CurrentUser { user, .. }: CurrentUser,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let original = email_originals::find(state.store(), &user, id_of(&id)?).await?;
    let stream = email_originals::bytes(state.chat(), &original).await?;
    let mut response = Body::from_stream(stream).into_response();
    let h = response.headers_mut();
    let disposition = format!("attachment; filename=\"email-{}.eml\"", original.id);
    for (name, value) in [
        (header::CONTENT_TYPE, "message/rfc822".to_string()),
        (header::CONTENT_LENGTH, original.size.to_string()),
        (header::CONTENT_DISPOSITION, disposition),
        // Saved, never rendered: and were a browser talked into it, no
        // scripts, no plugins, no same-origin powers.
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_string()),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; sandbox".to_string(),
        ),
        (header::CACHE_CONTROL, "private, no-store".to_string()),
    ] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            h.insert(name, value);
        }
    }
    Ok(response)
}
