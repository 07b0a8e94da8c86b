//! Who is on the other side of the widget, decided once for the widget's
//! session: an anonymous visitor known by a token in their browser, or a
//! customer the host site vouches for (as Chatwoot's `identifier_hash` and
//! Intercom's identity verification).
//!
//! - Each site may have a secret, shown once to an admin. The host site's
//!   server signs its user's id with it (`HMAC-SHA256(secret, user_id)`,
//!   hex) and the page passes id, signature and optionally name and email
//!   to the widget. Careline takes the identity only with a signature that
//!   verifies for that site, compared in constant time; a rotated secret's
//!   predecessor still verifies until its grace period ends.
//! - A verified customer is one visitor per site, whatever the device: each
//!   device gets its own token for it, so the earlier conversations follow
//!   them. An anonymous visitor who is verified in the same browser becomes
//!   (or merges into) that customer, audited; a visitor verified as someone
//!   else is never merged: the browser simply gets the new customer's
//!   token, and the other's ends.
//! - With "require verified identity" on, a page's unsigned name and email
//!   are not taken: the visitor stays anonymous. Without it they are kept,
//!   marked unverified.
//! - Logging out on the host site (`Careline.logout()`) ends that browser's
//!   token, so the next person at a shared computer starts from nothing.

use super::{DomainError, DomainResult, invalid, parse_name};
use crate::auth::{Secret, hash_token, hmac_sha256_hex, random_token, same_secret};
use crate::model::{Email, SiteId, UserId, Visitor};
use crate::store::{Site, SiteIdentity, Store, now_ms};

/// How long a rotated secret's predecessor still verifies: a day, for the
/// host site to deploy the new one.
pub const ROTATION_GRACE_MS: i64 = 24 * 3_600_000;

/// The longest user id a host site may send.
const MAX_USER_ID: usize = 191;

/// What the page says about its user, as the widget passes it on.
#[derive(Debug, Clone, Default)]
pub struct Claim {
    pub user_id: String,
    /// `HMAC-SHA256(site secret, user_id)`, hex.
    pub hash: String,
    pub name: Option<String>,
    pub email: Option<String>,
}

/// What the widget's session starts with.
#[derive(Debug, Clone)]
pub struct Session {
    pub visitor: Visitor,
    /// The token this browser keeps (new when it changed).
    pub token: String,
    /// Whether the host site vouched for who this is.
    pub verified: bool,
    /// Why a claimed identity was not taken (for the page's developer).
    pub rejected: Option<&'static str>,
}

/// What a page asks the session for.
#[derive(Debug, Clone, Default)]
pub struct SessionRequest {
    pub visitor_token: Option<String>,
    /// Contact details the page passes without vouching for them.
    pub name: Option<String>,
    pub email: Option<String>,
    pub identity: Option<Claim>,
}

/// The signature a host site's server computes for `user_id`.
pub fn signature(secret: &str, user_id: &str) -> String {
    hmac_sha256_hex(secret, user_id)
}

/// Whether `claim` verifies under the site's secret (or its predecessor
/// within the grace period): the user id it names, or why not.
fn verify(
    secret: &Secret,
    identity: Option<&SiteIdentity>,
    claim: &Claim,
) -> Result<String, &'static str> {
    let Some(identity) = identity else {
        return Err("this site has no identity secret; an admin makes one under Admin → Sites");
    };
    let user_id = claim.user_id.trim();
    if user_id.is_empty() || user_id.len() > MAX_USER_ID || user_id.chars().any(char::is_control) {
        return Err("user_id must be 1 to 191 characters without control characters");
    }
    let given = claim.hash.trim().to_ascii_lowercase();
    let matches = |sealed: &str| {
        secret
            .open(sealed)
            .is_some_and(|key| same_secret(&signature(&key, user_id), &given))
    };
    let current = matches(&identity.secret);
    let previous = identity
        .previous_until
        .is_some_and(|until| now_ms() < until)
        && identity.previous_secret.as_deref().is_some_and(matches);
    if current || previous {
        Ok(user_id.to_string())
    } else {
        Err(
            "the identity's hash does not verify for this site (HMAC-SHA256 of user_id under the site's secret, hex)",
        )
    }
}

fn cleaned_name(name: Option<&str>) -> DomainResult<String> {
    match name.map(str::trim).filter(|n| !n.is_empty()) {
        Some(n) => parse_name(n),
        None => Ok(String::new()),
    }
}

fn cleaned_email(email: Option<&str>) -> DomainResult<String> {
    match email.map(str::trim).filter(|e| !e.is_empty()) {
        Some(e) => Ok(Email::parse(e)?.as_str().to_string()),
        None => Ok(String::new()),
    }
}

/// Starts (or resumes) the widget's session on `site` (see the module
/// docs). `None`: a new visitor was needed and `may_create` said no (too
/// many new visitors from one address).
pub async fn session(
    store: &Store,
    secret: &Secret,
    site: &Site,
    request: SessionRequest,
    may_create: impl FnOnce() -> bool,
) -> DomainResult<Option<Session>> {
    let identity = store.site_identity(site.id).await?;
    let require_verified = identity.as_ref().is_some_and(|i| i.require_verified);
    let current = match request
        .visitor_token
        .as_deref()
        .filter(|t| !t.is_empty() && t.len() <= 100)
    {
        Some(token) => store
            .visitor_by_token(site.id, &hash_token(token))
            .await?
            .map(|v| (v, token.to_string())),
        None => None,
    };
    let verified = request
        .identity
        .as_ref()
        .map(|claim| verify(secret, identity.as_ref(), claim));
    match verified {
        Some(Ok(external_id)) => {
            let claim = request.identity.as_ref().expect("verified a claim");
            let name = cleaned_name(claim.name.as_deref())?;
            let email = cleaned_email(claim.email.as_deref())?;
            verified_session(
                store,
                site.id,
                current,
                &external_id,
                (&name, &email),
                may_create,
            )
            .await
        }
        rejected => {
            let rejected = match rejected {
                Some(Err(why)) => {
                    tracing::info!(site = %site.id, why, "a widget identity was not taken");
                    Some(why)
                }
                _ => None,
            };
            // Unsigned contact details: kept unverified, or not at all.
            let (name, email) = if require_verified {
                (String::new(), String::new())
            } else {
                (
                    cleaned_name(request.name.as_deref())?,
                    cleaned_email(request.email.as_deref())?,
                )
            };
            let session = match current {
                Some((visitor, token)) => {
                    let verified = store.visitor_external_id(visitor.id).await?.is_some();
                    if !verified && (!name.is_empty() || !email.is_empty()) {
                        store
                            .update_visitor_contact(visitor.id, &name, &email)
                            .await?;
                    }
                    Session {
                        visitor,
                        token,
                        verified,
                        rejected,
                    }
                }
                None => {
                    if !may_create() {
                        return Ok(None);
                    }
                    let token = random_token(32);
                    let visitor = store
                        .create_visitor(site.id, &hash_token(&token), &name, &email)
                        .await?;
                    Session {
                        visitor,
                        token,
                        verified: false,
                        rejected,
                    }
                }
            };
            Ok(Some(session))
        }
    }
}

/// The session of the host site's user `external_id`.
async fn verified_session(
    store: &Store,
    site_id: SiteId,
    current: Option<(Visitor, String)>,
    external_id: &str,
    (name, email): (&str, &str),
    may_create: impl FnOnce() -> bool,
) -> DomainResult<Option<Session>> {
    let session = |visitor: Visitor, token: String| Session {
        visitor,
        token,
        verified: true,
        rejected: None,
    };
    // What this browser's visitor is now: anonymous (merged below), this
    // customer already, or someone else.
    let mut anonymous = None;
    if let Some((visitor, token)) = &current {
        match store.visitor_external_id(visitor.id).await?.as_deref() {
            // The same customer again on this device.
            Some(id) if id == external_id => {
                store
                    .update_verified_contact(visitor.id, name, email)
                    .await?;
                return Ok(Some(session(visitor.clone(), token.clone())));
            }
            // Someone else was verified in this browser and did not log
            // out: their token ends here, and nothing of theirs moves.
            Some(_) => {
                store
                    .revoke_visitor_token(site_id, &hash_token(token))
                    .await?
            }
            None => anonymous = Some(visitor.clone()),
        }
    }
    let known = store.visitor_by_external_id(site_id, external_id).await?;
    let token = random_token(32);
    let customer = match (known, &anonymous) {
        (Some(customer), anonymous) => {
            store
                .update_verified_contact(customer.id, name, email)
                .await?;
            store
                .add_visitor_token(customer.id, &hash_token(&token))
                .await?;
            if let Some(anonymous) = anonymous {
                let moved = store.merge_visitor(anonymous.id, customer.id).await?;
                audit_merge(store, anonymous, &customer, moved.len()).await?;
            }
            customer
        }
        // The anonymous visitor of this browser becomes the customer, its
        // conversations with it; it keeps its token.
        (None, Some(anonymous)) => {
            let (visitor, old_token) = current.expect("an anonymous visitor came with a token");
            if store
                .verify_visitor(anonymous.id, external_id, name, email)
                .await?
            {
                store
                    .audit(
                        None,
                        "visitor.verified",
                        &format!(
                            "visitor {} is the host site's user {external_id}",
                            visitor.id
                        ),
                    )
                    .await?;
                return Ok(Some(session(visitor, old_token)));
            }
            // Verified meanwhile from another device: merge into that one.
            let customer = store
                .visitor_by_external_id(site_id, external_id)
                .await?
                .ok_or(DomainError::NotFound)?;
            store
                .add_visitor_token(customer.id, &hash_token(&token))
                .await?;
            let moved = store.merge_visitor(anonymous.id, customer.id).await?;
            audit_merge(store, anonymous, &customer, moved.len()).await?;
            customer
        }
        (None, None) => {
            if !may_create() {
                return Ok(None);
            }
            match store
                .create_verified_visitor(site_id, &hash_token(&token), external_id, name, email)
                .await?
            {
                Some(customer) => customer,
                // Made meanwhile by another device of the same customer.
                None => {
                    let customer = store
                        .visitor_by_external_id(site_id, external_id)
                        .await?
                        .ok_or(DomainError::NotFound)?;
                    store
                        .add_visitor_token(customer.id, &hash_token(&token))
                        .await?;
                    customer
                }
            }
        }
    };
    let customer = store.visitor(customer.id).await?.unwrap_or(customer);
    Ok(Some(session(customer, token)))
}

async fn audit_merge(
    store: &Store,
    from: &Visitor,
    into: &Visitor,
    conversations: usize,
) -> DomainResult<()> {
    store
        .audit(
            None,
            "visitor.merged",
            &format!(
                "anonymous visitor {} merged into verified visitor {} ({conversations} conversation(s))",
                from.id, into.id
            ),
        )
        .await?;
    Ok(())
}

/// The host site's user logged out: this browser's token ends.
pub async fn logout(store: &Store, site: &Site, token: &str) -> DomainResult<()> {
    if token.is_empty() || token.len() > 100 {
        return Err(invalid("visitor_token", "a visitor token is required"));
    }
    store
        .revoke_visitor_token(site.id, &hash_token(token))
        .await?;
    Ok(())
}

/// A new secret for `site` (shown once to the admin who made it); the one
/// before still verifies for [`ROTATION_GRACE_MS`].
pub async fn rotate_secret(
    store: &Store,
    secret: &Secret,
    site: SiteId,
    admin: UserId,
) -> DomainResult<String> {
    let now = store.site_identity(site).await?;
    let new_secret = format!("cls_{}", random_token(32));
    let identity = SiteIdentity {
        secret: secret.seal(&new_secret),
        previous_until: now.as_ref().map(|_| now_ms() + ROTATION_GRACE_MS),
        previous_secret: now.as_ref().map(|i| i.secret.clone()),
        require_verified: now.as_ref().is_some_and(|i| i.require_verified),
    };
    store.save_site_identity(site, &identity).await?;
    store
        .audit(
            Some(admin),
            "site.identity_secret",
            &format!("site {site}: a new secret (the previous one verifies for 24 hours)"),
        )
        .await?;
    Ok(new_secret)
}

/// Turns "require verified identity" on or off (a secret must exist).
pub async fn set_require_verified(
    store: &Store,
    site: SiteId,
    admin: UserId,
    on: bool,
) -> DomainResult<()> {
    let Some(mut identity) = store.site_identity(site).await? else {
        return Err(invalid(
            "require_verified",
            "Make the site's identity secret first: without one no identity can verify.",
        ));
    };
    identity.require_verified = on;
    store.save_site_identity(site, &identity).await?;
    store
        .audit(
            Some(admin),
            "site.require_verified",
            &format!("site {site}: {}", if on { "on" } else { "off" }),
        )
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(secret: &Secret, current: &str, previous: Option<(&str, i64)>) -> SiteIdentity {
        SiteIdentity {
            secret: secret.seal(current),
            previous_secret: previous.map(|(p, _)| secret.seal(p)),
            previous_until: previous.map(|(_, until)| until),
            require_verified: false,
        }
    }

    fn claim(user_id: &str, hash: String) -> Claim {
        Claim {
            user_id: user_id.into(),
            hash,
            ..Claim::default()
        }
    }

    #[test]
    fn only_a_hash_of_this_user_under_this_sites_secret_verifies() {
        let secret = Secret::new("identity-test-secret-0123456789abcdef");
        let site = identity(&secret, "cls_current", None);
        let good = claim("u-42", signature("cls_current", "u-42"));
        assert_eq!(verify(&secret, Some(&site), &good), Ok("u-42".to_string()));
        // Upper-case hex is the same hash.
        let upper = claim("u-42", signature("cls_current", "u-42").to_uppercase());
        assert!(verify(&secret, Some(&site), &upper).is_ok());
        for bad in [
            claim("u-42", "0".repeat(64)),
            claim("u-43", signature("cls_current", "u-42")),
            claim("u-42", signature("cls_another_site", "u-42")),
            claim("", signature("cls_current", "")),
            claim("u-42\n", signature("cls_current", "u-42\n")),
        ] {
            assert!(verify(&secret, Some(&site), &bad).is_err(), "{bad:?}");
        }
        assert!(
            verify(&secret, None, &good).is_err(),
            "no secret, no identity"
        );
    }

    #[test]
    fn a_rotated_secret_verifies_only_within_its_grace() {
        let secret = Secret::new("identity-test-secret-0123456789abcdef");
        let old = claim("u-1", signature("cls_old", "u-1"));
        let within = identity(&secret, "cls_new", Some(("cls_old", now_ms() + 60_000)));
        assert!(verify(&secret, Some(&within), &old).is_ok());
        let past = identity(&secret, "cls_new", Some(("cls_old", now_ms() - 1)));
        assert!(verify(&secret, Some(&past), &old).is_err());
        let new = claim("u-1", signature("cls_new", "u-1"));
        assert!(verify(&secret, Some(&past), &new).is_ok());
    }

    #[test]
    fn the_signature_is_the_hmac_host_sites_compute() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature("Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
