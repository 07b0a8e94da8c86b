//! What every adapter (bus, bot, mailer, blobs) is built with: the boxed
//! future its trait methods return and, for those that call out over
//! HTTPS, one client with TLS and bounded timeouts. The bottom floor:
//! it imports nothing of the crate.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// What a port's methods return, so that the traits stay object safe.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Installs the TLS crypto provider (ring) once per process; every HTTPS
/// client (Watson, SendGrid, S3) is built after this.
pub fn install_tls() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // Another component may have installed one already: that one is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// Whether `pem` holds a CA's certificate, as every setting or URL that
/// names a CA file is checked: the reason it does not, as words that follow
/// the file's name ("is not PEM: …", "holds no certificate …").
pub fn check_ca_pem(pem: &[u8]) -> Result<(), String> {
    use rustls::pki_types::{CertificateDer, pem::PemObject};
    let certificates = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("is not PEM: {e}"))?;
    if certificates.is_empty() {
        return Err("holds no certificate (-----BEGIN CERTIFICATE-----)".into());
    }
    Ok(())
}

/// An HTTP client for services the operator configured (SendGrid, S3):
/// TLS via rustls, bounded timeouts. A URL an admin enters is never
/// called with it, but through the egress policy (`src/egress/`).
pub fn http_client(timeout: Duration) -> reqwest::Client {
    install_tls();
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(Duration::from_secs(5))
        .build()
        .expect("the HTTP client builds with a crypto provider installed")
}
