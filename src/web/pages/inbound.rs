//! Admin → Inbound email: what became of each email that came in (appended
//! to a conversation, opened a ticket, ignored and why, or unreadable), with
//! the raw mail of those that could not be read.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use maud::html;

use super::layout::{page, time};
use super::settings::admin_nav;
use crate::web::AppState;
use crate::web::csrf::CsrfToken;
use crate::web::error::PageError;
use crate::web::session::Admin;

pub async fn show(
    State(state): State<AppState>,
    Admin(current): Admin,
    csrf: CsrfToken,
) -> Result<Response, PageError> {
    let emails = state.store().recent_inbound_emails(100).await?;
    let on = state.config().mail.inbound_secret.is_some();
    Ok(page(
        "Inbound email",
        Some(&current.user),
        &csrf.0,
        html! {
            h1 { "Inbound email" }
            (admin_nav("/admin/inbound"))
            p.hint {
                "Email that reached the support address, through SendGrid Inbound Parse or the "
                a href="/admin/inbound/mailbox" { "support mailbox (IMAP)" }
                ", newest first. Machine mail and repeats are ignored; mail that could not be read is kept here."
                @if !on {
                    " SendGrid Inbound Parse is off: set mail_inbound_secret and point it at /hooks/email/sendgrid/<secret> (README, Email)."
                }
            }
            @if emails.is_empty() {
                section.card.empty { p { "No email has come in yet." } }
            } @else {
                table {
                    caption.visually-hidden { "Inbound email, newest first" }
                    thead { tr {
                        th scope="col" { "Received" } th scope="col" { "From" }
                        th scope="col" { "Outcome" } th scope="col" { "Conversation" } th scope="col" { "Detail" }
                    } }
                    tbody {
                        @for email in &emails {
                            tr {
                                td { (time(email.received_at)) }
                                td { (email.from_email) }
                                td { (email.outcome) }
                                td {
                                    @if let Some(id) = email.conversation_id {
                                        "#" (id)
                                    }
                                }
                                td {
                                    (email.detail)
                                    @if let Some(raw) = &email.raw {
                                        details {
                                            summary { "The mail as it came" }
                                            pre { (raw) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
    .into_response())
}
