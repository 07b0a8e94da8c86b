//! The profile page: change one's name and password; staff also choose
//! which emails they get about their own work.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{FormErrors, csrf_field, field, form_errors, page, required};
use crate::domain::{accounts, notifications};
use crate::model::User;
use crate::store::NotificationPrefs;
use crate::web::AppState;
use crate::web::csrf::{CsrfForm, CsrfToken};
use crate::web::error::PageError;
use crate::web::session::CurrentUser;

#[derive(Deserialize, Default)]
pub struct Saved {
    #[serde(default)]
    saved: String,
}

/// What the page shows besides the forms' own fields.
struct Shown<'a> {
    user: &'a User,
    csrf: &'a str,
    notice: Option<&'a str>,
    /// Staff only: their notification choices.
    prefs: Option<NotificationPrefs>,
}

fn render(shown: Shown<'_>, name: &str, errors: &FormErrors) -> Markup {
    let Shown {
        user,
        csrf,
        notice,
        prefs,
    } = shown;
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
            @if user.role.is_staff() {
                section.card.narrow {
                    h2 { "API tokens" }
                    p { "Scripts and integrations call the JSON API with a personal token. "
                        a href="/account/tokens" { "Your API tokens" } }
                }
            }
            @if let Some(prefs) = prefs {
                section.card.narrow {
                    h2 { "Email notifications" }
                    form method="post" action="/account/notifications" {
                        (csrf_field(csrf))
                        p.hint { "Email me at " (user.email) " when:" }
                        div.field {
                            label {
                                input type="checkbox" name="assigned" value="on" checked[prefs.assigned];
                                " someone else (or automatic routing) assigns me a conversation or a ticket"
                            }
                        }
                        div.field {
                            label {
                                input type="checkbox" name="customer_wrote" value="on" checked[prefs.customer_wrote];
                                " a customer writes in my conversation while I am away or my console is closed (at most one email per conversation in 10 minutes)"
                            }
                        }
                        button type="submit" { "Save notifications" }
                    }
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
    State(state): State<AppState>,
    CurrentUser { user, .. }: CurrentUser,
    csrf: CsrfToken,
    Query(q): Query<Saved>,
) -> Result<Response, PageError> {
    let notice = match q.saved.as_str() {
        "profile" => Some("Your profile is saved."),
        "password" => Some("Your password is changed."),
        "verify" => Some("We sent you a new verification link."),
        "notifications" => Some("Your email notifications are saved."),
        _ => None,
    };
    let shown = Shown {
        user: &user,
        csrf: &csrf.0,
        notice,
        prefs: notifications::prefs_of(state.store(), &user).await?,
    };
    Ok(render(shown, &user.name, &FormErrors::default()).into_response())
}

/// The page again with `errors` (422), as `user` last saved it.
async fn refused(
    state: &AppState,
    user: &User,
    csrf: &str,
    name: &str,
    errors: &FormErrors,
) -> Result<Response, PageError> {
    let shown = Shown {
        user,
        csrf,
        notice: None,
        prefs: notifications::prefs_of(state.store(), user).await?,
    };
    Ok((
        StatusCode::UNPROCESSABLE_ENTITY,
        render(shown, name, errors),
    )
        .into_response())
}

/// The notification checkboxes: a box left unticked is not sent at all.
#[derive(Deserialize)]
pub struct NotificationsForm {
    #[serde(default)]
    assigned: Option<String>,
    #[serde(default)]
    customer_wrote: Option<String>,
}

pub async fn save_notifications(
    State(state): State<AppState>,
    CurrentUser { user, .. }: CurrentUser,
    CsrfForm(form): CsrfForm<NotificationsForm>,
) -> Result<Response, PageError> {
    let prefs = NotificationPrefs {
        assigned: form.assigned.is_some(),
        customer_wrote: form.customer_wrote.is_some(),
    };
    notifications::save_prefs(state.chat(), &user, prefs).await?;
    Ok(Redirect::to("/account?saved=notifications").into_response())
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
            refused(&state, &user, &csrf.0, &form.name, &errors).await
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
            refused(&state, &user, &csrf.0, &user.name, &errors).await
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
