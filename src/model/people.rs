//! People: accounts (customers, agents, admins), widget visitors, and the
//! email address every one of them may have.

use std::fmt;

use serde::Serialize;

use super::{InvalidField, SiteId, UserId, VisitorId};

text_enum!(
    /// What a user may do. Customers raise tickets; agents work them; admins
    /// also manage people and settings.
    Role { Customer = "customer", Agent = "agent", Admin = "admin" }
);

impl Role {
    pub fn is_staff(self) -> bool {
        matches!(self, Role::Agent | Role::Admin)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct User {
    pub id: UserId,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub verified: bool,
    pub created_at: i64,
}

/// Someone chatting from the widget (a portal customer is one too).
#[derive(Debug, Clone)]
pub struct Visitor {
    pub id: VisitorId,
    pub site_id: SiteId,
    pub user_id: Option<UserId>,
    pub name: String,
    pub email: String,
}

impl Visitor {
    /// The name agents see.
    pub fn display_name(&self) -> String {
        if self.name.trim().is_empty() {
            format!("Visitor {}", self.id)
        } else {
            self.name.clone()
        }
    }
}

/// An email address, trimmed and lower-cased. Parsing is deliberately
/// simple: one `@`, something on each side, a dot in the domain.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Email(String);

impl Email {
    pub fn parse(input: &str) -> Result<Email, InvalidField> {
        let email = input.trim().to_lowercase();
        let bad = || InvalidField::new("email", "Enter an email address like name@example.com.");
        if email.is_empty() {
            return Err(InvalidField::new("email", "Enter your email address."));
        }
        if email.len() > 254 || email.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad());
        }
        let (local, domain) = email.split_once('@').ok_or_else(bad)?;
        if local.is_empty()
            || domain.contains('@')
            || !domain.contains('.')
            || domain.starts_with('.')
            || domain.ends_with('.')
        {
            return Err(bad());
        }
        Ok(Email(email))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(
            Email::parse("  Ada@Example.COM ").unwrap().as_str(),
            "ada@example.com"
        );
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "a b@example.com",
            "a@b@c.com",
            "ada@example.com.",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
