//! Your account → API tokens (staff): make a personal token for scripts
//! and integrations (shown once), see when each was last used, revoke one.

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{FormErrors, csrf_field, form_errors, page, time};
use crate::domain::api_tokens::{self, Scope};
use crate::model::{Role, User};
use crate::store::ApiToken;
use crate::web::AppState;
use crate::web::csrf::{CsrfForm, CsrfToken};
use crate::web::error::PageError;
use crate::web::session::Staff;

fn render(
    user: &User,
    csrf: &str,
    tokens: &[ApiToken],
    new_token: Option<&str>,
    errors: &FormErrors,
) -> Markup {
    let now = crate::store::now_ms();
    page(
        "API tokens",
        Some(user),
        csrf,
        html! {
            h1 { "API tokens" }
            p.hint {
                "A token lets a script or an integration call the JSON API as you (README, JSON API): "
                "send it as " code { "Authorization: Bearer clt_…" } ". It can do no more than you can, "
                "and no more than its scope: read (GET only), write (also changes)"
                @if user.role == Role::Admin { ", admin (also admin routes)" } "."
            }
            p.hint {
                "What each route takes and answers: the " a href="/api/docs" { "API reference" }
                " (or its OpenAPI document, " a href="/api/openapi.json" { code { "/api/openapi.json" } } ")."
            }
            @if let Some(token) = new_token {
                div.notice role="status" {
                    p { strong { "Your new token, shown this once:" } }
                    pre { code { (token) } }
                    p { "Keep it like a password. If it leaks, revoke it below." }
                }
            }
            (form_errors(errors, &["name", "scope", "days"]))
            section.card.narrow {
                h2 { "Make a token" }
                form method="post" action="/account/tokens" {
                    (csrf_field(csrf))
                    div.field {
                        label for="name" { "Name" }
                        p.hint { "What uses it, e.g. \"CRM sync\"." }
                        @if let Some(e) = errors.get("name") { p.error { (e) } }
                        input #name name="name" type="text" required maxlength="100";
                    }
                    div.field {
                        label for="scope" { "Scope" }
                        select #scope name="scope" {
                            option value="read" { "Read" }
                            option value="write" { "Read and write" }
                            @if user.role == Role::Admin { option value="admin" { "Admin" } }
                        }
                    }
                    div.field {
                        label for="days" { "Expires after (days)" }
                        @if let Some(e) = errors.get("days") { p.error { (e) } }
                        input #days name="days" type="number" min="1" max=(api_tokens::MAX_DAYS) value="90";
                    }
                    button type="submit" { "Make the token" }
                }
            }
            @if !tokens.is_empty() {
                table {
                    caption.visually-hidden { "Your API tokens" }
                    thead { tr {
                        th scope="col" { "Name" } th scope="col" { "Scope" } th scope="col" { "Made" }
                        th scope="col" { "Expires" } th scope="col" { "Last used" } th scope="col" { "" }
                    } }
                    tbody {
                        @for t in tokens {
                            tr {
                                td { (t.name) }
                                td { (t.scope) }
                                td { (time(t.created_at)) }
                                td { (time(t.expires_at)) }
                                td { @match t.last_used_at { Some(at) => (time(at)), None => "never" } }
                                td {
                                    @if t.revoked_at.is_some() { "revoked" }
                                    @else if t.expires_at <= now { "expired" }
                                    @else {
                                        form.inline method="post" action=(format!("/account/tokens/{}/revoke", t.id)) {
                                            (csrf_field(csrf))
                                            button.secondary type="submit" { "Revoke" }
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
}

pub async fn show(
    State(state): State<AppState>,
    Staff(current): Staff,
    csrf: CsrfToken,
) -> Result<Response, PageError> {
    let tokens = state.store().api_tokens_of(current.user.id).await?;
    Ok(render(
        &current.user,
        &csrf.0,
        &tokens,
        None,
        &FormErrors::default(),
    )
    .into_response())
}

#[derive(Deserialize)]
pub struct TokenForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    scope: String,
    #[serde(default)]
    days: String,
}

/// Makes a token and shows it once, in this answer only (never in a URL).
pub async fn create(
    State(state): State<AppState>,
    Staff(current): Staff,
    csrf: CsrfToken,
    CsrfForm(form): CsrfForm<TokenForm>,
) -> Result<Response, PageError> {
    let made = match (Scope::parse(&form.scope), form.days.trim().parse::<i64>()) {
        (None, _) => Err(crate::domain::invalid(
            "scope",
            "Choose read, write or admin.",
        )),
        (_, Err(_)) => Err(crate::domain::invalid(
            "days",
            "Give the days as a number, like 90.",
        )),
        (Some(scope), Ok(days)) => {
            api_tokens::issue(state.store(), &current.user, &form.name, scope, days).await
        }
    };
    // Listed after the attempt, so that a new token is among them.
    let listed = state.store().api_tokens_of(current.user.id).await?;
    match made {
        Ok(token) => {
            let mut response = render(
                &current.user,
                &csrf.0,
                &listed,
                Some(&token),
                &FormErrors::default(),
            )
            .into_response();
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            Ok(response)
        }
        Err(e) => {
            let errors = FormErrors::from_domain(e)?;
            let body = render(&current.user, &csrf.0, &listed, None, &errors);
            Ok((StatusCode::UNPROCESSABLE_ENTITY, body).into_response())
        }
    }
}

#[derive(Deserialize)]
pub struct Empty {}

pub async fn revoke(
    State(state): State<AppState>,
    Staff(current): Staff,
    Path(id): Path<i64>,
    CsrfForm(_): CsrfForm<Empty>,
) -> Result<Response, PageError> {
    api_tokens::revoke(state.store(), &current.user, id).await?;
    Ok(Redirect::to("/account/tokens").into_response())
}
