//! Accounts: registration, logging in and out, profile and password changes,
//! the first admin, and staff management by admins.

use super::{DomainError, DomainResult, invalid, parse_name, password};

use crate::auth::{hash_token, random_token};
use crate::bus::{Bus, Envelope, Topic};
use crate::model::{Email, Role, User, UserId};
use crate::store::{NewEmail, RoleChange, Store, StoreError, TokenEmail, now_ms};

/// A new login session: the token goes into the cookie, only its hash is stored.
pub struct Session {
    pub token: String,
    pub user: User,
}

fn duplicate_email(e: StoreError) -> DomainError {
    match e {
        StoreError::Duplicate(_) => invalid(
            "email",
            "An account with this email already exists. Log in, or use another email.",
        ),
        other => other.into(),
    }
}

async fn create(
    store: &Store,
    email: &str,
    name: &str,
    pw: &str,
    role: Role,
) -> DomainResult<User> {
    let name = parse_name(name)?;
    let email = Email::parse(email)?;
    password::check_new(pw)?;
    let hash = password::hash(pw).await?;
    store
        .create_user(&email, &name, &hash, role)
        .await
        .map_err(duplicate_email)
}

/// A customer signs up. In the same transaction they get an email with a
/// link that proves the address is theirs.
pub async fn register(
    store: &Store,
    name: &str,
    email: &str,
    pw: &str,
    public_url: &str,
) -> DomainResult<User> {
    let name = parse_name(name)?;
    let email = Email::parse(email)?;
    password::check_new(pw)?;
    let hash = password::hash(pw).await?;
    let (_, verification) = token_email(TokenKind::Verify, email.as_str(), &name, public_url);
    store
        .create_user_with(&email, &name, &hash, Role::Customer, Some(&verification))
        .await
        .map_err(duplicate_email)
}

/// What a single-use emailed link is for.
#[derive(Clone, Copy)]
enum TokenKind {
    Verify,
    Reset,
    Invite,
}

impl TokenKind {
    /// (stored purpose, email template, path of the link, lifetime in ms)
    fn details(self) -> (&'static str, &'static str, &'static str, i64) {
        const HOUR: i64 = 3_600_000;
        match self {
            TokenKind::Verify => ("verify_email", "verify_email", "/verify", 72 * HOUR),
            TokenKind::Reset => ("password", "password_reset", "/password", HOUR),
            // An invitation sets the first password: the same page as a reset.
            TokenKind::Invite => ("password", "agent_invitation", "/password", 72 * HOUR),
        }
    }
}

/// A fresh token and the email that carries its link.
fn token_email(kind: TokenKind, to: &str, name: &str, public_url: &str) -> (String, TokenEmail) {
    let (purpose, template, path, lifetime) = kind.details();
    let token = random_token(32);
    let email = NewEmail {
        to: to.to_string(),
        template,
        payload: serde_json::json!({
            "name": name,
            "link": format!("{public_url}{path}?token={token}"),
            "hours": lifetime / 3_600_000,
        }),
    };
    let token_email = TokenEmail {
        token_hash: hash_token(&token),
        purpose,
        expires_at: now_ms() + lifetime,
        email,
    };
    (token, token_email)
}

/// Sends the verification link again.
pub async fn send_verification(store: &Store, user: &User, public_url: &str) -> DomainResult<()> {
    if user.verified {
        return Ok(());
    }
    let (_, verification) = token_email(TokenKind::Verify, &user.email, &user.name, public_url);
    Ok(store.issue_token(user.id, &verification).await?)
}

/// Follows a verification link: true when it marked an address verified.
pub async fn verify_email(store: &Store, token: &str) -> DomainResult<bool> {
    let (purpose, ..) = TokenKind::Verify.details();
    match store.use_email_token(&hash_token(token), purpose).await? {
        Some(user) => {
            store.set_verified(user).await?;
            Ok(true)
        }
        None => Ok(false),
    }
}

/// "Forgot password": emails a single-use link valid for an hour. The
/// answer is the same whether or not the address has an account.
pub async fn request_password_reset(
    store: &Store,
    email: &str,
    public_url: &str,
) -> DomainResult<()> {
    let Ok(email) = Email::parse(email) else {
        return Ok(());
    };
    if let Some((user, _)) = store.user_with_hash(&email).await? {
        let (_, reset) = token_email(TokenKind::Reset, &user.email, &user.name, public_url);
        store.issue_token(user.id, &reset).await?;
    }
    Ok(())
}

/// Sets a new password from an emailed link (a reset or an invitation).
/// The link works once; every session of the account ends; the address is
/// proven, so it counts as verified.
pub async fn set_password_with_token(
    store: &Store,
    bus: &dyn Bus,
    token: &str,
    new: &str,
) -> DomainResult<()> {
    password::check_new(new)?;
    let hash = password::hash(new).await?;
    let (purpose, ..) = TokenKind::Reset.details();
    let user = store
        .use_email_token(&hash_token(token), purpose)
        .await?
        .ok_or_else(|| {
            invalid(
                "token",
                "This link has expired or was already used. Ask for a new one.",
            )
        })?;
    store.set_password_hash(user, &hash, None).await?;
    announce_change(bus, user).await;
    store.set_verified(user).await?;
    Ok(())
}

/// The setup page: creates the first admin, once. Afterwards it refuses.
pub async fn create_first_admin(
    store: &Store,
    name: &str,
    email: &str,
    pw: &str,
) -> DomainResult<User> {
    if store.any_admin_exists().await? {
        return Err(DomainError::Conflict("Careline is already set up.".into()));
    }
    let user = create(store, email, name, pw, Role::Admin).await?;
    store
        .audit(Some(user.id), "setup.first_admin", user.email.as_str())
        .await?;
    Ok(user)
}

/// The command line's `user create`: any role, no admin needed.
pub async fn create_with_role(
    store: &Store,
    name: &str,
    email: &str,
    pw: &str,
    role: Role,
) -> DomainResult<User> {
    create(store, email, name, pw, role).await
}

/// An admin creates an agent or admin account.
pub async fn create_staff(
    store: &Store,
    admin: &User,
    name: &str,
    email: &str,
    role: Role,
    public_url: &str,
) -> DomainResult<User> {
    require_admin(admin)?;
    if !role.is_staff() {
        return Err(invalid("role", "Choose agent or admin."));
    }
    let name = parse_name(name)?;
    let email = Email::parse(email)?;
    // Nobody knows this password: the invited person chooses theirs from
    // the emailed link.
    let unusable = password::hash(&random_token(32)).await?;
    let (_, invitation) = token_email(TokenKind::Invite, email.as_str(), &name, public_url);
    let user = store
        .create_user_with(&email, &name, &unusable, role, Some(&invitation))
        .await
        .map_err(duplicate_email)?;
    store
        .audit(
            Some(admin.id),
            "user.invite",
            &format!("{} as {}", user.email, role),
        )
        .await?;
    Ok(user)
}

/// An admin changes someone's role. Admins cannot demote themselves, and
/// the change is made only if its author is still an admin when it is
/// written, so that an install is never left without one.
pub async fn change_role(
    store: &Store,
    bus: &dyn Bus,
    admin: &User,
    target: UserId,
    role: Role,
) -> DomainResult<User> {
    require_admin(admin)?;
    if target == admin.id && role != Role::Admin {
        return Err(DomainError::Conflict(
            "You cannot remove your own admin role; ask another admin.".into(),
        ));
    }
    let user = store.user(target).await?.ok_or(DomainError::NotFound)?;
    match store.change_role_as(admin.id, target, role).await {
        Ok(RoleChange::Changed) => {}
        // Demoted by another admin while this change was on its way.
        Ok(RoleChange::ActorNotAdmin) => {
            return Err(DomainError::Forbidden(
                "You are no longer an admin, so this change was not made.",
            ));
        }
        Err(StoreError::NotFound) => return Err(DomainError::NotFound),
        Err(e) => return Err(e.into()),
    }
    announce_change(bus, target).await;
    store
        .audit(
            Some(admin.id),
            "user.role",
            &format!("{}: {} -> {}", user.email, user.role, role),
        )
        .await?;
    Ok(User { role, ..user })
}

/// The account an admin typed the address of into form field `field`;
/// errors say what is wrong under that field.
pub async fn person_by_email(
    store: &Store,
    email: &str,
    field: &'static str,
) -> DomainResult<User> {
    let email =
        Email::parse(email).map_err(|_| invalid(field, "Enter the person's email address."))?;
    let (person, _) = store
        .user_with_hash(&email)
        .await?
        .ok_or_else(|| invalid(field, "Nobody has an account with this email."))?;
    Ok(person)
}

/// The password hash of an account made for someone who never chose one
/// (they wrote an email, or an integration opened a ticket for them): no
/// password matches it; "Forgot password" proves the address and sets one.
const NO_PASSWORD_YET: &str = "!opened-by-email";

/// The account of `address`, made as a customer's (named `name`, or by the
/// address) when Careline does not know it yet: whoever writes to support,
/// or is written for by an integration, has their tickets in one place.
pub async fn customer_by_email(store: &Store, address: &Email, name: &str) -> DomainResult<User> {
    if let Some((user, _)) = store.user_with_hash(address).await? {
        return Ok(user);
    }
    let name = match crate::model::text::clean_line(name) {
        n if n.trim().is_empty() => address
            .as_str()
            .split('@')
            .next()
            .unwrap_or("Customer")
            .to_string(),
        n => n.chars().take(100).collect(),
    };
    match store
        .create_user(address, &name, NO_PASSWORD_YET, Role::Customer)
        .await
    {
        Ok(user) => Ok(user),
        // Made meanwhile by another email or a registration.
        Err(StoreError::Duplicate(_)) => store
            .user_with_hash(address)
            .await?
            .map(|(user, _)| user)
            .ok_or(DomainError::NotFound),
        Err(e) => Err(e.into()),
    }
}

/// The most live chats one person may be given at once.
pub const MAX_CAPACITY: i64 = 50;

/// Why a customer's capacity cannot be set.
fn takes_no_chats() -> DomainError {
    invalid(
        "capacity_email",
        "Only agents and admins take chats: change the role first.",
    )
}

/// Sets how many live chats the staff member with `email` may hold at once
/// (admins only). Returns that person.
pub async fn set_capacity(
    store: &Store,
    admin: &User,
    email: &str,
    capacity: &str,
) -> DomainResult<User> {
    require_admin(admin)?;
    let capacity: i64 = capacity
        .trim()
        .parse()
        .ok()
        .filter(|n| (1..=MAX_CAPACITY).contains(n))
        .ok_or_else(|| {
            invalid(
                "capacity",
                format!("Enter a whole number of chats from 1 to {MAX_CAPACITY}."),
            )
        })?;
    let target = person_by_email(store, email, "capacity_email").await?;
    if !target.role.is_staff() {
        return Err(takes_no_chats());
    }
    // The update holds only for staff: a person demoted since the check
    // above is told so under the field, as if the check had seen it.
    match store.set_capacity(target.id, capacity).await {
        Err(StoreError::NotFound) => return Err(takes_no_chats()),
        other => other?,
    }
    store
        .audit(
            Some(admin.id),
            "user.capacity",
            &format!("{}: {capacity}", target.email),
        )
        .await?;
    Ok(target)
}

fn require_admin(user: &User) -> DomainResult<()> {
    if user.role == Role::Admin {
        Ok(())
    } else {
        Err(DomainError::NotFound)
    }
}

/// Logs in. An unknown email and a wrong password get the same answer and
/// take the same time.
pub async fn login(store: &Store, email: &str, pw: &str, ttl_hours: u64) -> DomainResult<Session> {
    let found = match Email::parse(email) {
        Ok(email) => store.user_with_hash(&email).await?,
        Err(_) => None,
    };
    let (user, hash) = match found {
        Some((user, hash)) => (Some(user), Some(hash)),
        None => (None, None),
    };
    if !password::verify(pw, hash).await? {
        return Err(DomainError::BadCredentials);
    }
    let user = user.ok_or(DomainError::BadCredentials)?;
    start_session(store, user, ttl_hours).await
}

/// A fresh session for `user` (after login, or right after registering).
pub async fn start_session(store: &Store, user: User, ttl_hours: u64) -> DomainResult<Session> {
    let token = random_token(32);
    let expires_at = now_ms() + (ttl_hours as i64) * 3_600_000;
    store
        .create_session(&hash_token(&token), user.id, expires_at)
        .await?;
    Ok(Session { token, user })
}

/// The user behind a session cookie, if the session is live.
pub async fn session_user(store: &Store, token: &str) -> DomainResult<Option<User>> {
    Ok(store.session_user(&hash_token(token)).await?)
}

pub async fn logout(store: &Store, bus: &dyn Bus, token: &str) -> DomainResult<()> {
    if let Some(user) = store.delete_session(&hash_token(token)).await? {
        announce_change(bus, user).await;
    }
    Ok(())
}

pub async fn update_profile(
    store: &Store,
    bus: &dyn Bus,
    user: &User,
    name: &str,
) -> DomainResult<()> {
    let name = parse_name(name)?;
    store.set_name(user.id, &name).await?;
    announce_change(bus, user.id).await;
    Ok(())
}

/// Tells every instance that `user`'s account changed ([`Topic::Account`]);
/// their consoles re-check their session. An open console listens to its
/// own account, so it ends or picks up the change at once without asking
/// the database on every frame. Called after the change is committed. If the
/// bus is down the consoles still re-check on their heartbeat (30 s), and a
/// bus reconnect makes them all re-check.
async fn announce_change(bus: &dyn Bus, user: UserId) {
    // Bounded: a logout must not hang on a bus that is down.
    let publish = bus.publish(Topic::Account(user), Envelope::frame("{}".into()));
    match tokio::time::timeout(ANNOUNCE_TIMEOUT, publish).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(%user, error = %e, "could not announce an account change"),
        Err(_) => tracing::warn!(%user, "could not announce an account change in time"),
    }
}

/// Longest an account change waits to be announced on the bus.
const ANNOUNCE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

/// Changes the password after checking the current one; every other session
/// of the user ends.
pub async fn change_password(
    store: &Store,
    bus: &dyn Bus,
    user: &User,
    current_session: &str,
    current: &str,
    new: &str,
) -> DomainResult<()> {
    let stored = store.password_hash(user.id).await?;
    if !password::verify(current, Some(stored)).await? {
        return Err(invalid(
            "current_password",
            "That is not your current password.",
        ));
    }
    password::check_new(new).map_err(|e| match e {
        DomainError::Invalid { message, .. } => invalid("new_password", message),
        other => other,
    })?;
    let hash = password::hash(new).await?;
    store
        .set_password_hash(user.id, &hash, Some(&hash_token(current_session)))
        .await?;
    announce_change(bus, user.id).await;
    Ok(())
}
