//! The home page: what this support centre is and where to go next.

use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;

use super::layout::page;
use crate::web::AppState;
use crate::web::csrf::CsrfToken;
use crate::web::session::MaybeUser;

pub async fn home(State(state): State<AppState>, maybe: MaybeUser, csrf: CsrfToken) -> Response {
    if state.setup_pending() {
        return Redirect::to("/setup").into_response();
    }
    let user = maybe.user.as_ref();
    page(
        "Support",
        user,
        &csrf.0,
        html! {
            section.hero {
                h1 { "How can we help?" }
                p.lead {
                    "Chat with us, or raise a ticket and follow its progress here. "
                    "Every request gets a number, a person who owns it, and a timeline you can read."
                }
                @match user {
                    Some(u) if u.role.is_staff() => {
                        p { a.button href="/console" { "Open the ticket console" } }
                    }
                    Some(_) => {
                        p {
                            a.button href="/tickets/new" { "Raise a ticket" } " "
                            a.button.secondary href="/dashboard" { "See my tickets" }
                        }
                    }
                    None => {
                        p {
                            a.button href="/register" { "Create an account" } " "
                            a.button.secondary href="/login" { "Log in" }
                        }
                    }
                }
            }
            section.grid {
                div.card { h2 { "Raise a ticket" } p { "Tell us what is wrong in a few words; we reply in the ticket and you get the whole thread in one place." } }
                div.card { h2 { "Follow progress" } p { "See who is working on it, every status change and every reply, as it happens." } }
                div.card { h2 { "Chat" } p { "Use the chat button on our website: our assistant answers first and a person takes over when you ask. If nobody is online, the answer comes by email and shows here." } }
            }
        },
    )
    .into_response()
}
