//! Admin → Sites → a site → Verified identity: the secret the site's server
//! signs its users' ids with (made or rotated here, shown once, kept
//! sealed), and whether the site's widget takes only verified customers.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{FormErrors, csrf_field, form_errors, page, time};
use super::settings::admin_nav;
use crate::domain::identity;
use crate::model::{SiteId, User};
use crate::store::{Site, SiteIdentity};
use crate::web::AppState;
use crate::web::csrf::{CsrfForm, CsrfToken};
use crate::web::error::PageError;
use crate::web::session::Admin;

fn render(
    admin: &User,
    csrf: &str,
    site: &Site,
    identity: Option<&SiteIdentity>,
    new_secret: Option<&str>,
    errors: &FormErrors,
) -> Markup {
    let action = format!("/admin/sites/{}/identity", site.id);
    page(
        "Verified identity",
        Some(admin),
        csrf,
        html! {
            h1 { "Verified identity · " (site.name) }
            (admin_nav("/admin/sites"))
            (form_errors(errors, &[]))
            p.hint {
                "When your customers are logged in on your site, your server signs each one's user id "
                "with this site's secret, and the widget passes id and signature to Careline: the customer's "
                "chats then follow them on every device, and nobody can chat under their name. "
                "README: \"Tell Careline who your customer is\"."
            }
            @if let Some(secret) = new_secret {
                div.notice role="status" {
                    p { strong { "The new secret, shown this once:" } }
                    pre { code { (secret) } }
                    p { "Put it in your site's server configuration (never in a page). "
                        "The previous secret, if there was one, still verifies for 24 hours." }
                }
            }
            section.card.narrow {
                h2 { "Secret" }
                @match identity {
                    None => p { "No secret yet: identities are not taken on this site." }
                    Some(i) => {
                        p { "A secret is set (it is never shown again)." }
                        @if let Some(until) = i.previous_until.filter(|u| *u > crate::store::now_ms()) {
                            p { "The previous secret verifies until " (time(until)) "." }
                        }
                    }
                }
                form method="post" action=(format!("{action}/rotate")) {
                    (csrf_field(csrf))
                    button type="submit" {
                        @if identity.is_some() { "Make a new secret (rotate)" } @else { "Make a secret" }
                    }
                }
            }
            section.card.narrow {
                h2 { "Who may chat" }
                form method="post" action=(action) {
                    (csrf_field(csrf))
                    label {
                        input type="checkbox" name="require_verified" value="on"
                            checked[identity.is_some_and(|i| i.require_verified)];
                        " Require verified identity: without a valid signature the widget chats only as an "
                        "anonymous visitor, and names or emails the page passes unsigned are not taken"
                    }
                    button type="submit" { "Save" }
                }
            }
        },
    )
}

async fn site_of(state: &AppState, id: i64) -> Result<Site, PageError> {
    state
        .store()
        .site(SiteId(id))
        .await?
        .ok_or_else(|| crate::domain::DomainError::NotFound.into())
}

pub async fn show(
    State(state): State<AppState>,
    Admin(current): Admin,
    csrf: CsrfToken,
    Path(id): Path<i64>,
) -> Result<Response, PageError> {
    let site = site_of(&state, id).await?;
    let identity = state.store().site_identity(site.id).await?;
    Ok(render(
        &current.user,
        &csrf.0,
        &site,
        identity.as_ref(),
        None,
        &FormErrors::default(),
    )
    .into_response())
}

#[derive(Deserialize)]
pub struct Empty {}

/// Makes a new secret and shows it once: answered as a page, not a
/// redirect, so that the secret is never in a URL or a later page.
pub async fn rotate(
    State(state): State<AppState>,
    Admin(current): Admin,
    csrf: CsrfToken,
    Path(id): Path<i64>,
    CsrfForm(_): CsrfForm<Empty>,
) -> Result<Response, PageError> {
    let site = site_of(&state, id).await?;
    let secret =
        identity::rotate_secret(state.store(), state.secret(), site.id, current.user.id).await?;
    let identity = state.store().site_identity(site.id).await?;
    let mut response = render(
        &current.user,
        &csrf.0,
        &site,
        identity.as_ref(),
        Some(&secret),
        &FormErrors::default(),
    )
    .into_response();
    response.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    Ok(response)
}

#[derive(Deserialize)]
pub struct RequireForm {
    #[serde(default)]
    require_verified: String,
}

pub async fn save(
    State(state): State<AppState>,
    Admin(current): Admin,
    csrf: CsrfToken,
    Path(id): Path<i64>,
    CsrfForm(form): CsrfForm<RequireForm>,
) -> Result<Response, PageError> {
    let site = site_of(&state, id).await?;
    let on = form.require_verified == "on";
    match identity::set_require_verified(state.store(), site.id, current.user.id, on).await {
        Ok(()) => Ok(Redirect::to(&format!("/admin/sites/{}/identity", site.id)).into_response()),
        Err(e) => {
            let errors = FormErrors::from_domain(e)?;
            let identity = state.store().site_identity(site.id).await?;
            let body = render(
                &current.user,
                &csrf.0,
                &site,
                identity.as_ref(),
                None,
                &errors,
            );
            Ok((StatusCode::UNPROCESSABLE_ENTITY, body).into_response())
        }
    }
}
