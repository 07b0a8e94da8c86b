//! The admins' report page (`/admin/reports`): the team's figures over the
//! last 7, 30 or 90 days (`domain::reports`), for the team, by person and
//! by site.

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::page;
use super::settings::admin_nav;
use crate::domain::reports::{self, Period, Satisfaction, Spread, human_duration};
use crate::store::now_ms;
use crate::web::AppState;
use crate::web::csrf::CsrfToken;
use crate::web::error::PageError;
use crate::web::session::Admin;

#[derive(Deserialize, Default)]
pub struct ReportQuery {
    days: Option<String>,
}

pub async fn show(
    State(state): State<AppState>,
    Admin(current): Admin,
    csrf: CsrfToken,
    Query(query): Query<ReportQuery>,
) -> Result<Response, PageError> {
    let period = Period::parse(query.days.as_deref())?;
    let report = reports::report(state.store(), &current.user, period, now_ms()).await?;
    let body = html! {
        h1 { "Reports" }
        (admin_nav("/admin/reports"))
        nav.subnav aria-label="Period" {
            @for p in Period::ALL {
                a href={ "/admin/reports?days=" (p.days()) }
                  aria-current=[(p == period).then_some("page")] { "Last " (p.days()) " days" }
            }
        }
        div.grid {
            section.card aria-labelledby="r-chats" {
                h2 #r-chats { "Conversations" }
                dl.summary {
                    dt { "Started" } dd #conversations { (report.conversations) }
                    dt { "Answered by the bot alone" }
                    dd #bot-only {
                        (report.bot_only)
                        @if let Some(share) = report.bot_only_percent() { " (" (format!("{share:.0}")) " %)" }
                    }
                }
            }
            section.card aria-labelledby="r-tickets" {
                h2 #r-tickets { "Tickets" }
                dl.summary {
                    dt { "Opened" } dd #opened { (report.tickets_opened) }
                    dt { "Resolved" } dd #resolved { (report.tickets_resolved) }
                    dt { "Open, not answered yet" } dd #awaiting { (report.awaiting_first_response) }
                }
            }
            section.card aria-labelledby="r-times" {
                h2 #r-times { "Waiting times" }
                dl.summary {
                    dt { "First answer" } dd #first-response { (spread(report.first_response)) }
                    dt { "Resolution" } dd #resolution { (spread(report.resolution)) }
                }
                p.hint { "Median, and the time within which 9 in 10 were answered or resolved." }
            }
            section.card aria-labelledby="r-csat" {
                h2 #r-csat { "Satisfaction" }
                p #satisfaction { (satisfaction(report.satisfaction)) }
            }
        }
        section.card aria-labelledby="r-sites" {
            h2 #r-sites { "By site" }
            p.hint { "Each conversation counts for the site its chat came from; tickets raised on the portal or by email count for the default site." }
            table #sites {
                thead { tr {
                    th scope="col" { "Site" }
                    th scope="col" { "Conversations" }
                    th scope="col" { "Bot alone" }
                    th scope="col" { "Tickets opened" }
                    th scope="col" { "Resolved" }
                    th scope="col" { "First answer" }
                    th scope="col" { "Satisfaction" }
                } }
                tbody {
                    @for site in &report.sites {
                        tr data-site=(site.id) {
                            th scope="row" {
                                (site.name)
                                @if site.archived { " " span.hint { "(archived)" } }
                            }
                            td.conversations { (site.conversations) }
                            td.bot-only { (site.bot_only) }
                            td.opened { (site.tickets_opened) }
                            td.resolved { (site.tickets_resolved) }
                            td { (spread(site.first_response)) }
                            td { (satisfaction(site.satisfaction)) }
                        }
                    }
                }
            }
        }
        section.card aria-labelledby="r-people" {
            h2 #r-people { "By person" }
            p.hint { "Tickets count for whoever has them now; ratings for whoever had the chat." }
            table #people {
                thead { tr {
                    th scope="col" { "Person" }
                    th scope="col" { "Resolved" }
                    th scope="col" { "First answer" }
                    th scope="col" { "Satisfaction" }
                } }
                tbody {
                    @for person in &report.people {
                        tr {
                            th scope="row" { (person.name) " " span.hint { (person.email) } }
                            td { (person.resolved) }
                            td { (spread(person.first_response)) }
                            td { (satisfaction(person.satisfaction)) }
                        }
                    }
                }
            }
        }
    };
    Ok(page("Reports", Some(&current.user), &csrf.0, body).into_response())
}

fn spread(spread: Option<Spread>) -> Markup {
    match spread {
        Some(s) => html! {
            (human_duration(s.median)) " median, " (human_duration(s.p90)) " for 9 in 10"
            " (" (count(s.count, "ticket")) ")"
        },
        None => html! { span.empty { "none yet" } },
    }
}

fn satisfaction(satisfaction: Option<Satisfaction>) -> Markup {
    match satisfaction {
        Some(s) => html! {
            (format!("{:.1}", s.average)) " of 5 stars, "
            (format!("{:.0}", s.satisfied_percent)) " % 4 or 5 (" (count(s.ratings, "rating")) ")"
        },
        None => html! { span.empty { "no ratings yet" } },
    }
}

/// `1 rating`, `2 ratings`.
fn count(n: usize, thing: &str) -> String {
    if n == 1 {
        format!("1 {thing}")
    } else {
        format!("{n} {thing}s")
    }
}
