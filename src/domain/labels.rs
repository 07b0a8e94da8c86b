//! Labels: admins define them (a name and a colour from the palette);
//! staff put them on tickets and take them off. Rules kept here, for the
//! pages and the API alike:
//! - a name is 1 to 40 characters on one line, unique ignoring case;
//! - a colour is one of the palette's ([`LabelColour::ALL`]), so that the
//!   text on it stays readable;
//! - only admins define, rename, recolour and delete labels (anyone else:
//!   not found); any agent or admin labels a ticket; customers never see
//!   labels;
//! - each label put on or taken off a ticket is a private entry on its
//!   timeline; deleting a label takes it off every ticket.

use super::{DomainError, DomainResult, invalid};
use crate::model::text::clean_line;
use crate::model::{Label, LabelColour, LabelId, Role, Ticket, TicketNumber, User};
use crate::store::{Store, StoreError};

pub const MAX_LABEL_NAME: usize = 40;

/// A label's name as typed, checked: (the name, the key it is unique by).
pub fn parse_name(input: &str) -> DomainResult<(String, String)> {
    let name = clean_line(input);
    let name = name.trim();
    if name.is_empty() {
        return Err(invalid("name", "Give the label a name."));
    }
    if name.chars().count() > MAX_LABEL_NAME {
        return Err(invalid(
            "name",
            format!("Use at most {MAX_LABEL_NAME} characters for a label's name."),
        ));
    }
    Ok((name.to_string(), name.to_lowercase()))
}

/// A colour's name, one of the palette's.
pub fn parse_colour(input: &str) -> DomainResult<LabelColour> {
    LabelColour::parse(input.trim()).ok_or_else(|| {
        let names: Vec<&str> = LabelColour::ALL.iter().map(|c| c.as_str()).collect();
        invalid(
            "colour",
            format!("Choose a colour from the list: {}.", names.join(", ")),
        )
    })
}

fn admin_only(user: &User) -> DomainResult<()> {
    if user.role == Role::Admin {
        Ok(())
    } else {
        Err(DomainError::NotFound)
    }
}

fn staff_only(user: &User) -> DomainResult<()> {
    if user.role.is_staff() {
        Ok(())
    } else {
        Err(DomainError::NotFound)
    }
}

fn taken(name: &str) -> DomainError {
    invalid(
        "name",
        format!("There is already a label called “{name}” (names ignore case)."),
    )
}

/// Every label, by name (staff).
pub async fn list(store: &Store, viewer: &User) -> DomainResult<Vec<Label>> {
    staff_only(viewer)?;
    Ok(store.labels().await?)
}

/// The label `id`, or the error naming the field it came from.
pub async fn find(store: &Store, viewer: &User, id: LabelId) -> DomainResult<Label> {
    staff_only(viewer)?;
    store.label(id).await?.ok_or_else(|| {
        invalid(
            "label",
            "Choose a label from the list: that one does not exist.",
        )
    })
}

/// Defines a label (admins).
pub async fn create(store: &Store, admin: &User, name: &str, colour: &str) -> DomainResult<Label> {
    admin_only(admin)?;
    let (name, key) = parse_name(name)?;
    let colour = parse_colour(colour)?;
    match store.add_label(&name, &key, colour).await {
        Ok(id) => Ok(Label { id, name, colour }),
        Err(StoreError::Duplicate(_)) => Err(taken(&name)),
        Err(e) => Err(e.into()),
    }
}

/// Renames or recolours a label (admins); the tickets keep it.
pub async fn save(
    store: &Store,
    admin: &User,
    id: LabelId,
    name: &str,
    colour: &str,
) -> DomainResult<Label> {
    admin_only(admin)?;
    let (name, key) = parse_name(name)?;
    let colour = parse_colour(colour)?;
    match store.save_label(id, (&name, &key), colour).await {
        Ok(()) => Ok(Label { id, name, colour }),
        Err(StoreError::Duplicate(_)) => Err(taken(&name)),
        Err(e) => Err(e.into()),
    }
}

/// Deletes a label and takes it off every ticket (admins).
pub async fn delete(store: &Store, admin: &User, id: LabelId) -> DomainResult<()> {
    admin_only(admin)?;
    Ok(store.delete_label(id).await?)
}

/// Puts the label on the ticket (`on`) or takes it off (staff): true when
/// that changed something (and so wrote a timeline entry), false when it
/// was already so.
pub async fn set_on_ticket(
    store: &Store,
    staff: &User,
    number: TicketNumber,
    label: LabelId,
    on: bool,
) -> DomainResult<(Ticket, bool)> {
    staff_only(staff)?;
    let ticket = super::tickets::find(store, staff, number).await?;
    let label = find(store, staff, label).await?;
    let changed = match store.set_ticket_label(&ticket, &label, on, staff).await {
        Err(StoreError::NotFound) => {
            return Err(invalid("label", "That label was deleted meanwhile."));
        }
        other => other?,
    };
    let ticket = super::tickets::find(store, staff, number).await?;
    Ok((ticket, changed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_one_trimmed_line_of_at_most_40() {
        assert_eq!(
            parse_name("  Refund\nasked ").unwrap(),
            ("Refund asked".to_string(), "refund asked".to_string())
        );
        assert!(parse_name("   ").is_err());
        assert!(parse_name(&"é".repeat(40)).is_ok());
        assert!(parse_name(&"é".repeat(41)).is_err());
    }

    #[test]
    fn colours_come_from_the_palette() {
        assert_eq!(parse_colour("teal").unwrap(), LabelColour::Teal);
        assert!(parse_colour("#ff0000").is_err());
    }
}
