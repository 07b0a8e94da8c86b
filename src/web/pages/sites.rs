//! Admin → Sites & widget: the websites that embed the chat. Each site has
//! its widget tag to copy, its allowed origins and look; admins add sites,
//! change them, and remove them (`domain::sites` decides whether that
//! deletes or archives).

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{FormErrors, badge, csrf_field, form_errors, page, time};
use super::settings::{Done, Empty, admin_nav, notice};
use crate::domain::sites::{self, Removal, SiteForm};
use crate::domain::{DomainError, DomainResult};
use crate::model::{SiteId, User, WidgetPosition};
use crate::store::{DEFAULT_GREETING, Site};
use crate::web::AppState;
use crate::web::csrf::{CsrfForm, CsrfToken};
use crate::web::error::PageError;
use crate::web::session::Admin;

/// The site form as posted.
#[derive(Deserialize, Default, Clone)]
pub struct SiteFormData {
    #[serde(default)]
    site_name: String,
    #[serde(default)]
    allowed_origins: String,
    #[serde(default)]
    greeting: String,
    #[serde(default)]
    color: String,
    #[serde(default)]
    require_email: Option<String>,
    #[serde(default)]
    position: String,
}

impl SiteFormData {
    fn of(site: &Site) -> SiteFormData {
        SiteFormData {
            site_name: site.name.clone(),
            allowed_origins: site.allowed_origins.join("\n"),
            greeting: site.greeting.clone(),
            color: site.color.clone(),
            require_email: site.require_email.then(|| "on".into()),
            position: site.position.as_str().into(),
        }
    }

    /// What a new site's form starts with.
    fn fresh() -> SiteFormData {
        SiteFormData {
            greeting: DEFAULT_GREETING.into(),
            color: "#1f6feb".into(),
            position: WidgetPosition::BottomRight.as_str().into(),
            ..SiteFormData::default()
        }
    }

    fn parse(&self) -> DomainResult<crate::store::SiteSettings> {
        sites::parse_settings(&SiteForm {
            name: &self.site_name,
            origins: &self.allowed_origins,
            greeting: &self.greeting,
            color: &self.color,
            require_email: self.require_email.is_some(),
            position: &self.position,
        })
    }
}

/// A form that was refused, shown again as it was typed: `None` the new
/// site's, `Some(id)` that site's.
struct Draft {
    target: Option<SiteId>,
    values: SiteFormData,
}

/// What the page shows besides the sites themselves.
struct Shown<'a> {
    done: Option<&'a str>,
    errors: FormErrors,
    draft: Option<Draft>,
}

fn snippet(state: &AppState, site: &Site) -> String {
    format!(
        r#"<script src="{}/widget.js" data-site="{}" async></script>"#,
        state.config().public_url,
        site.key
    )
}

/// `1 conversation`, `2 conversations`.
fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The fields of a site's form; `key` keeps each form's ids apart.
fn fields(key: &str, values: &SiteFormData) -> Markup {
    html! {
        div.field {
            label for={ "name-" (key) } { "Name shown in the chat" }
            input id={ "name-" (key) } name="site_name" type="text" value=(values.site_name) required maxlength="100";
        }
        div.field {
            label for={ "origins-" (key) } { "Allowed origins" }
            p.hint { "One per line, like https://shop.example.com. Only pages from these origins can open this site's chat." }
            textarea id={ "origins-" (key) } name="allowed_origins" rows="3" { (values.allowed_origins) }
        }
        div.field {
            label for={ "greeting-" (key) } { "Greeting" }
            textarea id={ "greeting-" (key) } name="greeting" rows="2" maxlength=(sites::MAX_GREETING) { (values.greeting) }
        }
        div.field {
            label for={ "color-" (key) } { "Colour" }
            input id={ "color-" (key) } name="color" type="text" value=(values.color) pattern="#[0-9a-fA-F]{3,6}";
        }
        div.field {
            label for={ "position-" (key) } { "Position on the page" }
            select id={ "position-" (key) } name="position" {
                @for position in WidgetPosition::ALL {
                    option value=(position.as_str()) selected[position.as_str() == values.position] { (position.label()) }
                }
            }
        }
        div.field {
            label {
                input type="checkbox" name="require_email" value="on" checked[values.require_email.is_some()];
                " Ask for an email before the chat starts"
            }
        }
    }
}

fn sites_page(
    state: &AppState,
    admin: &User,
    csrf: &str,
    sites: &[Site],
    counts: &[(SiteId, i64)],
    faq_counts: &dyn Fn(SiteId) -> usize,
    shown: &Shown<'_>,
) -> Markup {
    let conversations = |id: SiteId| counts.iter().find(|(s, _)| *s == id).map_or(0, |(_, n)| *n);
    let default = sites.iter().find(|s| !s.is_archived()).map(|s| s.id);
    let draft_for = |target: Option<SiteId>| {
        shown
            .draft
            .as_ref()
            .filter(|d| d.target == target)
            .map(|d| &d.values)
    };
    let archived: Vec<&Site> = sites.iter().filter(|s| s.is_archived()).collect();
    let last = sites.len() - archived.len() == 1;
    page(
        "Sites & widget",
        Some(admin),
        csrf,
        html! {
            h1 { "Sites & widget" }
            (admin_nav("/admin/sites"))
            p.hint {
                "Each website (a shop, a help centre, a second brand) gets its own widget: its own tag, origins, look and FAQ answers. "
                "Agents see which site each chat came from."
            }
            @if let Some(done) = shown.done { div.notice role="status" { p { (done) } } }
            (form_errors(&shown.errors, &[]))
            @for site in sites.iter().filter(|s| !s.is_archived()) {
                section.card.site id={ "site-" (site.id) } {
                    h2 {
                        (site.name)
                        @if default == Some(site.id) { " " (badge("default", "Default")) }
                    }
                    @if default == Some(site.id) {
                        p.hint { "Tickets raised on the portal or by email are filed under this site." }
                    }
                    p { "Paste this tag into the pages of the website, just before " code { "</body>" } ":" }
                    pre.snippet { code { (snippet(state, site)) } }
                    p.hint {
                        a href="/admin/faq" { (count(faq_counts(site.id), "FAQ entry", "FAQ entries")) }
                        @if faq_counts(site.id) == 1 { " answers" } @else { " answer" }
                        " on this site. "
                        a href={ "/console?site=" (site.id) } { (count(conversations(site.id) as usize, "conversation", "conversations")) } ". "
                        a href={ "/admin/sites/" (site.id) "/identity" } { "Verified identity" }
                        ": tell Careline who your logged-in customers are."
                    }
                    form method="post" action={ "/admin/sites/" (site.id) } {
                        (csrf_field(csrf))
                        (fields(&site.id.to_string(), draft_for(Some(site.id)).unwrap_or(&SiteFormData::of(site))))
                        button type="submit" { "Save" }
                    }
                    @if last {
                        p.hint { "It is the only site that takes chats, so it stays: add another site before removing it." }
                    } @else {
                        form.inline method="post" action={ "/admin/sites/" (site.id) "/remove" } {
                            (csrf_field(csrf))
                            p.hint {
                                @if conversations(site.id) > 0 {
                                    "Removing archives it: its conversations stay readable here and in the ticket list, its customers' ticket pages keep working, and its widget takes no new chats."
                                } @else {
                                    "It has no conversations: removing deletes it."
                                }
                            }
                            button.secondary type="submit" { "Remove " (site.name) }
                        }
                    }
                }
            }
            section.card #add-site {
                h2 { "Add a site" }
                form method="post" action="/admin/sites" {
                    (csrf_field(csrf))
                    (fields("new", draft_for(None).unwrap_or(&SiteFormData::fresh())))
                    button type="submit" { "Add site" }
                }
            }
            @if !archived.is_empty() {
                section.card #archived-sites {
                    h2 { "Archived sites" }
                    p.hint { "Their widgets take no new chats; their conversations stay readable." }
                    table {
                        thead { tr { th scope="col" { "Site" } th scope="col" { "Archived" } th scope="col" { "Conversations" } } }
                        tbody {
                            @for site in &archived {
                                tr {
                                    th scope="row" { (site.name) }
                                    td { (time(site.archived_at.unwrap_or_default())) }
                                    td { a href={ "/console?site=" (site.id) } { (conversations(site.id)) } }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
}

/// The page, with whatever `shown` adds.
async fn render(
    state: &AppState,
    admin: &User,
    csrf: &str,
    shown: Shown<'_>,
) -> Result<Markup, PageError> {
    let store = state.store();
    let sites = store.sites().await?;
    let counts = store.site_conversation_counts().await?;
    let faq = store.faq_entries().await?;
    let faq_counts = |site: SiteId| faq.iter().filter(|e| e.sites.includes(site)).count();
    Ok(sites_page(
        state,
        admin,
        csrf,
        &sites,
        &counts,
        &faq_counts,
        &shown,
    ))
}

pub async fn show(
    State(state): State<AppState>,
    Admin(current): Admin,
    csrf: CsrfToken,
    Query(done): Query<Done>,
) -> Result<Response, PageError> {
    let shown = Shown {
        done: notice(&done.done).or(match done.done.as_str() {
            "archived" => Some(
                "Archived: its conversations stay readable, and its widget takes no new chats.",
            ),
            _ => None,
        }),
        errors: FormErrors::default(),
        draft: None,
    };
    Ok(render(&state, &current.user, &csrf.0, shown)
        .await?
        .into_response())
}

/// The page again with a refused form's error and what was typed (422).
async fn refused(
    state: &AppState,
    admin: &User,
    csrf: &str,
    error: DomainError,
    draft: Option<Draft>,
) -> Result<Response, PageError> {
    let shown = Shown {
        done: None,
        errors: FormErrors::from_domain(error)?,
        draft,
    };
    let body = render(state, admin, csrf, shown).await?;
    Ok((StatusCode::UNPROCESSABLE_ENTITY, body).into_response())
}

pub async fn add(
    State(state): State<AppState>,
    Admin(current): Admin,
    csrf: CsrfToken,
    CsrfForm(form): CsrfForm<SiteFormData>,
) -> Result<Response, PageError> {
    let added = match form.parse() {
        Ok(settings) => sites::add(state.store(), &current.user, &settings).await,
        Err(e) => Err(e),
    };
    match added {
        Ok(_) => Ok(Redirect::to("/admin/sites?done=added").into_response()),
        Err(e) => {
            let draft = Draft {
                target: None,
                values: form,
            };
            refused(&state, &current.user, &csrf.0, e, Some(draft)).await
        }
    }
}

pub async fn save(
    State(state): State<AppState>,
    Admin(current): Admin,
    csrf: CsrfToken,
    Path(id): Path<SiteId>,
    CsrfForm(form): CsrfForm<SiteFormData>,
) -> Result<Response, PageError> {
    let saved = match form.parse() {
        Ok(settings) => sites::update(state.store(), &current.user, id, &settings).await,
        Err(e) => Err(e),
    };
    match saved {
        Ok(()) => Ok(Redirect::to("/admin/sites?done=saved").into_response()),
        Err(e) => {
            let draft = Draft {
                target: Some(id),
                values: form,
            };
            refused(&state, &current.user, &csrf.0, e, Some(draft)).await
        }
    }
}

pub async fn remove(
    State(state): State<AppState>,
    Admin(current): Admin,
    csrf: CsrfToken,
    Path(id): Path<SiteId>,
    CsrfForm(_): CsrfForm<Empty>,
) -> Result<Response, PageError> {
    match sites::remove(state.store(), &current.user, id).await {
        Ok(removal) => {
            // Its FAQ choices went with a deleted site.
            state.chat().bot().reload();
            let done = match removal {
                Removal::Deleted => "deleted",
                Removal::Archived => "archived",
            };
            Ok(Redirect::to(&format!("/admin/sites?done={done}")).into_response())
        }
        Err(e) => refused(&state, &current.user, &csrf.0, e, None).await,
    }
}
