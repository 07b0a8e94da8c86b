//! Webhooks that outside services call. SendGrid's Inbound Parse posts each
//! email that reaches the support domain to
//! `/hooks/email/sendgrid/<mail_inbound_secret>` as a multipart form: the
//! parsed fields (`headers`, `text`, `html`, `envelope`, …, and each file
//! as `attachment1`…`attachmentN`, named in `attachment-info`) or, in
//! "raw" mode, the whole MIME message in `email`. Either way the domain
//! decides (`domain::inbound_email`).
//!
//! SendGrid retries a post that is not answered 2xx for three days: an
//! email that was taken, ignored or cannot be read at all gets 200 (the
//! unreadable one is kept for an admin; sending it again will not help),
//! and only a failure on this side (the database unreachable) gets 503.

use std::collections::HashMap;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Multipart, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::json;
use tower_http::limit::RequestBodyLimitLayer;

use super::AppState;
use crate::auth::same_secret;
use crate::domain::inbound_email::{self, Received};
use crate::domain::{DomainError, DomainResult};
use crate::mail::inbound::{self, MailFile};

/// SendGrid posts at most 30 MB (the email with its attachments).
const INBOUND_LIMIT: usize = 30 * 1024 * 1024;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/hooks/email/sendgrid/{secret}", post(sendgrid_inbound))
        .layer(DefaultBodyLimit::max(INBOUND_LIMIT))
        .layer(RequestBodyLimitLayer::new(INBOUND_LIMIT))
}

/// What SendGrid posted, read from the form.
#[derive(Default)]
struct Posted {
    fields: HashMap<String, String>,
    raw: Option<Vec<u8>>,
    /// The files of parsed mode, by their field name (`attachment1`…), with
    /// the name the form part gave.
    files: Vec<(String, MailFile)>,
}

async fn sendgrid_inbound(
    State(state): State<AppState>,
    Path(secret): Path<String>,
    multipart: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Response {
    // Off, or the wrong secret: as if there were no such address.
    let Some(expected) = state.config().mail.inbound_secret.as_deref() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if !same_secret(expected, &secret) {
        return StatusCode::NOT_FOUND.into_response();
    }
    let Ok(multipart) = multipart else {
        return (
            StatusCode::BAD_REQUEST,
            "expected the multipart/form-data that SendGrid Inbound Parse posts",
        )
            .into_response();
    };
    let mut posted = match read_form(multipart).await {
        Ok(posted) => posted,
        Err((status, reason)) => return (status, reason).into_response(),
    };
    let envelope_to = envelope_recipients(posted.fields.get("envelope"));
    if let Some(raw) = &posted.raw {
        let received =
            inbound_email::receive_raw(state.chat(), state.secret(), raw, &envelope_to).await;
        return answer(received);
    }
    let parsed = inbound::parse_fields(
        field(&posted, "headers"),
        field(&posted, "text"),
        field(&posted, "html"),
        &envelope_to,
    );
    match parsed {
        Ok(mut mail) => {
            mail.files = files_in_order(&mut posted);
            let original = inbound::rebuilt_original(
                field(&posted, "headers"),
                field(&posted, "text"),
                field(&posted, "html"),
            );
            answer(inbound_email::receive(state.chat(), state.secret(), &mail, &original).await)
        }
        Err(e) => keep_unreadable(&state, &posted, &e.to_string()).await,
    }
}

fn field<'a>(posted: &'a Posted, name: &str) -> &'a str {
    posted.fields.get(name).map_or("", String::as_str)
}

/// The files of parsed mode in SendGrid's order (`attachment1`,
/// `attachment2`, …), each named as `attachment-info` names it (the name in
/// the sender's email), else as its form part was.
fn files_in_order(posted: &mut Posted) -> Vec<MailFile> {
    let info = posted
        .fields
        .get("attachment-info")
        .and_then(|info| serde_json::from_str::<serde_json::Value>(info).ok())
        .unwrap_or_default();
    let number = |field: &str| {
        field
            .strip_prefix("attachment")
            .and_then(|n| n.parse::<u32>().ok())
            .unwrap_or(u32::MAX)
    };
    let mut files = std::mem::take(&mut posted.files);
    files.sort_by_key(|(field, _)| number(field));
    files
        .into_iter()
        .map(|(field, mut file)| {
            let described = &info[field.as_str()];
            if let Some(name) = described["filename"]
                .as_str()
                .or_else(|| described["name"].as_str())
                .filter(|n| !n.trim().is_empty())
            {
                file.name = name.to_string();
            }
            file
        })
        .collect()
}

/// The form's text fields, the raw message (`email`) in raw mode, and the
/// files (`attachment1`…) in parsed mode: all within the 30 MB a post may
/// have.
async fn read_form(mut form: Multipart) -> Result<Posted, (StatusCode, &'static str)> {
    let mut posted = Posted::default();
    loop {
        let next = form.next_field().await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                (
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "the email is larger than 30 MB",
                )
            } else {
                (StatusCode::BAD_REQUEST, "the form cannot be read")
            }
        })?;
        let Some(part) = next else { break };
        let name = part.name().unwrap_or_default().to_string();
        let file_name = part.file_name().map(str::to_string);
        let bytes = part
            .bytes()
            .await
            .map_err(|_| (StatusCode::BAD_REQUEST, "a form field cannot be read"))?;
        if name == "email" {
            posted.raw = Some(bytes.to_vec());
        } else if let Some(file_name) = file_name {
            posted.files.push((
                name,
                MailFile {
                    name: file_name,
                    bytes: bytes.to_vec(),
                },
            ));
        } else {
            posted
                .fields
                .insert(name, String::from_utf8_lossy(&bytes).into_owned());
        }
    }
    Ok(posted)
}

/// The SMTP recipients from SendGrid's `envelope` field (`{"to": [...]}`).
fn envelope_recipients(envelope: Option<&String>) -> Vec<String> {
    envelope
        .and_then(|e| serde_json::from_str::<serde_json::Value>(e).ok())
        .and_then(|e| {
            e["to"].as_array().map(|to| {
                to.iter()
                    .filter_map(|a| a.as_str().map(str::to_string))
                    .collect()
            })
        })
        .unwrap_or_default()
}

/// SendGrid's answer: 200 for an email taken, ignored, refused or kept
/// unreadable; 503 (try again) for a failure on this side.
fn answer(received: DomainResult<Received>) -> Response {
    match received {
        Ok(Received::Unreadable(reason)) => (
            StatusCode::OK,
            axum::Json(json!({ "outcome": "failed", "reason": reason })),
        )
            .into_response(),
        Ok(received) => {
            let outcome = received.outcome();
            tracing::info!(outcome, "inbound email");
            (StatusCode::OK, axum::Json(json!({ "outcome": outcome }))).into_response()
        }
        Err(
            e @ (DomainError::Unavailable(_) | DomainError::Internal(_) | DomainError::Busy { .. }),
        ) => {
            // SendGrid tries again later.
            tracing::warn!(error = %e, "inbound email not taken now; the sender will retry");
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
        Err(e) => {
            // Refused by a rule (a closed conversation, text that is not
            // allowed): sending it again gives the same answer.
            tracing::warn!(error = %e, "inbound email refused");
            (
                StatusCode::OK,
                axum::Json(json!({ "outcome": "refused", "reason": e.to_string() })),
            )
                .into_response()
        }
    }
}

/// An email that cannot be read as SendGrid posted its fields: kept for
/// an admin (raw mode goes through `receive_raw`, which keeps its own).
async fn keep_unreadable(state: &AppState, posted: &Posted, reason: &str) -> Response {
    let raw = format!("{}\n\n{}", field(posted, "headers"), field(posted, "text"));
    answer(inbound_email::keep_unreadable(state.store(), &raw, reason).await)
}
