//! Sites: the websites that embed the widget. Admins add, change and
//! remove them; their settings are validated here before they are stored,
//! and here is decided what removing one means and whether its widget
//! takes new chats, for every surface (the bootstrap, the socket, `start`).

use super::{DomainError, DomainResult, invalid, parse_name};
use crate::model::{Role, SiteId, User, WidgetPosition};
use crate::store::{FaqSites, Site, SiteRemoved, SiteSaved, SiteSettings, Store};

pub const MAX_GREETING: usize = 500;

/// An origin as browsers send it: `scheme://host[:port]`, nothing after.
pub fn parse_origin(input: &str) -> DomainResult<String> {
    let origin = input.trim().trim_end_matches('/');
    let bad = || {
        invalid(
            "allowed_origins",
            format!("`{origin}` is not an origin like https://shop.example.com (no path)"),
        )
    };
    let rest = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
        .ok_or_else(bad)?;
    let host = rest.split(':').next().unwrap_or("");
    let port_ok = match rest.split_once(':') {
        Some((_, port)) => port.parse::<u16>().is_ok(),
        None => true,
    };
    let host_ok = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
    if !host_ok || !port_ok || rest.contains('/') {
        return Err(bad());
    }
    Ok(origin.to_ascii_lowercase())
}

pub fn parse_color(input: &str) -> DomainResult<String> {
    let color = input.trim();
    let hex = color.strip_prefix('#').unwrap_or("");
    if !(hex.len() == 3 || hex.len() == 6) || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(invalid("color", "Use a colour like #1f5fc4."));
    }
    Ok(color.to_ascii_lowercase())
}

/// `bottom-right` or `bottom-left`; empty is the default, bottom right.
pub fn parse_position(input: &str) -> DomainResult<WidgetPosition> {
    match input.trim() {
        "" => Ok(WidgetPosition::BottomRight),
        other => WidgetPosition::parse(other).ok_or_else(|| {
            invalid(
                "position",
                "Place the widget at the bottom right or the bottom left.",
            )
        }),
    }
}

/// A site's settings as an admin's form gives them.
#[derive(Debug, Clone, Default)]
pub struct SiteForm<'a> {
    pub name: &'a str,
    pub origins: &'a str,
    pub greeting: &'a str,
    pub color: &'a str,
    pub require_email: bool,
    pub position: &'a str,
}

/// Checks every field of a site's settings form.
pub fn parse_settings(form: &SiteForm<'_>) -> DomainResult<SiteSettings> {
    if form.name.trim().is_empty() {
        return Err(invalid(
            "site_name",
            "Give the site a name: the chat shows it as its title.",
        ));
    }
    let name = parse_name(form.name).map_err(|e| match e {
        DomainError::Invalid { message, .. } => invalid("site_name", message),
        other => other,
    })?;
    let allowed_origins = form
        .origins
        .split(|c: char| c == '\n' || c == ',' || c.is_whitespace())
        .filter(|o| !o.trim().is_empty())
        .map(parse_origin)
        .collect::<DomainResult<Vec<_>>>()?;
    let greeting = form.greeting.trim().to_string();
    if greeting.chars().count() > MAX_GREETING {
        return Err(invalid(
            "greeting",
            format!("Use at most {MAX_GREETING} characters."),
        ));
    }
    Ok(SiteSettings {
        name,
        allowed_origins,
        greeting,
        color: parse_color(form.color)?,
        require_email: form.require_email,
        position: parse_position(form.position)?,
    })
}

/// Two sites may not share a name, whatever its case: agents tell their
/// chats apart by it, and the filters and the report list sites by it.
pub fn same_name(a: &str, b: &str) -> bool {
    a.trim().to_lowercase() == b.trim().to_lowercase()
}

fn admin_only(actor: &User) -> DomainResult<()> {
    if actor.role == Role::Admin {
        Ok(())
    } else {
        Err(DomainError::Forbidden("only admins manage sites"))
    }
}

fn name_taken(name: &str) -> DomainError {
    invalid(
        "site_name",
        format!(
            "Another site is already called {name}: give each site its own name, so that agents can tell their chats apart."
        ),
    )
}

/// Adds a site, with a fresh key for its widget tag.
pub async fn add(store: &Store, actor: &User, settings: &SiteSettings) -> DomainResult<SiteId> {
    admin_only(actor)?;
    match store.save_site(None, settings, same_name).await? {
        SiteSaved::Saved(id) => {
            store
                .audit(
                    Some(actor.id),
                    "site.add",
                    &format!(
                        "site {id} {:?}: origins {:?}",
                        settings.name, settings.allowed_origins
                    ),
                )
                .await?;
            Ok(id)
        }
        SiteSaved::NameTaken => Err(name_taken(&settings.name)),
        SiteSaved::Archived => Err(DomainError::Internal(
            "a new site cannot be archived".into(),
        )),
    }
}

/// Changes a site that is not archived.
pub async fn update(
    store: &Store,
    actor: &User,
    id: SiteId,
    settings: &SiteSettings,
) -> DomainResult<()> {
    admin_only(actor)?;
    match store.save_site(Some(id), settings, same_name).await? {
        SiteSaved::Saved(_) => {
            store
                .audit(
                    Some(actor.id),
                    "site.update",
                    &format!("site {id}: origins {:?}", settings.allowed_origins),
                )
                .await?;
            Ok(())
        }
        SiteSaved::NameTaken => Err(name_taken(&settings.name)),
        SiteSaved::Archived => Err(DomainError::Conflict(
            "This site is archived: it keeps the settings it had when it was removed. Add a new site for a new widget."
                .into(),
        )),
    }
}

/// What removing a site did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    /// It had no conversations: it is gone.
    Deleted,
    /// It had conversations: they stay readable, its widget takes no new chats.
    Archived,
}

/// Removes a site. One that has conversations is archived, so that its
/// history stays readable by staff and its customers' ticket pages keep
/// working; one without is deleted. The last site that is not archived
/// stays: tickets raised on the portal or by email are filed under it.
pub async fn remove(store: &Store, actor: &User, id: SiteId) -> DomainResult<Removal> {
    admin_only(actor)?;
    let site = store.site(id).await?.ok_or(DomainError::NotFound)?;
    let removal = match store.remove_site(id).await? {
        SiteRemoved::Deleted => Removal::Deleted,
        SiteRemoved::Archived => Removal::Archived,
        SiteRemoved::AlreadyArchived => {
            return Err(DomainError::Conflict(format!(
                "{} is archived already.",
                site.name
            )));
        }
        SiteRemoved::LastActive => {
            return Err(DomainError::Conflict(format!(
                "{} is the only site that takes chats, and tickets raised on the portal or by email are filed under it: add another site first, then remove this one.",
                site.name
            )));
        }
    };
    let done = match removal {
        Removal::Deleted => "site.delete",
        Removal::Archived => "site.archive",
    };
    store
        .audit(Some(actor.id), done, &format!("site {id} {:?}", site.name))
        .await?;
    Ok(removal)
}

/// Whether `site`'s widget takes a new chat: an archived one does not, and
/// says so in words its widget shows the customer.
pub fn takes_new_chats(site: &Site) -> DomainResult<()> {
    if site.is_archived() {
        return Err(DomainError::Gone(format!(
            "This chat is closed: {} no longer takes new chats here. If you wrote to us before, our answers reach you by email and on your ticket page.",
            site.name
        )));
    }
    Ok(())
}

/// Which sites an FAQ entry answers, from the form: `all`, or the ids
/// chosen among `sites` (sites that are not archived).
pub fn parse_faq_sites(all: bool, chosen: &[&str], sites: &[Site]) -> DomainResult<FaqSites> {
    if all {
        return Ok(FaqSites::All);
    }
    let mut ids = Vec::new();
    for value in chosen {
        let site = value
            .trim()
            .parse::<i64>()
            .ok()
            .and_then(|id| sites.iter().find(|s| s.id.0 == id && !s.is_archived()))
            .ok_or_else(|| {
                invalid(
                    "sites",
                    "One of the chosen sites no longer takes chats; reload the page and choose again.",
                )
            })?;
        if !ids.contains(&site.id) {
            ids.push(site.id);
        }
    }
    if ids.is_empty() {
        return Err(invalid(
            "sites",
            "Choose the sites this entry answers on, or answer on all sites.",
        ));
    }
    ids.sort();
    Ok(FaqSites::Only(ids))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_checked_and_normalised() {
        assert_eq!(
            parse_origin("https://Shop.Example.com/").unwrap(),
            "https://shop.example.com"
        );
        assert_eq!(
            parse_origin("http://127.0.0.1:8081").unwrap(),
            "http://127.0.0.1:8081"
        );
        for bad in [
            "shop.example.com",
            "https://shop.example.com/path",
            "ftp://x",
            "https://",
            "https://a b",
            "http://x:99999",
        ] {
            assert!(parse_origin(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn colours_are_hex() {
        assert_eq!(parse_color("#1F5FC4").unwrap(), "#1f5fc4");
        assert!(parse_color("blue").is_err());
        assert!(parse_color("#12345").is_err());
    }

    #[test]
    fn settings_split_origins_on_lines_commas_and_spaces() {
        let s = parse_settings(&SiteForm {
            name: "Shop",
            origins: "https://a.example\nhttps://b.example, http://c.example",
            greeting: "Hi",
            color: "#fff",
            require_email: true,
            position: "",
        })
        .unwrap();
        assert_eq!(s.allowed_origins.len(), 3);
        assert!(s.require_email);
        assert_eq!(s.position, WidgetPosition::BottomRight);
    }

    fn site(id: i64, name: &str, archived: bool) -> Site {
        Site {
            id: SiteId(id),
            key: format!("key{id}"),
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
    fn the_widget_sits_bottom_right_or_bottom_left_and_nowhere_else() {
        assert_eq!(parse_position("").unwrap(), WidgetPosition::BottomRight);
        assert_eq!(
            parse_position(" bottom-left ").unwrap(),
            WidgetPosition::BottomLeft
        );
        for bad in ["top-left", "left", "BOTTOM-LEFT", "bottom-left; x"] {
            let refused = parse_position(bad).unwrap_err();
            assert!(
                matches!(
                    refused,
                    DomainError::Invalid {
                        field: "position",
                        ..
                    }
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn names_are_the_same_whatever_their_case() {
        assert!(same_name("Shop", " shop "));
        assert!(same_name("Émile", "ÉMILE"));
        assert!(!same_name("Shop", "Shop 2"));
    }

    #[test]
    fn an_archived_site_takes_no_new_chat_and_says_so() {
        assert!(takes_new_chats(&site(1, "Shop", false)).is_ok());
        let refused = takes_new_chats(&site(1, "Shop", true)).unwrap_err();
        assert!(matches!(&refused, DomainError::Gone(_)), "{refused:?}");
        assert!(
            refused
                .to_string()
                .contains("Shop no longer takes new chats")
        );
    }

    #[test]
    fn faq_entries_answer_on_all_sites_or_on_chosen_live_ones() {
        let sites = [
            site(1, "Shop", false),
            site(2, "Help", false),
            site(3, "Old", true),
        ];
        assert_eq!(
            parse_faq_sites(true, &["2"], &sites).unwrap(),
            FaqSites::All
        );
        assert_eq!(
            parse_faq_sites(false, &["2", "1", "2"], &sites).unwrap(),
            FaqSites::Only(vec![SiteId(1), SiteId(2)])
        );
        // None chosen, an archived one, one that does not exist, not a number.
        for chosen in [&[][..], &["3"], &["9"], &["x"]] {
            let refused = parse_faq_sites(false, chosen, &sites).unwrap_err();
            assert!(
                matches!(refused, DomainError::Invalid { field: "sites", .. }),
                "{chosen:?}"
            );
        }
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            /// Whatever an admin types, a stored origin is one a browser
            /// could send: scheme, host, optional port, nothing else.
            #[test]
            fn an_accepted_origin_is_canonical(input in "(https?://)?[ -~]{0,30}") {
                if let Ok(origin) = parse_origin(&input) {
                    let rest = origin
                        .strip_prefix("https://")
                        .or_else(|| origin.strip_prefix("http://"));
                    prop_assert!(rest.is_some(), "{origin}");
                    let rest = rest.unwrap();
                    prop_assert!(!rest.is_empty() && !rest.contains('/'));
                    prop_assert!(!origin.chars().any(|c| c.is_whitespace() || c.is_ascii_uppercase()));
                    prop_assert_eq!(parse_origin(&origin).unwrap(), origin.clone());
                }
            }
        }
    }
}
