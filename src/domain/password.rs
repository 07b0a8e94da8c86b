//! Password hashing with argon2id at OWASP's recommended cost (19 MiB, t=2,
//! p=1). Hashing is CPU-heavy, so it runs on the blocking pool, never on the
//! async workers that serve other requests; and each hash holds 19 MiB, so
//! only so many run at once (`password_hashes_at_once`): a burst of logins
//! beyond that waits a moment, then is told to come back (503, Retry-After)
//! instead of growing the process until it is killed.

use std::sync::OnceLock;
use std::time::Duration;

use tokio::sync::Semaphore;

use argon2::{Algorithm, Argon2, Params, PasswordHash, PasswordHasher, PasswordVerifier, Version};

use super::{DomainError, DomainResult, invalid};

pub const MIN_LENGTH: usize = 10;
pub const MAX_LENGTH: usize = 256;

/// Hashes at once when nothing else was set (4 × 19 MiB).
pub const DEFAULT_AT_ONCE: usize = 4;

/// Longest a hash waits for its turn before the caller is told to retry.
const TURN_WAIT: Duration = Duration::from_secs(2);

/// Seconds a caller turned away is asked to wait.
const RETRY_AFTER_SECS: u64 = 2;

/// Turns to hash: so many at once, each waited for at most so long.
struct Turns {
    at_once: Semaphore,
    wait: Duration,
}

impl Turns {
    fn new(at_once: usize, wait: Duration) -> Turns {
        Turns {
            at_once: Semaphore::new(at_once.max(1)),
            wait,
        }
    }

    async fn take(&self) -> DomainResult<tokio::sync::SemaphorePermit<'_>> {
        match tokio::time::timeout(self.wait, self.at_once.acquire()).await {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(DomainError::Busy {
                message: "Too many people are logging in right now. Try again in a few seconds.",
                retry_after_secs: RETRY_AFTER_SECS,
            }),
        }
    }
}

static TURNS: OnceLock<Turns> = OnceLock::new();

/// Sets how many hashes may run at once; the first call wins (the app sets
/// it from its configuration before serving).
pub fn allow_at_once(n: usize) {
    let _ = TURNS.set(Turns::new(n, TURN_WAIT));
}

/// Waits for a hashing turn, at most [`TURN_WAIT`].
async fn turn() -> DomainResult<tokio::sync::SemaphorePermit<'static>> {
    TURNS
        .get_or_init(|| Turns::new(DEFAULT_AT_ONCE, TURN_WAIT))
        .take()
        .await
}

fn hasher() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).expect("OWASP argon2 parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// A new password must be long enough to resist guessing and short enough
/// not to be a denial-of-service vector.
pub fn check_new(password: &str) -> DomainResult<()> {
    let len = password.chars().count();
    if len < MIN_LENGTH {
        return Err(invalid(
            "password",
            format!("Use at least {MIN_LENGTH} characters."),
        ));
    }
    if len > MAX_LENGTH {
        return Err(invalid(
            "password",
            format!("Use at most {MAX_LENGTH} characters."),
        ));
    }
    Ok(())
}

pub async fn hash(password: &str) -> DomainResult<String> {
    let password = password.to_owned();
    let _turn = turn().await?;
    tokio::task::spawn_blocking(move || {
        hasher()
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
            .map_err(|e| DomainError::Internal(format!("password hashing failed: {e}")))
    })
    .await
    .map_err(|e| DomainError::Internal(format!("password hashing task failed: {e}")))?
}

/// Checks `password` against `stored`. With no stored hash (unknown user) it
/// still spends the same time on a dummy hash, so that response time does not
/// reveal which emails have accounts. Busy when no turn came in time.
pub async fn verify(password: &str, stored: Option<String>) -> DomainResult<bool> {
    let password = password.to_owned();
    let _turn = turn().await?;
    let verified = tokio::task::spawn_blocking(move || {
        let argon = hasher();
        match stored.as_deref().map(PasswordHash::new) {
            Some(Ok(hash)) => argon.verify_password(password.as_bytes(), &hash).is_ok(),
            _ => {
                let _ = argon.hash_password(password.as_bytes());
                false
            }
        }
    })
    .await
    .unwrap_or(false);
    Ok(verified)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_are_argon2id_salted_and_verify() {
        let a = hash("correct horse battery").await.unwrap();
        let b = hash("correct horse battery").await.unwrap();
        assert!(a.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{a}");
        assert_ne!(a, b, "each hash has its own salt");
        assert!(
            verify("correct horse battery", Some(a.clone()))
                .await
                .unwrap()
        );
        assert!(!verify("wrong horse battery", Some(a)).await.unwrap());
        assert!(!verify("anything at all", None).await.unwrap());
    }

    #[tokio::test]
    async fn beyond_its_turns_a_hash_is_told_to_come_back() {
        let turns = Turns::new(1, Duration::from_millis(50));
        let first = turns.take().await.expect("a free turn");
        match turns.take().await {
            Err(DomainError::Busy {
                retry_after_secs, ..
            }) => assert!(retry_after_secs > 0),
            other => panic!("expected busy, got {:?}", other.map(|_| ())),
        }
        drop(first);
        assert!(turns.take().await.is_ok(), "a turn given back is taken");
    }

    #[test]
    fn new_passwords_are_bounded() {
        assert!(check_new("short").is_err());
        assert!(check_new(&"x".repeat(MAX_LENGTH + 1)).is_err());
        assert!(check_new("long enough pass").is_ok());
    }
}
