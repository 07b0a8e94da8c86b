//! Accounts: registration, logging in and out, profile and password changes,
//! the first admin, and staff management by admins.

use super::{DomainError, DomainResult, Email, Role, User, UserId, invalid, parse_name, password};
use crate::auth::{hash_token, random_token};
use crate::store::{Store, StoreError, now_ms};

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

/// A customer signs up. They get an email to verify their address.
pub async fn register(
    store: &Store,
    name: &str,
    email: &str,
    pw: &str,
    public_url: &str,
) -> DomainResult<User> {
    let user = create(store, email, name, pw, Role::Customer).await?;
    send_verification(store, &user, public_url).await?;
    Ok(user)
}

/// How long an email verification link works.
const VERIFY_FOR_MS: i64 = 3 * 24 * 3_600_000;
const VERIFY: &str = "verify_email";

/// Queues an email with a single-use link that proves the address is theirs.
pub async fn send_verification(store: &Store, user: &User, public_url: &str) -> DomainResult<()> {
    if user.verified {
        return Ok(());
    }
    let token = random_token(32);
    store
        .create_email_token(
            &hash_token(&token),
            user.id,
            VERIFY,
            now_ms() + VERIFY_FOR_MS,
        )
        .await?;
    let payload = serde_json::json!({
        "name": user.name,
        "link": format!("{public_url}/verify?token={token}"),
    });
    store.enqueue_email(&user.email, VERIFY, &payload).await?;
    Ok(())
}

/// Follows a verification link: true when it marked an address verified.
pub async fn verify_email(store: &Store, token: &str) -> DomainResult<bool> {
    match store.use_email_token(&hash_token(token), VERIFY).await? {
        Some(user) => {
            store.set_verified(user).await?;
            Ok(true)
        }
        None => Ok(false),
    }
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
    pw: &str,
    role: Role,
) -> DomainResult<User> {
    require_admin(admin)?;
    if !role.is_staff() {
        return Err(invalid("role", "Choose agent or admin."));
    }
    let user = create(store, email, name, pw, role).await?;
    store
        .audit(
            Some(admin.id),
            "user.create",
            &format!("{} as {}", user.email, role),
        )
        .await?;
    Ok(user)
}

/// An admin changes someone's role. Admins cannot demote themselves, so
/// that an install is never left without one.
pub async fn change_role(
    store: &Store,
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
    store.set_role(target, role).await?;
    store
        .audit(
            Some(admin.id),
            "user.role",
            &format!("{}: {} -> {}", user.email, user.role, role),
        )
        .await?;
    Ok(User { role, ..user })
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
    if !password::verify(pw, hash).await {
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

pub async fn logout(store: &Store, token: &str) -> DomainResult<()> {
    Ok(store.delete_session(&hash_token(token)).await?)
}

pub async fn update_profile(store: &Store, user: &User, name: &str) -> DomainResult<()> {
    let name = parse_name(name)?;
    Ok(store.set_name(user.id, &name).await?)
}

/// Changes the password after checking the current one; every other session
/// of the user ends.
pub async fn change_password(
    store: &Store,
    user: &User,
    current_session: &str,
    current: &str,
    new: &str,
) -> DomainResult<()> {
    let stored = store.password_hash(user.id).await?;
    if !password::verify(current, Some(stored)).await {
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
    Ok(())
}
