//! Merging two contacts that are one person (the same customer chatting
//! from two browsers, or once by email): the second's conversations,
//! tickets, notes and attributes go to the first, which keeps its own
//! details where both have one. Refused, with the reason, when the two are
//! provably different people: each has their own account, or the host site
//! signed a different user id for each. Only staff merge.
//!
//! The merged contact's widget tokens end: a browser that still holds one
//! starts again as a new visitor (docs/decisions.md says why).

use serde_json::{Map, Value};

use super::chat::Chat;
use super::contacts::{MAX_ATTRIBUTES, find, staff_only};
use super::{DomainError, DomainResult, invalid};
use crate::model::{User, VisitorId};
use crate::store::{Contact, ContactFilter, MergeMoved, MergeSide, MergedDetails, Store};

/// What a merge did: the contact as it is now, and what moved to it.
#[derive(Debug)]
pub struct Merged {
    pub contact: Contact,
    pub moved: MergeMoved,
}

/// The contact `text` names for a merge into `into`: `#12` or `12` (an id),
/// or an email of exactly one other contact of the same site.
pub async fn pick(
    store: &Store,
    viewer: &User,
    into: &Contact,
    text: &str,
) -> DomainResult<VisitorId> {
    staff_only(viewer)?;
    let text = text.trim();
    let number = text.strip_prefix('#').unwrap_or(text);
    if let Ok(id) = number.parse::<i64>() {
        return Ok(VisitorId(id));
    }
    if !text.contains('@') {
        return Err(invalid(
            "from",
            "Enter the other contact's id (like 42) or their email address.",
        ));
    }
    let wanted = text.to_lowercase();
    let found: Vec<Contact> = store
        .contacts(&ContactFilter {
            query: Some(wanted.clone()),
            site: Some(into.site_id),
            before: None,
            limit: 200,
        })
        .await?
        .into_iter()
        .filter(|c| c.id != into.id && c.email.to_lowercase() == wanted)
        .collect();
    match found.as_slice() {
        [] => Err(invalid(
            "from",
            format!(
                "No other contact of {} has the email {text}.",
                into.site_name
            ),
        )),
        [one] => Ok(one.id),
        several => Err(invalid(
            "from",
            format!(
                "{} contacts have the email {text}: merge them one at a time by id ({}).",
                several.len(),
                several
                    .iter()
                    .map(|c| format!("#{}", c.id.0))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
    }
}

/// How a contact is named in a timeline entry and the audit log.
fn label(contact: &Contact) -> String {
    let name = if contact.name.trim().is_empty() {
        "a visitor"
    } else {
        contact.name.as_str()
    };
    if contact.email.is_empty() {
        format!("{name} (#{})", contact.id.0)
    } else {
        format!("{name} <{}> (#{})", contact.email, contact.id.0)
    }
}

/// Why `from` may not be merged into `into`, if it may not.
fn refusal(into: &Contact, from: &Contact) -> Option<DomainError> {
    if into.id == from.id {
        return Some(invalid(
            "from",
            "A contact cannot be merged into itself: pick the other contact.",
        ));
    }
    if into.site_id != from.site_id {
        return Some(invalid(
            "from",
            format!(
                "These contacts came from different sites ({} and {}): a contact is a person on one site, whose widget and verified identity are that site's.",
                into.site_name, from.site_name
            ),
        ));
    }
    if into.account.is_some() && from.account.is_some() {
        return Some(invalid(
            "from",
            "Both contacts have their own Careline account: each logs in as a different person, and one account cannot be folded into another.",
        ));
    }
    if let (Some(a), Some(b)) = (&into.external_id, &from.external_id) {
        return Some(invalid(
            "from",
            format!(
                "The host site signed a different user id for each ({a} and {b}): its server says they are two people. Merge them there."
            ),
        ));
    }
    None
}

/// The attributes of both: `into`'s win where both have a key.
fn both_attributes(into: &Contact, from: &Contact) -> DomainResult<String> {
    let mut merged: Map<String, Value> = serde_json::from_str(&from.attributes).unwrap_or_default();
    let theirs: Map<String, Value> = serde_json::from_str(&into.attributes).unwrap_or_default();
    merged.extend(theirs);
    if merged.len() > MAX_ATTRIBUTES {
        return Err(invalid(
            "from",
            format!(
                "Together these contacts have {} attributes, more than the {MAX_ATTRIBUTES} a contact holds: remove some first.",
                merged.len()
            ),
        ));
    }
    Ok(Value::Object(merged).to_string())
}

/// What `into` is after taking `from` in: its own details stay, gaps are
/// filled from `from`; an account or signed id `from` had comes along,
/// with the email proven with it.
fn merged_details(into: &Contact, from: &Contact) -> DomainResult<MergedDetails> {
    let takes_identity = into.account.is_none()
        && into.external_id.is_none()
        && (from.account.is_some() || from.external_id.is_some());
    let email = if (takes_identity || into.email.is_empty()) && !from.email.is_empty() {
        Some((from.email.clone(), from.email_verified))
    } else {
        None
    };
    Ok(MergedDetails {
        name: (into.name.trim().is_empty() && !from.name.trim().is_empty())
            .then(|| from.name.clone()),
        email,
        account: into.account.or(from.account),
        external_id: into
            .external_id
            .clone()
            .or_else(|| from.external_id.clone()),
        attributes: both_attributes(into, from)?,
    })
}

/// The two contacts of a merge, once it is known the merge may be done:
/// for a confirmation that shows who goes into whom.
pub async fn preview(
    store: &Store,
    viewer: &User,
    into: VisitorId,
    from: VisitorId,
) -> DomainResult<(Contact, Contact)> {
    let into = find(store, viewer, into).await?;
    let from = match find(store, viewer, from).await {
        Ok(from) => from,
        Err(DomainError::NotFound) => {
            return Err(invalid(
                "from",
                format!(
                    "There is no contact #{} to merge (or it was merged already).",
                    from.0
                ),
            ));
        }
        Err(e) => return Err(e),
    };
    if let Some(refused) = refusal(&into, &from) {
        return Err(refused);
    }
    both_attributes(&into, &from)?;
    Ok((into, from))
}

/// Merges contact `from` into contact `into`, in one transaction; each
/// moved ticket's timeline says so and who did it. Consoles showing a
/// moved conversation are told who its customer is now.
pub async fn merge(
    chat: &Chat,
    viewer: &User,
    into: VisitorId,
    from: VisitorId,
) -> DomainResult<Merged> {
    let store = chat.store();
    let (into, from) = preview(store, viewer, into, from).await?;
    let details = merged_details(&into, &from)?;
    let side = |c: &Contact| MergeSide {
        id: c.id,
        account: c.account,
        external_id: c.external_id.clone(),
    };
    let moved = store
        .merge_contacts(
            viewer,
            (&side(&into), &side(&from)),
            &details,
            (&label(&from), &label(&into)),
        )
        .await?;
    for &conversation in &moved.conversations {
        chat.publish_conversation(conversation).await?;
    }
    let contact = find(store, viewer, into.id).await?;
    Ok(Merged { contact, moved })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{SiteId, UserId};

    fn contact(id: i64) -> Contact {
        Contact {
            id: VisitorId(id),
            site_id: SiteId(1),
            site_name: "Shop".into(),
            name: String::new(),
            email: String::new(),
            email_verified: false,
            external_id: None,
            account: None,
            attributes: "{}".into(),
            created_at: 0,
            last_seen_at: 0,
            merged_into: None,
        }
    }

    #[test]
    fn provably_different_people_are_not_merged() {
        let one = contact(1);
        assert!(refusal(&one, &one).is_some(), "not into itself");
        let (mut a, mut b) = (contact(1), contact(2));
        assert!(refusal(&a, &b).is_none());
        a.account = Some(UserId(10));
        assert!(refusal(&a, &b).is_none(), "one account is fine");
        b.account = Some(UserId(11));
        assert!(refusal(&a, &b).is_some(), "two accounts");
        let (mut a, mut b) = (contact(1), contact(2));
        a.external_id = Some("u-1".into());
        b.external_id = Some("u-2".into());
        assert!(refusal(&a, &b).is_some(), "two signed ids");
        let (a, mut b) = (contact(1), contact(2));
        b.site_id = SiteId(2);
        assert!(refusal(&a, &b).is_some(), "two sites");
    }

    #[test]
    fn the_first_keeps_its_details_and_takes_what_it_lacks() {
        let mut into = contact(1);
        into.name = "Grace".into();
        into.attributes = r#"{"plan":"pro"}"#.into();
        let mut from = contact(2);
        from.name = "G.".into();
        from.email = "grace@example.com".into();
        from.external_id = Some("u-7".into());
        from.email_verified = true;
        from.attributes = r#"{"plan":"free","seats":3}"#.into();
        let details = merged_details(&into, &from).unwrap();
        assert_eq!(details.name, None);
        assert_eq!(details.email, Some(("grace@example.com".into(), true)));
        assert_eq!(details.external_id.as_deref(), Some("u-7"));
        let attributes: Value = serde_json::from_str(&details.attributes).unwrap();
        assert_eq!(attributes, serde_json::json!({"plan": "pro", "seats": 3}));
    }
}
