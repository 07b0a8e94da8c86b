//! Tokens and secrets: random session tokens, their stored hashes, and the
//! server secret that signs CSRF tokens.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use rand::Rng;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// `bytes` random bytes from the OS generator, base64url without padding.
pub fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

/// What the database keeps of a token: its SHA-256, hex encoded.
pub fn hash_token(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

/// `bytes` as lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// HMAC-SHA256 of `message` under `key`, lowercase hex: what a host site's
/// server signs its user ids with (the same in every language's library).
pub fn hmac_sha256_hex(key: &str, message: &str) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("HMAC takes any key length");
    mac.update(message.as_bytes());
    hex(&mac.finalize().into_bytes())
}

/// Whether `given` is the secret `expected`, in time that does not tell
/// how much of it matched.
pub fn same_secret(expected: &str, given: &str) -> bool {
    expected.as_bytes().ct_eq(given.as_bytes()).into()
}

/// The server's signing secret.
#[derive(Clone)]
pub struct Secret(Vec<u8>);

impl Secret {
    pub fn new(key: &str) -> Secret {
        Secret(key.as_bytes().to_vec())
    }

    /// Reads the secret kept in `data_dir`, creating one on first start.
    /// Several instances must share one secret: set `secret_key` for them.
    pub fn load_or_create(data_dir: &std::path::Path) -> std::io::Result<Secret> {
        let path = data_dir.join("secret.key");
        match std::fs::read_to_string(&path) {
            Ok(key) if key.trim().len() >= 32 => Ok(Secret::new(key.trim())),
            _ => {
                std::fs::create_dir_all(data_dir)?;
                let key = random_token(32);
                write_private(&path, &key)?;
                Ok(Secret::new(&key))
            }
        }
    }

    /// HMAC-SHA256 of `value` for `purpose` under the secret.
    fn mac(&self, purpose: &str, value: &str) -> [u8; 32] {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(purpose.as_bytes());
        mac.update(b"\0");
        mac.update(value.as_bytes());
        mac.finalize().into_bytes().into()
    }

    fn sign(&self, purpose: &str, value: &str) -> String {
        URL_SAFE_NO_PAD.encode(self.mac(purpose, value))
    }

    /// The first `chars` lowercase hex digits of the signature of `value`
    /// for `purpose` (a tag in an email address, where case may be lost).
    pub fn sign_hex(&self, purpose: &str, value: &str, chars: usize) -> String {
        let mut signature = hex(&self.mac(purpose, value));
        signature.truncate(chars);
        signature
    }

    /// The CSRF token bound to `binding`: the session token when logged in
    /// (so a planted cookie cannot carry a token into someone's session),
    /// otherwise the browser's random CSRF cookie (login, register, setup).
    pub fn csrf_token(&self, binding: &str) -> String {
        self.sign("csrf", binding)
    }

    /// The first-run setup token: only whoever reads the server's output
    /// (or holds the secret) has it.
    pub fn setup_token(&self) -> String {
        self.sign("setup", "first admin")[..24].to_string()
    }

    /// The key for settings stored encrypted (API keys): derived from the
    /// secret, so that a copy of the database alone does not reveal them.
    fn sealing_key(&self) -> chacha20poly1305::Key {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(b"settings-encryption-v1");
        let bytes = mac.finalize().into_bytes();
        let mut key = chacha20poly1305::Key::default();
        key.copy_from_slice(&bytes);
        key
    }

    /// Encrypts `plaintext` (XChaCha20-Poly1305, random nonce).
    pub fn seal(&self, plaintext: &str) -> String {
        use chacha20poly1305::aead::{Aead, KeyInit as _};
        let cipher = chacha20poly1305::XChaCha20Poly1305::new(&self.sealing_key());
        let mut nonce = [0u8; 24];
        rand::rng().fill_bytes(&mut nonce);
        let sealed = cipher
            .encrypt(&nonce.into(), plaintext.as_bytes())
            .expect("encryption of a short value cannot fail");
        let mut out = nonce.to_vec();
        out.extend(sealed);
        URL_SAFE_NO_PAD.encode(out)
    }

    /// Decrypts what [`Secret::seal`] made; `None` if it was tampered with
    /// or sealed under another secret.
    pub fn open(&self, sealed: &str) -> Option<String> {
        use chacha20poly1305::aead::{Aead, KeyInit as _};
        let bytes = URL_SAFE_NO_PAD.decode(sealed).ok()?;
        if bytes.len() < 24 {
            return None;
        }
        let (nonce, ciphertext) = bytes.split_at(24);
        let nonce: [u8; 24] = nonce.try_into().ok()?;
        let cipher = chacha20poly1305::XChaCha20Poly1305::new(&self.sealing_key());
        let plain = cipher.decrypt(&nonce.into(), ciphertext).ok()?;
        String::from_utf8(plain).ok()
    }

    pub fn csrf_matches(&self, binding: &str, token: &str) -> bool {
        same_secret(&self.csrf_token(binding), token)
    }
}

#[cfg(unix)]
fn write_private(path: &std::path::Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(contents.as_bytes())
}

#[cfg(not(unix))]
fn write_private(path: &std::path::Path, contents: &str) -> std::io::Result<()> {
    std::fs::write(path, contents)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_hashes_stable() {
        let a = random_token(32);
        assert_eq!(a.len(), 43);
        assert_ne!(a, random_token(32));
        assert_eq!(hash_token("abc"), hash_token("abc"));
        assert_eq!(hash_token("abc").len(), 64);
    }

    #[test]
    fn csrf_tokens_bind_to_cookie_and_secret() {
        let secret = Secret::new("0123456789abcdef0123456789abcdef");
        let token = secret.csrf_token("cookie-a");
        assert!(secret.csrf_matches("cookie-a", &token));
        assert!(!secret.csrf_matches("cookie-b", &token));
        assert!(!secret.csrf_matches("cookie-a", ""));
        let other = Secret::new("another secret of thirty-two chars!");
        assert!(!other.csrf_matches("cookie-a", &token));
    }

    #[test]
    fn sealed_values_open_only_with_the_same_secret() {
        let secret = Secret::new("0123456789abcdef0123456789abcdef");
        let sealed = secret.seal("api-key-123");
        assert!(!sealed.contains("api-key-123"));
        assert_ne!(
            sealed,
            secret.seal("api-key-123"),
            "a fresh nonce each time"
        );
        assert_eq!(secret.open(&sealed).as_deref(), Some("api-key-123"));
        let other = Secret::new("another secret of thirty-two chars!");
        assert_eq!(other.open(&sealed), None);
        let mut tampered = sealed.clone();
        tampered.replace_range(40..41, if &sealed[40..41] == "A" { "B" } else { "A" });
        assert_eq!(secret.open(&tampered), None);
    }

    #[test]
    fn secret_is_created_once_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let first = Secret::load_or_create(dir.path()).unwrap();
        let again = Secret::load_or_create(dir.path()).unwrap();
        assert_eq!(first.csrf_token("x"), again.csrf_token("x"));
    }
}
