//! Password hashing with argon2id at OWASP's recommended cost (19 MiB, t=2,
//! p=1). Hashing is CPU-heavy, so it runs on the blocking pool, never on the
//! async workers that serve other requests.

use argon2::{Algorithm, Argon2, Params, PasswordHash, PasswordHasher, PasswordVerifier, Version};

use super::{DomainError, DomainResult, invalid};

pub const MIN_LENGTH: usize = 10;
pub const MAX_LENGTH: usize = 256;

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
/// reveal which emails have accounts.
pub async fn verify(password: &str, stored: Option<String>) -> bool {
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || {
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
    .unwrap_or(false)
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
        assert!(verify("correct horse battery", Some(a.clone())).await);
        assert!(!verify("wrong horse battery", Some(a)).await);
        assert!(!verify("anything at all", None).await);
    }

    #[test]
    fn new_passwords_are_bounded() {
        assert!(check_new("short").is_err());
        assert!(check_new(&"x".repeat(MAX_LENGTH + 1)).is_err());
        assert!(check_new("long enough pass").is_ok());
    }
}
