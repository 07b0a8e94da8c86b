//! Who may act on a conversation that someone owns, decided once here and
//! applied on every surface: the live console's socket, the ticket pages
//! and the JSON API. A conversation's owner is its assignee (the ticket's
//! assignee is the same person).
//!
//! - **Write** (a reply the customer sees): the owner only; an admin who
//!   wants to answer takes it over by transfer first, so that a customer
//!   never gets two people answering at once. Private notes are for any
//!   staff member.
//! - **Close** (resolve or close): the owner or an admin; anyone while
//!   nobody owns it (clearing the queue).
//! - **Reassign** (transfer, unassign, assign to someone else): the owner
//!   or an admin. Taking a conversation nobody owns is for any staff
//!   member, and atomic (the store's claim).

use super::{DomainError, DomainResult};
use crate::model::{Conversation, Role, Ticket, User, UserId};

/// A conversation's owner as the rules need it: who, and the name to say.
#[derive(Debug, Clone, Copy)]
pub struct Owner<'a> {
    pub id: UserId,
    pub name: &'a str,
}

impl<'a> Owner<'a> {
    pub fn of(id: Option<UserId>, name: Option<&'a str>) -> Option<Owner<'a>> {
        id.map(|id| Owner {
            id,
            name: name.unwrap_or_default(),
        })
    }
}

impl Conversation {
    /// Who owns it now, as the rules above need it.
    pub fn owner(&self) -> Option<Owner<'_>> {
        Owner::of(self.assignee_id, self.assignee_name.as_deref())
    }
}

impl Ticket {
    /// Who owns its conversation now (the ticket's assignee).
    pub fn owner(&self) -> Option<Owner<'_>> {
        let assignee = self.assignee.as_ref()?;
        Owner::of(assignee.id, Some(&assignee.name))
    }
}

/// A reply the customer sees: only the owner writes one (or anyone while
/// nobody owns the conversation).
pub fn may_write(actor: &User, owner: Option<Owner<'_>>) -> DomainResult<()> {
    match owner {
        Some(owner) if owner.id != actor.id => Err(DomainError::Conflict(format!(
            "{} owns this conversation; ask them to transfer it",
            owner.name
        ))),
        _ => Ok(()),
    }
}

/// Resolving or closing: the owner, an admin, or anyone while nobody owns it.
pub fn may_close(actor: &User, owner: Option<Owner<'_>>) -> DomainResult<()> {
    match owner {
        Some(owner) if owner.id != actor.id && actor.role != Role::Admin => {
            Err(DomainError::Conflict(format!(
                "{} owns this conversation; only they (or an admin) can resolve it",
                owner.name
            )))
        }
        _ => Ok(()),
    }
}

/// Giving an owned conversation to someone else, or to nobody: its owner or
/// an admin. (A conversation nobody owns may be given by any staff member.)
pub fn may_reassign(actor: &User, owner: Option<Owner<'_>>) -> DomainResult<()> {
    match owner {
        Some(owner) if owner.id != actor.id && actor.role != Role::Admin => {
            Err(DomainError::Conflict(
                "only the agent who owns it (or an admin) can transfer it".into(),
            ))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person(id: i64, role: Role) -> User {
        User {
            id: UserId(id),
            email: format!("{id}@example.com"),
            name: format!("Person {id}"),
            role,
            verified: true,
            created_at: 0,
        }
    }

    #[test]
    fn the_owner_does_everything_others_what_their_role_allows() {
        let (alan, bea, root) = (
            person(1, Role::Agent),
            person(2, Role::Agent),
            person(3, Role::Admin),
        );
        let alans = Some(Owner {
            id: alan.id,
            name: "Alan",
        });
        for check in [may_write, may_close, may_reassign] {
            assert!(check(&alan, alans).is_ok(), "the owner may");
            assert!(check(&bea, alans).is_err(), "another agent may not");
            assert!(check(&bea, None).is_ok(), "anyone while nobody owns it");
        }
        assert!(may_close(&root, alans).is_ok(), "an admin closes");
        assert!(may_reassign(&root, alans).is_ok(), "an admin reassigns");
        assert!(
            may_write(&root, alans).is_err(),
            "an admin takes it over before answering"
        );
        let refused = may_write(&bea, alans).unwrap_err().to_string();
        assert!(refused.contains("Alan owns this conversation"), "{refused}");
    }
}
