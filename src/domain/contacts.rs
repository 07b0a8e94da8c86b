//! Contacts: the customers behind the conversations, as staff and their
//! integrations keep them (a CRM syncing who someone is and what plan
//! they are on). Rules kept here, for the API and any page alike:
//! - contacts are staff's to read and change; anyone else gets "not found";
//! - an email the host site signed, or an account's, is not Careline's to
//!   change (it is proven elsewhere); a typed one may be corrected, and a
//!   new one is unproven;
//! - attributes are a flat object of at most [`MAX_ATTRIBUTES`] named
//!   values (text, number, true/false), changed key by key: `null` removes;
//! - notes on a person are staff's free text, kept with author and time;
//! - a contact merged into another (`contact_merge`) is no contact any more:
//!   its old id answers "not found", and [`successor`] says where it went.

use serde_json::{Map, Value};

use super::{DomainError, DomainResult, invalid, parse_name};
use crate::model::{Conversation, ConversationId, Email, Ticket, User, VisitorId};
use crate::store::{Contact, ContactFilter, ContactNote, Store};

pub const MAX_ATTRIBUTES: usize = 50;
const MAX_KEY: usize = 64;
const MAX_TEXT_VALUE: usize = 1000;

/// What a change asks; `None` leaves a detail as it is.
#[derive(Debug, Default)]
pub struct ContactChange {
    pub name: Option<String>,
    pub email: Option<String>,
    /// Merged into the attributes: a `null` value removes its key.
    pub attributes: Option<Map<String, Value>>,
}

/// Longest note on a contact, in characters.
pub const MAX_NOTE: usize = 5000;
/// How many conversations and tickets a profile shows (newest first).
pub const PROFILE_HISTORY: i64 = 200;

/// Everything staff see of a person on their profile.
#[derive(Debug)]
pub struct Profile {
    pub contact: Contact,
    pub conversations: Vec<Conversation>,
    pub tickets: Vec<Ticket>,
    pub notes: Vec<ContactNote>,
}

pub(super) fn staff_only(viewer: &User) -> DomainResult<()> {
    if viewer.role.is_staff() {
        Ok(())
    } else {
        Err(DomainError::NotFound)
    }
}

pub async fn find(store: &Store, viewer: &User, id: VisitorId) -> DomainResult<Contact> {
    staff_only(viewer)?;
    store
        .contact(id)
        .await?
        .filter(|c| c.merged_into.is_none())
        .ok_or(DomainError::NotFound)
}

/// Where a merged contact's history is now: the contact it was merged
/// into (following later merges), or `None` for a contact that was not
/// merged or does not exist.
pub async fn successor(
    store: &Store,
    viewer: &User,
    id: VisitorId,
) -> DomainResult<Option<VisitorId>> {
    staff_only(viewer)?;
    let mut at = id;
    // A merged contact takes no merge, so the chain is short; the bound
    // only guards against a loop written by hand in the database.
    for _ in 0..16 {
        match store.contact(at).await?.and_then(|c| c.merged_into) {
            Some(next) => at = next,
            None => break,
        }
    }
    Ok((at != id).then_some(at))
}

/// A contact's profile: details, every conversation and ticket (newest
/// first) and the notes on them.
pub async fn profile(store: &Store, viewer: &User, id: VisitorId) -> DomainResult<Profile> {
    let contact = find(store, viewer, id).await?;
    let conversations = store
        .visitor_conversations_before(contact.id, None, PROFILE_HISTORY)
        .await?;
    let tickets = store.contact_tickets(contact.id, PROFILE_HISTORY).await?;
    let notes = store.contact_notes(contact.id).await?;
    Ok(Profile {
        contact,
        conversations,
        tickets,
        notes,
    })
}

pub async fn notes(store: &Store, viewer: &User, id: VisitorId) -> DomainResult<Vec<ContactNote>> {
    let contact = find(store, viewer, id).await?;
    Ok(store.contact_notes(contact.id).await?)
}

/// Adds a note on a person: 1 to [`MAX_NOTE`] characters of text, with
/// its lines kept.
pub async fn add_note(
    store: &Store,
    viewer: &User,
    id: VisitorId,
    body: &str,
) -> DomainResult<ContactNote> {
    let contact = find(store, viewer, id).await?;
    let body = crate::model::text::clean_text(body);
    let body = body.trim();
    if body.is_empty() {
        return Err(invalid("note", "Write the note first."));
    }
    if body.chars().count() > MAX_NOTE {
        return Err(invalid(
            "note",
            format!("A note is at most {MAX_NOTE} characters."),
        ));
    }
    Ok(store.add_contact_note(contact.id, viewer, body).await?)
}

pub async fn list(
    store: &Store,
    viewer: &User,
    filter: ContactFilter,
) -> DomainResult<Vec<Contact>> {
    staff_only(viewer)?;
    Ok(store.contacts(&filter).await?)
}

/// The contact's conversations, newest first: `limit` of those older than
/// `before`.
pub async fn conversations(
    store: &Store,
    viewer: &User,
    id: VisitorId,
    before: Option<ConversationId>,
    limit: i64,
) -> DomainResult<Vec<Conversation>> {
    let contact = find(store, viewer, id).await?;
    Ok(store
        .visitor_conversations_before(contact.id, before, limit)
        .await?)
}

/// The attributes after `change`, or what is wrong with it, by key.
pub fn merged_attributes(current: &str, change: Map<String, Value>) -> DomainResult<String> {
    let mut attributes: Map<String, Value> = serde_json::from_str(current).unwrap_or_default();
    for (key, value) in change {
        let field_ok = !key.is_empty()
            && key.len() <= MAX_KEY
            && key.starts_with(|c: char| c.is_ascii_lowercase())
            && key
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !field_ok {
            return Err(invalid(
                "attributes",
                format!(
                    "attribute names are 1 to {MAX_KEY} characters: lower-case letters, digits and _, starting with a letter (not {key:?})"
                ),
            ));
        }
        match value {
            Value::Null => {
                attributes.remove(&key);
            }
            Value::String(ref text) if text.chars().count() > MAX_TEXT_VALUE => {
                return Err(invalid(
                    "attributes",
                    format!("attribute {key} is longer than {MAX_TEXT_VALUE} characters"),
                ));
            }
            Value::String(ref text) if crate::model::text::has_hidden(text) => {
                return Err(invalid(
                    "attributes",
                    format!("attribute {key} holds control characters"),
                ));
            }
            Value::String(_) | Value::Number(_) | Value::Bool(_) => {
                attributes.insert(key, value);
            }
            Value::Array(_) | Value::Object(_) => {
                return Err(invalid(
                    "attributes",
                    format!(
                        "attribute {key} must be text, a number, true/false, or null to remove it"
                    ),
                ));
            }
        }
    }
    if attributes.len() > MAX_ATTRIBUTES {
        return Err(invalid(
            "attributes",
            format!("a contact holds at most {MAX_ATTRIBUTES} attributes; remove some with null"),
        ));
    }
    Ok(Value::Object(attributes).to_string())
}

pub async fn update(
    store: &Store,
    viewer: &User,
    id: VisitorId,
    change: ContactChange,
) -> DomainResult<Contact> {
    let contact = find(store, viewer, id).await?;
    let name = change.name.as_deref().map(parse_name).transpose()?;
    let email = match change.email.as_deref() {
        None => None,
        Some(_) if contact.account.is_some() => {
            return Err(invalid(
                "email",
                "This contact has an account: its email is the account's, which they change themselves.",
            ));
        }
        Some(_) if contact.external_id.is_some() => {
            return Err(invalid(
                "email",
                "This contact's email is signed by the host site: change it there.",
            ));
        }
        Some(email) => Some(
            Email::parse(email)
                .map_err(|_| invalid("email", "Enter an email address, like name@example.com."))?,
        ),
    };
    let attributes = change
        .attributes
        .map(|a| merged_attributes(&contact.attributes, a))
        .transpose()?;
    store
        .update_contact(
            id,
            name.as_deref(),
            email.as_ref().map(Email::as_str),
            attributes.as_deref(),
        )
        .await?;
    find(store, viewer, id).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn change(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn attributes_merge_key_by_key_and_null_removes() {
        let after = merged_attributes(
            r#"{"plan":"free","seats":3}"#,
            change(json!({"plan": "pro", "seats": null, "vip": true})),
        )
        .unwrap();
        let after: Value = serde_json::from_str(&after).unwrap();
        assert_eq!(after, json!({"plan": "pro", "vip": true}));
    }

    #[test]
    fn bad_attributes_are_refused_by_name() {
        for bad in [
            json!({"Plan": "x"}),
            json!({"": "x"}),
            json!({"9lives": "x"}),
            json!({"a-b": "x"}),
            json!({"nested": {"a": 1}}),
            json!({"list": [1, 2]}),
            json!({"long": "x".repeat(MAX_TEXT_VALUE + 1)}),
            json!({"bell": "ding\u{7}"}),
        ] {
            let refused = merged_attributes("{}", change(bad.clone()));
            assert!(
                matches!(
                    refused,
                    Err(DomainError::Invalid {
                        field: "attributes",
                        ..
                    })
                ),
                "{bad}: {refused:?}"
            );
        }
        let many: Map<String, Value> = (0..=MAX_ATTRIBUTES)
            .map(|i| (format!("k{i}"), json!(i)))
            .collect();
        assert!(merged_attributes("{}", many).is_err());
    }
}
