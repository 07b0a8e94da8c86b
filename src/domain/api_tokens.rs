//! Personal API tokens: how an agent's or admin's scripts and integrations
//! call `/api/v1` as them. Made on the account page and shown once; kept
//! only as a hash; scoped (`read`: GET only; `write`: also changes;
//! `admin`: also admin routes, for admins); always with an expiry; revoked
//! at once on every instance, because every request reads the token's row.
//! A token never does more than its owner may do now: a demoted agent's
//! tokens stop, an agent's token cannot be `admin`.

use super::{DomainError, DomainResult, invalid};
use crate::auth::{hash_token, random_token};
use crate::model::{Role, User};
use crate::store::{Store, now_ms};

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    Read,
    Write,
    Admin,
}

impl Scope {
    pub fn parse(s: &str) -> Option<Scope> {
        match s {
            "read" => Some(Scope::Read),
            "write" => Some(Scope::Write),
            "admin" => Some(Scope::Admin),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Write => "write",
            Scope::Admin => "admin",
        }
    }
}

/// The prefix every token has, so a leaked one is recognisable (secret
/// scanners) and told apart from a session or visitor token.
pub const PREFIX: &str = "clt_";

/// The longest a token may live.
pub const MAX_DAYS: i64 = 366;

/// Makes a token for `owner`: the token, to be shown once (the owner's
/// list shows its record).
pub async fn issue(
    store: &Store,
    owner: &User,
    name: &str,
    scope: Scope,
    days: i64,
) -> DomainResult<String> {
    if !owner.role.is_staff() {
        return Err(invalid("scope", "API tokens are for agents and admins."));
    }
    if scope == Scope::Admin && owner.role != Role::Admin {
        return Err(invalid("scope", "Only admins may make admin tokens."));
    }
    let name = crate::model::text::clean_line(name);
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(invalid(
            "name",
            "Name the token (up to 100 characters), e.g. the integration that uses it.",
        ));
    }
    if !(1..=MAX_DAYS).contains(&days) {
        return Err(invalid(
            "days",
            format!("A token lives 1 to {MAX_DAYS} days; make a new one when it ends."),
        ));
    }
    let token = format!("{PREFIX}{}", random_token(32));
    let expires_at = now_ms() + days * 86_400_000;
    let id = store
        .create_api_token(
            owner.id,
            name,
            &hash_token(&token),
            scope.as_str(),
            expires_at,
        )
        .await?;
    store
        .audit(
            Some(owner.id),
            "api_token.created",
            &format!("token {id} \"{name}\" ({}, {days} days)", scope.as_str()),
        )
        .await?;
    Ok(token)
}

/// Who a bearer token speaks for, and with what scope: `Unauthenticated`
/// for anything but a live token of someone who is still staff.
pub async fn authenticate(store: &Store, token: &str) -> DomainResult<(User, Scope, i64)> {
    if !token.starts_with(PREFIX) || token.len() > 100 {
        return Err(DomainError::Unauthenticated);
    }
    let Some(record) = store.api_token_by_hash(&hash_token(token)).await? else {
        return Err(DomainError::Unauthenticated);
    };
    let now = now_ms();
    if record.revoked_at.is_some() || record.expires_at <= now {
        return Err(DomainError::Unauthenticated);
    }
    let Some(owner) = store.user(record.user_id).await? else {
        return Err(DomainError::Unauthenticated);
    };
    let scope = Scope::parse(&record.scope).ok_or(DomainError::Unauthenticated)?;
    // What the owner may do now, not when the token was made.
    if !owner.role.is_staff() || (scope == Scope::Admin && owner.role != Role::Admin) {
        return Err(DomainError::Unauthenticated);
    }
    // "Last used" to the minute: a write per minute, not per request.
    if record.last_used_at.is_none_or(|at| now - at > 60_000) {
        store.touch_api_token(record.id).await?;
    }
    Ok((owner, scope, record.id))
}

/// Revokes `owner`'s token `id`.
pub async fn revoke(store: &Store, owner: &User, id: i64) -> DomainResult<()> {
    if !store.revoke_api_token(id, owner.id).await? {
        return Err(DomainError::NotFound);
    }
    store
        .audit(Some(owner.id), "api_token.revoked", &format!("token {id}"))
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_are_ordered_and_spelled_once() {
        assert!(Scope::Read < Scope::Write && Scope::Write < Scope::Admin);
        for scope in [Scope::Read, Scope::Write, Scope::Admin] {
            assert_eq!(Scope::parse(scope.as_str()), Some(scope));
        }
        assert_eq!(Scope::parse("Admin"), None);
        assert_eq!(Scope::parse(""), None);
    }
}
