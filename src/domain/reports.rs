//! The admins' report: how the support team is doing over a period. How
//! many chats the bot answered alone, how many tickets came and went, how
//! long customers waited for a first answer and for a resolution, and how
//! they rated it, for the team, per person and per site.

use std::collections::BTreeMap;

use super::{DomainError, DomainResult};

use crate::model::{Role, SiteId, User};
use crate::store::{ReportRows, Site, Store};

/// The periods a report covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    Week,
    Month,
    Quarter,
}

impl Period {
    pub const ALL: [Period; 3] = [Period::Week, Period::Month, Period::Quarter];

    /// From the `days` of a link (`7`, `30`, `90`); none: a week.
    pub fn parse(days: Option<&str>) -> DomainResult<Period> {
        match days.map(str::trim) {
            None | Some("") | Some("7") => Ok(Period::Week),
            Some("30") => Ok(Period::Month),
            Some("90") => Ok(Period::Quarter),
            Some(_) => Err(super::invalid(
                "days",
                "A report covers the last 7, 30 or 90 days.",
            )),
        }
    }

    pub fn days(self) -> i64 {
        match self {
            Period::Week => 7,
            Period::Month => 30,
            Period::Quarter => 90,
        }
    }
}

/// The middle and the 90th percentile of some durations, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spread {
    pub median: i64,
    pub p90: i64,
    /// How many durations they are of.
    pub count: usize,
}

impl Spread {
    /// Nearest-rank percentiles; none for no durations.
    pub fn of(mut durations: Vec<i64>) -> Option<Spread> {
        if durations.is_empty() {
            return None;
        }
        durations.sort_unstable();
        let rank = |p: usize| durations[(durations.len() * p).div_ceil(100).max(1) - 1];
        Some(Spread {
            median: rank(50),
            p90: rank(90),
            count: durations.len(),
        })
    }
}

/// Customer satisfaction: ratings of 1 to 5 stars.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Satisfaction {
    pub ratings: usize,
    /// Mean stars.
    pub average: f64,
    /// Share of ratings of 4 or 5 stars, in percent.
    pub satisfied_percent: f64,
}

impl Satisfaction {
    fn of(scores: &[i64]) -> Option<Satisfaction> {
        if scores.is_empty() {
            return None;
        }
        let n = scores.len() as f64;
        Some(Satisfaction {
            ratings: scores.len(),
            average: scores.iter().sum::<i64>() as f64 / n,
            satisfied_percent: scores.iter().filter(|&&s| s >= 4).count() as f64 * 100.0 / n,
        })
    }
}

/// One person's figures over the period (tickets by who has them now).
#[derive(Debug, Clone, PartialEq)]
pub struct PersonFigures {
    pub name: String,
    pub email: String,
    pub resolved: usize,
    pub first_response: Option<Spread>,
    pub satisfaction: Option<Satisfaction>,
}

/// One site's figures over the period (by the site each conversation came from).
#[derive(Debug, Clone, PartialEq)]
pub struct SiteFigures {
    pub id: SiteId,
    pub name: String,
    pub archived: bool,
    pub conversations: i64,
    pub bot_only: i64,
    pub tickets_opened: i64,
    pub tickets_resolved: usize,
    pub first_response: Option<Spread>,
    pub satisfaction: Option<Satisfaction>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub period: Period,
    /// Conversations started (chats and tickets raised from the portal).
    pub conversations: i64,
    /// Of those, the ones the bot answered without a person.
    pub bot_only: i64,
    pub tickets_opened: i64,
    pub tickets_resolved: usize,
    /// Open tickets nobody has answered yet, now.
    pub awaiting_first_response: i64,
    /// Opened in the period: from opening to the first answer a customer saw.
    pub first_response: Option<Spread>,
    /// Resolved in the period: from opening to resolution.
    pub resolution: Option<Spread>,
    pub satisfaction: Option<Satisfaction>,
    /// Agents and admins, by name; people with nothing in the period too,
    /// so that nobody is missing from the table.
    pub people: Vec<PersonFigures>,
    /// Every site that takes chats, and archived ones with something in
    /// the period; oldest first.
    pub sites: Vec<SiteFigures>,
}

impl Report {
    /// The share of conversations the bot answered alone, in percent.
    pub fn bot_only_percent(&self) -> Option<f64> {
        (self.conversations > 0).then(|| self.bot_only as f64 * 100.0 / self.conversations as f64)
    }
}

/// The report over the `period` before `now_ms`, for an admin.
pub async fn report(
    store: &Store,
    viewer: &User,
    period: Period,
    now_ms: i64,
) -> DomainResult<Report> {
    if viewer.role != Role::Admin {
        return Err(DomainError::NotFound);
    }
    let since = now_ms - period.days() * 24 * 3_600_000;
    let rows = store.report_rows(since).await?;
    let staff = store.staff().await?;
    let sites = store.sites().await?;
    Ok(compile(period, &rows, &staff, &sites))
}

/// Each site's figures from the rows.
fn by_site(rows: &ReportRows, sites: &[Site]) -> Vec<SiteFigures> {
    sites
        .iter()
        .map(|site| {
            let counts = rows.by_site.get(&site.id).copied().unwrap_or_default();
            let here = |id: SiteId| id == site.id;
            let scores: Vec<i64> = rows
                .ratings
                .iter()
                .filter(|r| here(r.site_id))
                .map(|r| r.score)
                .collect();
            SiteFigures {
                id: site.id,
                name: site.name.clone(),
                archived: site.is_archived(),
                conversations: counts.conversations,
                bot_only: counts.without_ticket,
                tickets_opened: counts.opened,
                tickets_resolved: rows.resolutions.iter().filter(|t| here(t.site_id)).count(),
                first_response: Spread::of(
                    rows.first_responses
                        .iter()
                        .filter(|t| here(t.site_id))
                        .map(|t| t.ms)
                        .collect(),
                ),
                satisfaction: Satisfaction::of(&scores),
            }
        })
        .filter(|s| {
            !s.archived
                || s.conversations > 0
                || s.tickets_opened > 0
                || s.tickets_resolved > 0
                || s.satisfaction.is_some()
        })
        .collect()
}

/// The figures from the rows (no I/O: tested on its own).
fn compile(period: Period, rows: &ReportRows, staff: &[User], sites: &[Site]) -> Report {
    #[derive(Default)]
    struct Theirs {
        waits: Vec<i64>,
        resolved: usize,
        scores: Vec<i64>,
    }
    let mut people: BTreeMap<i64, Theirs> = BTreeMap::new();
    for t in &rows.first_responses {
        if let Some(who) = t.assignee_id {
            people.entry(who).or_default().waits.push(t.ms);
        }
    }
    for t in &rows.resolutions {
        if let Some(who) = t.assignee_id {
            people.entry(who).or_default().resolved += 1;
        }
    }
    for r in &rows.ratings {
        if let Some(who) = r.assignee_id {
            people.entry(who).or_default().scores.push(r.score);
        }
    }
    let scores: Vec<i64> = rows.ratings.iter().map(|r| r.score).collect();
    Report {
        period,
        conversations: rows.conversations,
        bot_only: rows.without_ticket,
        tickets_opened: rows.opened,
        tickets_resolved: rows.resolutions.len(),
        awaiting_first_response: rows.awaiting_first_response,
        first_response: Spread::of(rows.first_responses.iter().map(|t| t.ms).collect()),
        resolution: Spread::of(rows.resolutions.iter().map(|t| t.ms).collect()),
        satisfaction: Satisfaction::of(&scores),
        sites: by_site(rows, sites),
        people: staff
            .iter()
            .map(|person| {
                let theirs = people.remove(&person.id.0).unwrap_or_default();
                PersonFigures {
                    name: person.name.clone(),
                    email: person.email.clone(),
                    resolved: theirs.resolved,
                    first_response: Spread::of(theirs.waits),
                    satisfaction: Satisfaction::of(&theirs.scores),
                }
            })
            .collect(),
    }
}

/// A duration as people say it: `45 s`, `12 min`, `3 h 5 min`, `2 d 4 h`.
pub fn human_duration(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min", s / 60),
        3600..86_400 => match (s / 3600, s % 3600 / 60) {
            (h, 0) => format!("{h} h"),
            (h, m) => format!("{h} h {m} min"),
        },
        _ => match (s / 86_400, s % 86_400 / 3600) {
            (d, 0) => format!("{d} d"),
            (d, h) => format!("{d} d {h} h"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{UserId, WidgetPosition};
    use crate::store::{RatingGiven, SiteCounts, TicketTime};

    const MIN: i64 = 60_000;

    fn person(id: i64, name: &str) -> User {
        User {
            id: UserId(id),
            email: format!("{}@example.com", name.to_lowercase()),
            name: name.into(),
            role: Role::Agent,
            verified: true,
            created_at: 0,
        }
    }

    #[test]
    fn periods_come_from_the_link_and_nothing_else() {
        assert_eq!(Period::parse(None).unwrap(), Period::Week);
        assert_eq!(Period::parse(Some("30")).unwrap(), Period::Month);
        assert_eq!(Period::parse(Some(" 90 ")).unwrap().days(), 90);
        for bad in ["0", "-7", "365", "7; DROP TABLE tickets", "abc"] {
            let refused = Period::parse(Some(bad)).unwrap_err();
            assert!(refused.to_string().contains("7, 30 or 90"), "{bad}");
        }
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        assert_eq!(Spread::of(vec![]), None);
        let one = Spread::of(vec![5]).unwrap();
        assert_eq!((one.median, one.p90, one.count), (5, 5, 1));
        let ten = Spread::of((1..=10).rev().collect()).unwrap();
        assert_eq!((ten.median, ten.p90), (5, 9));
        let two = Spread::of(vec![10, 20]).unwrap();
        assert_eq!((two.median, two.p90), (10, 20));
    }

    #[test]
    fn figures_credit_whoever_has_the_ticket_and_list_everyone() {
        let time = |who: Option<i64>, minutes: i64| TicketTime {
            assignee_id: who,
            site_id: SiteId(1),
            ms: minutes * MIN,
        };
        let rows = ReportRows {
            conversations: 8,
            without_ticket: 5,
            opened: 3,
            by_site: Default::default(),
            first_responses: vec![time(Some(1), 4), time(Some(2), 2)],
            // One opened before the period and resolved in it counts here.
            resolutions: vec![time(Some(1), 60), time(Some(1), 330)],
            awaiting_first_response: 1,
            ratings: vec![
                RatingGiven {
                    score: 5,
                    assignee_id: Some(1),
                    site_id: SiteId(1),
                },
                RatingGiven {
                    score: 2,
                    assignee_id: Some(2),
                    site_id: SiteId(1),
                },
                RatingGiven {
                    score: 4,
                    assignee_id: None,
                    site_id: SiteId(1),
                },
            ],
        };
        let staff = [person(1, "Alan"), person(2, "Bea"), person(3, "Cy")];
        let report = compile(Period::Week, &rows, &staff, &[]);
        assert_eq!(report.tickets_opened, 3);
        assert_eq!(report.tickets_resolved, 2);
        assert_eq!(report.bot_only_percent(), Some(62.5));
        let first = report.first_response.unwrap();
        assert_eq!(
            (first.median, first.p90, first.count),
            (2 * MIN, 4 * MIN, 2)
        );
        let resolution = report.resolution.unwrap();
        assert_eq!((resolution.median, resolution.p90), (60 * MIN, 330 * MIN));
        let csat = report.satisfaction.unwrap();
        assert_eq!(csat.ratings, 3);
        assert!((csat.average - 11.0 / 3.0).abs() < 1e-9);
        assert!((csat.satisfied_percent - 200.0 / 3.0).abs() < 1e-9);

        let by_name: Vec<_> = report
            .people
            .iter()
            .map(|p| {
                (
                    p.name.as_str(),
                    p.resolved,
                    p.first_response.map(|s| s.median),
                )
            })
            .collect();
        assert_eq!(
            by_name,
            [
                ("Alan", 2, Some(4 * MIN)),
                ("Bea", 0, Some(2 * MIN)),
                // Nothing this period, still listed.
                ("Cy", 0, None),
            ]
        );
        assert_eq!(report.people[1].satisfaction.unwrap().average, 2.0);
        assert_eq!(report.people[2].satisfaction, None);
    }

    fn site(id: i64, name: &str, archived: bool) -> Site {
        Site {
            id: SiteId(id),
            key: format!("k{id}"),
            name: name.into(),
            allowed_origins: Vec::new(),
            greeting: String::new(),
            color: "#fff".into(),
            require_email: false,
            position: WidgetPosition::BottomRight,
            archived_at: archived.then_some(1),
        }
    }

    #[test]
    fn each_site_gets_the_figures_of_its_own_conversations() {
        let time = |site: i64, minutes: i64| TicketTime {
            assignee_id: None,
            site_id: SiteId(site),
            ms: minutes * MIN,
        };
        let rating = |site: i64, score: i64| RatingGiven {
            score,
            assignee_id: None,
            site_id: SiteId(site),
        };
        let counts = |conversations, without_ticket, opened| SiteCounts {
            conversations,
            without_ticket,
            opened,
        };
        let rows = ReportRows {
            conversations: 7,
            without_ticket: 4,
            opened: 3,
            by_site: [(SiteId(1), counts(4, 2, 2)), (SiteId(2), counts(3, 2, 1))].into(),
            first_responses: vec![time(1, 10), time(1, 20), time(2, 3)],
            resolutions: vec![time(2, 30)],
            awaiting_first_response: 0,
            ratings: vec![rating(1, 5), rating(2, 1), rating(2, 3)],
        };
        let sites = [
            site(1, "Shop", false),
            site(2, "Help centre", true),
            site(3, "Old brand", true),
            site(4, "New brand", false),
        ];
        let report = compile(Period::Week, &rows, &[], &sites);
        let names: Vec<&str> = report.sites.iter().map(|s| s.name.as_str()).collect();
        // An archived site with nothing in the period is left out; a site
        // that takes chats is listed even with nothing yet.
        assert_eq!(names, ["Shop", "Help centre", "New brand"]);
        let (shop, help, new) = (&report.sites[0], &report.sites[1], &report.sites[2]);
        assert_eq!(
            (
                shop.conversations,
                shop.bot_only,
                shop.tickets_opened,
                shop.tickets_resolved
            ),
            (4, 2, 2, 0)
        );
        assert_eq!(shop.first_response.unwrap().median, 10 * MIN);
        assert_eq!(shop.satisfaction.unwrap().average, 5.0);
        assert!(help.archived);
        assert_eq!((help.conversations, help.tickets_resolved), (3, 1));
        assert_eq!(help.first_response.unwrap().count, 1);
        assert_eq!(help.satisfaction.unwrap().average, 2.0);
        assert_eq!(
            (new.conversations, new.first_response, new.satisfaction),
            (0, None, None)
        );
    }

    #[test]
    fn durations_read_like_people_say_them() {
        assert_eq!(human_duration(-5), "0 s");
        assert_eq!(human_duration(45_000), "45 s");
        assert_eq!(human_duration(12 * MIN + 59_000), "12 min");
        assert_eq!(human_duration(180 * MIN), "3 h");
        assert_eq!(human_duration(185 * MIN), "3 h 5 min");
        assert_eq!(human_duration(2 * 1440 * MIN + 4 * 60 * MIN), "2 d 4 h");
        assert_eq!(human_duration(2 * 1440 * MIN), "2 d");
    }
}
