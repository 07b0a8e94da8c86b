//! The profile page: change one's name and password.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{FormErrors, csrf_field, field, form_errors, page, required};
use crate::domain::accounts;
use crate::model::User;
use crate::web::AppState;
use crate::web::csrf::{CsrfForm, CsrfToken};
use crate::web::error::PageError;
use crate::web::session::CurrentUser;

#[derive(Deserialize, Default)]
pub struct Saved {
    #[serde(default)]
    saved: String,
}

fn render(
    user: &User,
    csrf: &str,
    notice: Option<&str>,
    name: &str,
    errors: &FormErrors,
) -> Markup {
    page(
        "Your account",
        Some(user),
        csrf,
        html! {
            h1 { "Your account" }
            @if let Some(notice) = notice { div.notice role="status" { p { (notice) } } }
            (form_errors(errors, &["name", "current_password", "new_password"]))
            section.card.narrow {
                h2 { "Profile" }
                p { "Email: " strong { (user.email) } " · Role: " (user.role) }
                @if !user.verified {
                    form.inline method="post" action="/account/verify" {
                        (csrf_field(csrf))
                        p.hint { "Your email is not verified yet. Verifying it brings chats you had with this address into your tickets. " }
                        button.secondary type="submit" { "Send the verification link again" }
                    }
                }
                form method="post" action="/account/profile" {
                    (csrf_field(csrf))
                    (field("Name", "name", "text", name, errors, required("name")))
                    button type="submit" { "Save profile" }
                }
            }
            section.card.narrow {
                h2 { "Password" }
                p.hint { "Changing your password logs you out everywhere else." }
                form method="post" action="/account/password" {
                    (csrf_field(csrf))
                    (field("Current password", "current_password", "password", "", errors, required("current-password")))
                    (field("New password (at least 10 characters)", "new_password", "password", "", errors, required("new-password")))
                    button type="submit" { "Change password" }
                }
            }
        },
    )
}

pub async fn show(
    CurrentUser { user, .. }: CurrentUser,
    csrf: CsrfToken,
    Query(q): Query<Saved>,
) -> Response {
    let notice = match q.saved.as_str() {
        "profile" => Some("Your profile is saved."),
        "password" => Some("Your password is changed."),
        "verify" => Some("We sent you a new verification link."),
        _ => None,
    };
    render(&user, &csrf.0, notice, &user.name, &FormErrors::default()).into_response()
}

#[derive(Deserialize)]
pub struct ProfileForm {
    name: String,
}

pub async fn update_profile(
    State(state): State<AppState>,
    CurrentUser { user, .. }: CurrentUser,
    csrf: CsrfToken,
    CsrfForm(form): CsrfForm<ProfileForm>,
) -> Result<Response, PageError> {
    match accounts::update_profile(state.store(), state.bus(), &user, &form.name).await {
        Ok(()) => Ok(Redirect::to("/account?saved=profile").into_response()),
        Err(e) => {
            let errors = FormErrors::from_domain(e)?;
            Ok((
                StatusCode::UNPROCESSABLE_ENTITY,
                render(&user, &csrf.0, None, &form.name, &errors),
            )
                .into_response())
        }
    }
}

#[derive(Deserialize)]
pub struct PasswordForm {
    current_password: String,
    new_password: String,
}

pub async fn change_password(
    State(state): State<AppState>,
    CurrentUser { user, token }: CurrentUser,
    csrf: CsrfToken,
    CsrfForm(form): CsrfForm<PasswordForm>,
) -> Result<Response, PageError> {
    match accounts::change_password(
        state.store(),
        state.bus(),
        &user,
        &token,
        &form.current_password,
        &form.new_password,
    )
    .await
    {
        Ok(()) => Ok(Redirect::to("/account?saved=password").into_response()),
        Err(e) => {
            let errors = FormErrors::from_domain(e)?;
            Ok((
                StatusCode::UNPROCESSABLE_ENTITY,
                render(&user, &csrf.0, None, &user.name, &errors),
            )
                .into_response())
        }
    }
}

#[derive(Deserialize)]
pub struct Empty {}

pub async fn resend_verification(
    State(state): State<AppState>,
    CurrentUser { user, .. }: CurrentUser,
    CsrfForm(_): CsrfForm<Empty>,
) -> Result<Response, PageError> {
    accounts::send_verification(state.store(), &user, &state.config().public_url).await?;
    Ok(Redirect::to("/account?saved=verify").into_response())
}
