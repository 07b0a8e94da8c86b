//! Logging in and out, and registering.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{FormErrors, csrf_field, field, form_errors, page, required};
use crate::auth::random_token;
use crate::domain::accounts;
use crate::model::User;
use crate::web::AppState;
use crate::web::csrf::{CsrfForm, CsrfToken, csrf_cookie};
use crate::web::error::PageError;
use crate::web::session::{MaybeUser, expired_session_cookie, session_cookie};

#[derive(Deserialize, Default)]
pub struct LoginQuery {
    #[serde(default)]
    next: String,
    #[serde(default)]
    setup: String,
    #[serde(default)]
    password: String,
}

#[derive(Deserialize)]
pub struct LoginForm {
    email: String,
    password: String,
    #[serde(default)]
    next: String,
}

#[derive(Deserialize)]
pub struct RegisterForm {
    name: String,
    email: String,
    password: String,
}

/// Where to go after login: a local path only, never another site.
fn safe_next(next: &str, user: &User) -> String {
    // Browsers drop tabs and newlines and treat `\` like `/`, so anything
    // but a plain path could turn into `//other.site`.
    let mut chars = next.chars();
    let local = chars.next() == Some('/')
        && !matches!(chars.next(), Some('/') | Some('\\'))
        && !next
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || c == '\\');
    if local {
        next.to_string()
    } else {
        home_of(user).to_string()
    }
}

pub fn home_of(user: &User) -> &'static str {
    if user.role.is_staff() {
        "/console"
    } else {
        "/dashboard"
    }
}

fn login_form(
    csrf: &str,
    email: &str,
    next: &str,
    notice: Option<&str>,
    errors: &FormErrors,
) -> Markup {
    page(
        "Log in",
        None,
        csrf,
        html! {
            section.card.narrow {
                h1 { "Log in" }
                @if let Some(notice) = notice { div.notice role="status" { p { (notice) } } }
                (form_errors(errors, &["email", "password"]))
                form method="post" action="/login" {
                    (csrf_field(csrf))
                    input type="hidden" name="next" value=(next);
                    (field("Email", "email", "email", email, errors, required("email")))
                    (field("Password", "password", "password", "", errors, required("current-password")))
                    button type="submit" { "Log in" }
                }
                p { a href="/password/forgot" { "Forgot your password?" } }
                p { "New here? " a href="/register" { "Create an account" } }
            }
        },
    )
}

pub async fn login_page(
    maybe: MaybeUser,
    csrf: CsrfToken,
    Query(query): Query<LoginQuery>,
) -> Response {
    if let Some(user) = maybe.user {
        return Redirect::to(&safe_next(&query.next, &user)).into_response();
    }
    let notice = match (query.setup.as_str(), query.password.as_str()) {
        ("done", _) => Some("Your admin account is ready. Log in to continue."),
        (_, "saved") => Some("Your password is saved. Log in with it."),
        _ => None,
    };
    login_form(&csrf.0, "", &query.next, notice, &FormErrors::default()).into_response()
}

pub async fn login(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    jar: CookieJar,
    csrf: CsrfToken,
    CsrfForm(form): CsrfForm<LoginForm>,
) -> Result<Response, PageError> {
    let ttl = state.config().session_ttl_hours;
    match accounts::login(state.store(), &form.email, &form.password, ttl).await {
        Ok(session) => {
            // Rotate: the session presented before login (if any) ends, and the
            // browser gets a new session token and a new CSRF cookie.
            if let Some(old) = crate::web::session::session_token(&state, &headers) {
                accounts::logout(state.store(), state.bus(), &old).await?;
            }
            let jar = jar
                .add(session_cookie(&state, session.token))
                .add(csrf_cookie(&state, random_token(24)));
            let to = safe_next(&form.next, &session.user);
            Ok((jar, Redirect::to(&to)).into_response())
        }
        Err(e) => {
            let errors = FormErrors::from_domain(e)?;
            let body = login_form(&csrf.0, &form.email, &form.next, None, &errors);
            Ok((StatusCode::UNAUTHORIZED, body).into_response())
        }
    }
}

fn register_form(csrf: &str, name: &str, email: &str, errors: &FormErrors) -> Markup {
    page(
        "Create an account",
        None,
        csrf,
        html! {
            section.card.narrow {
                h1 { "Create an account" }
                p { "With an account you can raise tickets and follow every reply in one place." }
                (form_errors(errors, &["name", "email", "password"]))
                form method="post" action="/register" {
                    (csrf_field(csrf))
                    (field("Your name", "name", "text", name, errors, required("name")))
                    (field("Email", "email", "email", email, errors, required("email")))
                    (field("Password (at least 10 characters)", "password", "password", "", errors, required("new-password")))
                    button type="submit" { "Create account" }
                }
                p { "Already have an account? " a href="/login" { "Log in" } }
            }
        },
    )
}

pub async fn register_page(maybe: MaybeUser, csrf: CsrfToken) -> Response {
    if let Some(user) = maybe.user {
        return Redirect::to(home_of(&user)).into_response();
    }
    register_form(&csrf.0, "", "", &FormErrors::default()).into_response()
}

pub async fn register(
    State(state): State<AppState>,
    jar: CookieJar,
    csrf: CsrfToken,
    CsrfForm(form): CsrfForm<RegisterForm>,
) -> Result<Response, PageError> {
    let public_url = &state.config().public_url;
    match accounts::register(
        state.store(),
        &form.name,
        &form.email,
        &form.password,
        public_url,
    )
    .await
    {
        Ok(user) => {
            let ttl = state.config().session_ttl_hours;
            let session = accounts::start_session(state.store(), user, ttl).await?;
            let jar = jar
                .add(session_cookie(&state, session.token))
                .add(csrf_cookie(&state, random_token(24)));
            Ok((jar, Redirect::to("/dashboard")).into_response())
        }
        Err(e) => {
            let errors = FormErrors::from_domain(e)?;
            let body = register_form(&csrf.0, &form.name, &form.email, &errors);
            Ok((StatusCode::UNPROCESSABLE_ENTITY, body).into_response())
        }
    }
}

#[derive(Deserialize)]
pub struct Empty {}

pub async fn logout(
    State(state): State<AppState>,
    jar: CookieJar,
    maybe: MaybeUser,
    CsrfForm(_): CsrfForm<Empty>,
) -> Result<Response, PageError> {
    if let Some(token) = maybe.token {
        accounts::logout(state.store(), state.bus(), &token).await?;
    }
    let jar = jar.add(expired_session_cookie(&state));
    Ok((jar, Redirect::to("/")).into_response())
}

#[derive(Deserialize, Default)]
pub struct VerifyQuery {
    #[serde(default)]
    token: String,
}

/// The link from the verification email.
pub async fn verify(
    State(state): State<AppState>,
    maybe: MaybeUser,
    csrf: CsrfToken,
    Query(query): Query<VerifyQuery>,
) -> Result<Response, PageError> {
    let verified = accounts::verify_email(state.store(), &query.token).await?;
    let (status, title, text) = if verified {
        (
            StatusCode::OK,
            "Email verified",
            "Thank you: your email address is verified. Chats you had with this address now show in your tickets.",
        )
    } else {
        (
            StatusCode::BAD_REQUEST,
            "Link not valid",
            "This link has expired or was already used. Log in and ask for a new one from your account page.",
        )
    };
    let body = page(
        title,
        maybe.user.as_ref(),
        &csrf.0,
        html! {
            section.card.narrow {
                h1 { (title) }
                p { (text) }
                p { a href="/dashboard" { "Go to my tickets" } }
            }
        },
    );
    Ok((status, body).into_response())
}
