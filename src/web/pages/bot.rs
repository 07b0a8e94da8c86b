//! Admin: which bot answers first (the built-in FAQ bot or IBM Watson
//! Assistant), Watson's connection settings, and a connection test. The
//! API key is write-only: stored sealed, shown back as its last 4 characters.
//! Both URLs are checked against the egress policy when saved (what can be
//! known without DNS) and again, after DNS, on every call.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{FormErrors, csrf_field, form_errors, page};
use super::settings::admin_nav;
use crate::bot::switching::{BotKind, BotSettings, Fallback};
use crate::bot::watson::WatsonBot;
use crate::domain::{DomainError, invalid};
use crate::egress::Policy;
use crate::model::User;
use crate::web::AppState;
use crate::web::csrf::{CsrfForm, CsrfToken};
use crate::web::error::PageError;
use crate::web::session::Admin;

#[derive(Deserialize, Default)]
pub struct Notice {
    #[serde(default)]
    done: String,
    #[serde(default)]
    test: String,
    #[serde(default)]
    reason: String,
}

fn render(
    admin: &User,
    csrf: &str,
    settings: &BotSettings,
    notice: Option<String>,
    errors: &FormErrors,
) -> Markup {
    let w = &settings.watson;
    let watson = settings.kind == BotKind::Watson;
    page(
        "Bot",
        Some(admin),
        csrf,
        html! {
            h1 { "Bot" }
            (admin_nav("/admin/bot"))
            @if let Some(notice) = notice { div.notice role="status" { p { (notice) } } }
            (form_errors(errors, &[]))
            section.card.narrow {
                form method="post" action="/admin/bot" {
                    (csrf_field(csrf))
                    fieldset.stars {
                        legend { "Who answers first" }
                        label { input type="radio" name="kind" value="faq" checked[!watson]; " The built-in FAQ bot" }
                        label { input type="radio" name="kind" value="watson" checked[watson]; " IBM Watson Assistant" }
                    }
                    h2 { "Watson Assistant" }
                    p.hint { "Careline calls public https:// addresses only; a Watson inside your network must be listed by your operator in egress_allowed_hosts." }
                    div.field {
                        label for="url" { "Service URL" }
                        p.hint { "From your Assistant's API details, e.g. https://api.eu-de.assistant.watson.cloud.ibm.com/instances/…" }
                        input #url name="url" type="url" value=(w.url);
                    }
                    div.field {
                        label for="assistant_id" { "Assistant or environment id" }
                        input #assistant_id name="assistant_id" type="text" value=(w.assistant_id);
                    }
                    div.field {
                        label for="api_key" { "API key" }
                        p.hint {
                            @match settings.api_key_hint() {
                                Some(hint) => { "Stored: " (hint) ". Leave empty to keep it." }
                                None => { "Not set yet." }
                            }
                        }
                        input #api_key name="api_key" type="password" autocomplete="off" value="";
                    }
                    div.field {
                        label for="version" { "API version date" }
                        input #version name="version" type="text" value=(w.version) pattern="[0-9]{4}-[0-9]{2}-[0-9]{2}";
                    }
                    div.field {
                        label for="iam_url" { "IAM token URL" }
                        input #iam_url name="iam_url" type="url" value=(w.iam_url);
                    }
                    div.field {
                        label for="min_confidence" { "Lowest confidence that counts as an answer (0–1)" }
                        input #min_confidence name="min_confidence" type="text" value=(w.min_confidence);
                    }
                    div.field {
                        label for="fallback" { "When Watson fails" }
                        select #fallback name="fallback" {
                            option value="person" selected[settings.fallback == Fallback::Person] { "Hand the customer to a person" }
                            option value="faq" selected[settings.fallback == Fallback::Faq] { "Let the FAQ bot answer" }
                        }
                    }
                    button type="submit" { "Save" }
                }
            }
            section.card.narrow {
                h2 { "Test the connection" }
                p.hint { "Gets a token with the stored API key, then creates and deletes a session." }
                form method="post" action="/admin/bot/test" {
                    (csrf_field(csrf))
                    button.secondary type="submit" { "Test connection" }
                }
            }
        },
    )
}

fn notice_text(n: &Notice) -> Option<String> {
    match (n.done.as_str(), n.test.as_str()) {
        ("saved", _) => Some("Saved. New conversations use these settings now.".into()),
        (_, "ok") => Some("Connected: Watson answered with the stored settings.".into()),
        (_, "failed") => Some(format!("The connection failed: {}", n.reason)),
        _ => None,
    }
}

pub async fn show(
    State(state): State<AppState>,
    Admin(current): Admin,
    csrf: CsrfToken,
    Query(notice): Query<Notice>,
) -> Result<Response, PageError> {
    let settings = BotSettings::load(state.store(), state.secret()).await?;
    Ok(render(
        &current.user,
        &csrf.0,
        &settings,
        notice_text(&notice),
        &FormErrors::default(),
    )
    .into_response())
}

#[derive(Deserialize)]
pub struct BotForm {
    kind: String,
    #[serde(default)]
    url: String,
    #[serde(default)]
    assistant_id: String,
    #[serde(default)]
    api_key: String,
    #[serde(default)]
    version: String,
    #[serde(default)]
    iam_url: String,
    #[serde(default)]
    min_confidence: String,
    #[serde(default)]
    fallback: String,
}

/// Why Careline would not call `url`, as far as can be told without DNS;
/// `what` names the field in the message ("the service URL").
fn url_refused(egress: &Policy, what: &str, url: &str) -> Option<String> {
    let why = egress.check(url).err()?;
    Some(if url.contains("://") {
        format!("Careline will not call {what}: {why}.")
    } else {
        format!("Enter {what} (https://…).")
    })
}

fn parse(
    form: &BotForm,
    stored: &BotSettings,
    egress: &Policy,
) -> Result<BotSettings, DomainError> {
    let kind = match form.kind.as_str() {
        "faq" => BotKind::Faq,
        "watson" => BotKind::Watson,
        _ => return Err(invalid("kind", "Choose the FAQ bot or Watson.")),
    };
    let mut settings = stored.clone();
    settings.kind = kind;
    settings.watson.url = form.url.trim().trim_end_matches('/').to_string();
    settings.watson.assistant_id = form.assistant_id.trim().to_string();
    settings.watson.version = form.version.trim().to_string();
    settings.watson.iam_url = form.iam_url.trim().to_string();
    settings.watson.min_confidence = form
        .min_confidence
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|c| (0.0..=1.0).contains(c))
        .ok_or_else(|| invalid("min_confidence", "Use a number from 0 to 1, like 0.3."))?;
    settings.fallback = if form.fallback == "faq" {
        Fallback::Faq
    } else {
        Fallback::Person
    };
    if kind == BotKind::Watson {
        if let Some(why) = url_refused(egress, "the service URL", &settings.watson.url) {
            return Err(invalid("url", why));
        }
        if settings.watson.assistant_id.is_empty() {
            return Err(invalid(
                "assistant_id",
                "Enter the assistant or environment id.",
            ));
        }
        if form.api_key.trim().is_empty() && stored.watson.api_key.is_empty() {
            return Err(invalid("api_key", "Enter the API key."));
        }
        let v = settings.watson.version.as_bytes();
        if !(v.len() == 10 && v[4] == b'-' && v[7] == b'-') {
            return Err(invalid("version", "Use a date like 2021-11-27."));
        }
        if let Some(why) = url_refused(egress, "the IAM token URL", &settings.watson.iam_url) {
            return Err(invalid("iam_url", why));
        }
    }
    Ok(settings)
}

pub async fn save(
    State(state): State<AppState>,
    Admin(current): Admin,
    csrf: CsrfToken,
    CsrfForm(form): CsrfForm<BotForm>,
) -> Result<Response, PageError> {
    let stored = BotSettings::load(state.store(), state.secret()).await?;
    match parse(&form, &stored, &state.config().egress) {
        Ok(settings) => {
            settings
                .save(state.store(), state.secret(), form.api_key.trim())
                .await?;
            state.chat().bot().reload();
            // Recorded without the key, of course.
            state
                .store()
                .audit(
                    Some(current.user.id),
                    "bot.settings",
                    &format!("{:?}", settings.kind),
                )
                .await?;
            Ok(Redirect::to("/admin/bot?done=saved").into_response())
        }
        Err(e) => {
            let errors = FormErrors::from_domain(e)?;
            let body = render(&current.user, &csrf.0, &stored, None, &errors);
            Ok((StatusCode::UNPROCESSABLE_ENTITY, body).into_response())
        }
    }
}

#[derive(Deserialize)]
pub struct Empty {}

pub async fn test(
    State(state): State<AppState>,
    Admin(_): Admin,
    CsrfForm(_): CsrfForm<Empty>,
) -> Result<Response, PageError> {
    let settings = BotSettings::load(state.store(), state.secret()).await?;
    let outcome = if settings.watson.api_key.is_empty() || settings.watson.url.is_empty() {
        Err("save the service URL, assistant id and API key first".to_string())
    } else {
        WatsonBot::new(
            settings.watson.clone(),
            state.store().clone(),
            &state.config().egress,
        )
        .test_connection()
        .await
    };
    let to = match outcome {
        Ok(()) => "/admin/bot?test=ok".to_string(),
        Err(reason) => format!(
            "/admin/bot?test=failed&{}",
            serde_urlencoded::to_string([("reason", reason)]).unwrap_or_default()
        ),
    };
    Ok(Redirect::to(&to).into_response())
}
