//! Forgotten passwords and invitations: ask for a link by email, then
//! choose a password on the page the link opens. The same answer whether or
//! not an address has an account; a link works once and expires.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{FormErrors, csrf_field, field, form_errors, page, required};
use crate::domain::accounts;
use crate::web::AppState;
use crate::web::csrf::{CsrfForm, CsrfToken};
use crate::web::error::PageError;

#[derive(Deserialize, Default)]
pub struct Sent {
    #[serde(default)]
    sent: String,
}

fn forgot_page(csrf: &str, sent: bool, errors: &FormErrors) -> Markup {
    page(
        "Forgot your password?",
        None,
        csrf,
        html! {
            section.card.narrow {
                h1 { "Forgot your password?" }
                @if sent {
                    div.notice role="status" {
                        p { "If an account uses that address, we sent it a link to choose a new password. The link works once, for an hour." }
                    }
                }
                (form_errors(errors, &["email"]))
                form method="post" action="/password/forgot" {
                    (csrf_field(csrf))
                    (field("Email", "email", "email", "", errors, required("email")))
                    button type="submit" { "Email me a link" }
                }
                p { a href="/login" { "Back to log in" } }
            }
        },
    )
}

pub async fn forgot(csrf: CsrfToken, Query(q): Query<Sent>) -> Response {
    forgot_page(&csrf.0, q.sent == "1", &FormErrors::default()).into_response()
}

#[derive(Deserialize)]
pub struct ForgotForm {
    email: String,
}

pub async fn send_link(
    State(state): State<AppState>,
    CsrfForm(form): CsrfForm<ForgotForm>,
) -> Result<Response, PageError> {
    accounts::request_password_reset(state.store(), &form.email, &state.config().public_url)
        .await?;
    // The same answer for every address: no account enumeration.
    Ok(Redirect::to("/password/forgot?sent=1").into_response())
}

#[derive(Deserialize, Default)]
pub struct TokenQuery {
    #[serde(default)]
    token: String,
}

fn choose_page(csrf: &str, token: &str, errors: &FormErrors) -> Markup {
    page(
        "Choose a password",
        None,
        csrf,
        html! {
            section.card.narrow {
                h1 { "Choose a password" }
                (form_errors(errors, &["password"]))
                form method="post" action="/password" {
                    (csrf_field(csrf))
                    input type="hidden" name="token" value=(token);
                    (field("New password (at least 10 characters)", "password", "password", "", errors, required("new-password")))
                    button type="submit" { "Save password" }
                }
            }
        },
    )
}

pub async fn choose(csrf: CsrfToken, Query(q): Query<TokenQuery>) -> Response {
    choose_page(&csrf.0, &q.token, &FormErrors::default()).into_response()
}

#[derive(Deserialize)]
pub struct ChooseForm {
    token: String,
    password: String,
}

pub async fn save(
    State(state): State<AppState>,
    csrf: CsrfToken,
    CsrfForm(form): CsrfForm<ChooseForm>,
) -> Result<Response, PageError> {
    match accounts::set_password_with_token(state.store(), state.bus(), &form.token, &form.password)
        .await
    {
        Ok(()) => Ok(Redirect::to("/login?password=saved").into_response()),
        Err(e) => {
            let errors = FormErrors::from_domain(e)?;
            Ok((
                StatusCode::UNPROCESSABLE_ENTITY,
                choose_page(&csrf.0, &form.token, &errors),
            )
                .into_response())
        }
    }
}
