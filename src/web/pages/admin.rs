//! Admin: the people who work tickets. Create agents and admins, change
//! anyone's role by email, and set how many chats each takes at once.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{FormErrors, csrf_field, field, form_errors, page, required, time};
use crate::domain::{DomainError, accounts, invalid};
use crate::model::{Role, User};
use crate::web::AppState;
use crate::web::csrf::{CsrfForm, CsrfToken};
use crate::web::error::PageError;
use crate::web::session::Admin;

#[derive(Deserialize, Default)]
pub struct Notice {
    #[serde(default)]
    done: String,
}

#[derive(Deserialize, Default)]
pub struct CreateForm {
    name: String,
    email: String,
    role: String,
}

/// Field names as the page's form sends them (`role_email`, so that its
/// error shows under its own field and not under the invitation's).
#[derive(Deserialize, Default)]
pub struct RoleForm {
    #[serde(rename = "role_email")]
    email: String,
    role: String,
}

#[derive(Deserialize, Default)]
pub struct CapacityForm {
    capacity_email: String,
    capacity: String,
}

/// The forms as the person filled them in, shown again with their errors.
#[derive(Default)]
struct Filled {
    create: CreateForm,
    role: RoleForm,
    capacity: CapacityForm,
}

fn role_select(name: &str, current: &str, with_customer: bool) -> Markup {
    html! {
        select id=(name) name="role" {
            @for role in Role::ALL {
                @if with_customer || role.is_staff() {
                    option value=(role.as_str()) selected[role.as_str() == current] { (role.as_str()) }
                }
            }
        }
    }
}

fn render(
    admin: &User,
    csrf: &str,
    staff: &[(User, i64)],
    notice: Option<&str>,
    filled: &Filled,
    errors: &FormErrors,
) -> Markup {
    let Filled {
        create,
        role,
        capacity,
    } = filled;
    page(
        "People",
        Some(admin),
        csrf,
        html! {
            h1 { "People" }
            (super::settings::admin_nav("/admin/people"))
            @if let Some(notice) = notice { div.notice role="status" { p { (notice) } } }
            (form_errors(errors, &["name", "email", "role_email", "capacity_email", "capacity"]))
            table.people {
                caption { "Agents and admins" }
                thead { tr { th scope="col" { "Name" } th scope="col" { "Email" } th scope="col" { "Role" } th scope="col" { "Chats at once" } th scope="col" { "Since" } } }
                tbody {
                    @for (person, chats) in staff {
                        tr { td { (person.name) } td { (person.email) } td { (person.role) } td { (chats) } td { (time(person.created_at)) } }
                    }
                }
            }
            div.grid {
                section.card {
                    h2 { "Invite an agent" }
                    p.hint { "They get an email with a link to choose their password (valid 72 hours)." }
                    form method="post" action="/admin/people" {
                        (csrf_field(csrf))
                        (field("Name", "name", "text", &create.name, errors, required("off")))
                        (field("Email", "email", "email", &create.email, errors, required("off")))
                        div.field { label for="create-role" { "Role" } (role_select("create-role", if create.role.is_empty() { "agent" } else { &create.role }, false)) }
                        button type="submit" { "Send invitation" }
                    }
                }
                section.card {
                    h2 { "Change a role" }
                    p.hint { "Promote a customer to agent, or change an agent's role." }
                    form method="post" action="/admin/people/role" {
                        (csrf_field(csrf))
                        (field("Email", "role_email", "email", &role.email, errors, required("off")))
                        div.field { label for="change-role" { "New role" } (role_select("change-role", &role.role, true)) }
                        button type="submit" { "Change role" }
                    }
                }
                section.card {
                    h2 { "Chats at once" }
                    p.hint { "How many live chats routing gives this person at a time (1 to " (accounts::MAX_CAPACITY) "). Raised while they are online, they take what is waiting at once." }
                    form method="post" action="/admin/people/capacity" {
                        (csrf_field(csrf))
                        (field("Email", "capacity_email", "email", &capacity.capacity_email, errors, required("off")))
                        (field("Chats at once", "capacity", "number", &capacity.capacity, errors, required("off")))
                        button type="submit" { "Save" }
                    }
                }
            }
        },
    )
}

pub async fn people(
    State(state): State<AppState>,
    Admin(current): Admin,
    csrf: CsrfToken,
    Query(notice): Query<Notice>,
) -> Result<Response, PageError> {
    let staff = state.store().staff_with_capacity().await?;
    let notice = match notice.done.as_str() {
        "created" => Some("The person was invited: they get an email to choose a password."),
        "role" => Some("The role was changed."),
        "capacity" => Some("Chats at once were saved."),
        _ => None,
    };
    Ok(render(
        &current.user,
        &csrf.0,
        &staff,
        notice,
        &Filled::default(),
        &FormErrors::default(),
    )
    .into_response())
}

async fn failed(
    state: &AppState,
    admin: &User,
    csrf: &str,
    e: DomainError,
    filled: &Filled,
) -> Result<Response, PageError> {
    let errors = FormErrors::from_domain(e)?;
    let staff = state.store().staff_with_capacity().await?;
    Ok((
        StatusCode::UNPROCESSABLE_ENTITY,
        render(admin, csrf, &staff, None, filled, &errors),
    )
        .into_response())
}

pub async fn create(
    State(state): State<AppState>,
    Admin(current): Admin,
    csrf: CsrfToken,
    CsrfForm(form): CsrfForm<CreateForm>,
) -> Result<Response, PageError> {
    let result = match Role::parse(&form.role) {
        Some(role) => {
            accounts::create_staff(
                state.store(),
                &current.user,
                &form.name,
                &form.email,
                role,
                &state.config().public_url,
            )
            .await
        }
        None => Err(invalid("role", "Choose agent or admin.")),
    };
    match result {
        Ok(_) => Ok(Redirect::to("/admin/people?done=created").into_response()),
        Err(e) => {
            let filled = Filled {
                create: form,
                ..Filled::default()
            };
            failed(&state, &current.user, &csrf.0, e, &filled).await
        }
    }
}

pub async fn change_role(
    State(state): State<AppState>,
    Admin(current): Admin,
    csrf: CsrfToken,
    CsrfForm(form): CsrfForm<RoleForm>,
) -> Result<Response, PageError> {
    let result = async {
        let role = Role::parse(&form.role)
            .ok_or_else(|| invalid("role", "Choose a role from the list."))?;
        let target = accounts::person_by_email(state.store(), &form.email, "role_email").await?;
        accounts::change_role(state.store(), state.bus(), &current.user, target.id, role).await
    }
    .await;
    match result {
        Ok(_) => Ok(Redirect::to("/admin/people?done=role").into_response()),
        Err(e) => {
            let filled = Filled {
                role: form,
                ..Filled::default()
            };
            failed(&state, &current.user, &csrf.0, e, &filled).await
        }
    }
}

pub async fn set_capacity(
    State(state): State<AppState>,
    Admin(current): Admin,
    csrf: CsrfToken,
    CsrfForm(form): CsrfForm<CapacityForm>,
) -> Result<Response, PageError> {
    let result = accounts::set_capacity(
        state.store(),
        &current.user,
        &form.capacity_email,
        &form.capacity,
    )
    .await;
    match result {
        Ok(target) => {
            // Routing may give them more now; a failure here leaves the
            // setting saved and the queue as it was.
            if let Err(e) = state.chat().pick_up_waiting(&target).await {
                tracing::warn!(error = %e, "capacity saved; picking up waiting chats failed");
            }
            Ok(Redirect::to("/admin/people?done=capacity").into_response())
        }
        Err(e) => {
            let filled = Filled {
                capacity: form,
                ..Filled::default()
            };
            failed(&state, &current.user, &csrf.0, e, &filled).await
        }
    }
}
