//! First-run setup: creates the first admin. It needs the one-time token
//! printed in the server's log, so that whoever reaches a fresh install first
//! over the network cannot take it over. Once an admin exists it is gone.

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;

use super::layout::{FormErrors, csrf_field, field, form_errors, page, required};
use crate::domain::{DomainError, accounts};
use crate::web::AppState;
use crate::web::csrf::{CsrfForm, CsrfToken};
use crate::web::error::PageError;

#[derive(Deserialize, Default)]
pub struct SetupQuery {
    #[serde(default)]
    token: String,
}

#[derive(Deserialize)]
pub struct SetupForm {
    #[serde(default)]
    token: String,
    name: String,
    email: String,
    password: String,
}

fn render(csrf: &str, token: &str, name: &str, email: &str, errors: &FormErrors) -> maud::Markup {
    page(
        "Set up Careline",
        None,
        csrf,
        html! {
            section.card.narrow {
                h1 { "Set up Careline" }
                p { "Create the first administrator. You can invite agents afterwards." }
                (form_errors(errors, &["name", "email", "password", "token"]))
                form method="post" action="/setup" {
                    (csrf_field(csrf))
                    @if errors.get("token").is_some() || token.is_empty() {
                        (field("Setup token (printed in the server's log)", "token", "text", token, errors, required("off")))
                    } @else {
                        input type="hidden" name="token" value=(token);
                    }
                    (field("Your name", "name", "text", name, errors, required("name")))
                    (field("Email", "email", "email", email, errors, required("email")))
                    (field("Password (at least 10 characters)", "password", "password", "", errors, required("new-password")))
                    button type="submit" { "Create admin account" }
                }
            }
        },
    )
}

pub async fn show(
    State(state): State<AppState>,
    csrf: CsrfToken,
    Query(query): Query<SetupQuery>,
) -> Response {
    if !state.setup_pending() {
        return PageError(DomainError::NotFound).into_response();
    }
    render(&csrf.0, &query.token, "", "", &FormErrors::default()).into_response()
}

pub async fn submit(
    State(state): State<AppState>,
    csrf: CsrfToken,
    CsrfForm(form): CsrfForm<SetupForm>,
) -> Result<Response, PageError> {
    if !state.setup_pending() {
        return Err(PageError(DomainError::NotFound));
    }
    if !state.setup_token_matches(form.token.trim()) {
        let errors = FormErrors::one(
            "token",
            "That setup token is not right. Copy it from the line the server printed at start.",
        );
        return Ok((
            axum::http::StatusCode::FORBIDDEN,
            render(&csrf.0, "", &form.name, &form.email, &errors),
        )
            .into_response());
    }
    match accounts::create_first_admin(state.store(), &form.name, &form.email, &form.password).await
    {
        Ok(_) => {
            state.finish_setup();
            Ok(Redirect::to("/login?setup=done").into_response())
        }
        Err(DomainError::Conflict(_)) => {
            state.finish_setup();
            Err(PageError(DomainError::NotFound))
        }
        Err(e) => {
            let errors = FormErrors::from_domain(e)?;
            Ok((
                axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                render(&csrf.0, &form.token, &form.name, &form.email, &errors),
            )
                .into_response())
        }
    }
}
