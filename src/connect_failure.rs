//! Why a connection to the database or to Redis failed, in the words an
//! operator acts on: the host name does not resolve, nothing listens
//! there, no answer, TLS (a certificate from a CA Careline does not
//! trust, a certificate for another host name, a server without TLS),
//! the credentials, or something else. Read from the error's chain of
//! causes, whichever client library raised it; the bottom floor, it
//! imports nothing of the crate.

use std::error::Error;
use std::fmt;

/// One connection failure, classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The host name does not resolve.
    Dns,
    /// Nothing listens at that host and port.
    Refused,
    /// No answer in time.
    Timeout,
    /// TLS: the server's certificate is not signed by a CA Careline trusts.
    UnknownCa,
    /// TLS: the server's certificate is for another host name (what the
    /// TLS library said of the names).
    WrongHost(String),
    /// TLS is required, and the server does not speak it.
    NoTls,
    /// Another TLS problem (an expired certificate, a failed handshake).
    Tls(String),
    /// The server refused the user name or password.
    Auth(String),
    /// Anything else, as the client library said it.
    Other(String),
}

impl Failure {
    /// Whether the failure is about TLS.
    pub fn is_tls(&self) -> bool {
        matches!(
            self,
            Failure::UnknownCa | Failure::WrongHost(_) | Failure::NoTls | Failure::Tls(_)
        )
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Dns => write!(f, "DNS: the host name does not resolve"),
            Failure::Refused => write!(
                f,
                "connection refused: nothing listens at that host and port"
            ),
            Failure::Timeout => write!(
                f,
                "timed out: no answer in time (a firewall, or the wrong host or port?)"
            ),
            Failure::UnknownCa => write!(
                f,
                "TLS: bad certificate: the server's certificate is not signed by a CA Careline trusts"
            ),
            Failure::WrongHost(detail) => write!(
                f,
                "TLS: wrong host name: the server's certificate is for another host name ({detail})"
            ),
            Failure::NoTls => write!(
                f,
                "TLS: the server has no TLS, and TLS is required (nothing was sent in plain text)"
            ),
            Failure::Tls(detail) => write!(f, "TLS: {detail}"),
            Failure::Auth(detail) => write!(f, "authentication failed: {detail}"),
            Failure::Other(detail) => write!(f, "{detail}"),
        }
    }
}

/// Classifies `error` by the most telling of its causes.
pub fn classify(error: &(dyn Error + 'static)) -> Failure {
    let chain = causes(error);
    for &cause in &chain {
        if let Some(tls) = cause.downcast_ref::<rustls::Error>() {
            return from_rustls(tls);
        }
    }
    for &cause in &chain {
        if let Some(failure) = from_sqlx(cause) {
            return failure;
        }
        if let Some(failure) = from_redis(cause) {
            return failure;
        }
    }
    for &cause in &chain {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            match io.kind() {
                std::io::ErrorKind::ConnectionRefused => return Failure::Refused,
                std::io::ErrorKind::TimedOut => return Failure::Timeout,
                _ => {}
            }
        }
        if let Some(failure) = from_text(&cause.to_string()) {
            return failure;
        }
    }
    Failure::Other(error.to_string())
}

/// A cause known only by its text: some libraries keep the error they
/// met behind a type that cannot be looked into (the Redis client holds
/// its I/O errors in an `Arc`). The words are those of rustls, std and
/// the resolvers.
fn from_text(text: &str) -> Option<Failure> {
    if let Some(at) = text.find("invalid peer certificate: ") {
        let detail = &text[at + "invalid peer certificate: ".len()..];
        return Some(
            if detail.starts_with("UnknownIssuer") || detail.starts_with("BadSignature") {
                Failure::UnknownCa
            } else if detail.starts_with("NotValidForName")
                || detail.starts_with("certificate not valid for name")
            {
                Failure::WrongHost(detail.to_string())
            } else {
                Failure::Tls(format!("bad certificate: {detail}"))
            },
        );
    }
    if text.contains("received corrupt message") {
        return Some(Failure::NoTls);
    }
    if text.contains("Connection refused") {
        return Some(Failure::Refused);
    }
    if text.contains("timed out") {
        return Some(Failure::Timeout);
    }
    names_a_failed_lookup(text).then_some(Failure::Dns)
}

/// `error` and every cause below it. `io::Error::source` skips the error
/// it wraps, so that one is looked into as well.
fn causes<'a>(error: &'a (dyn Error + 'static)) -> Vec<&'a (dyn Error + 'static)> {
    let mut chain = Vec::new();
    let mut next = Some(error);
    while let Some(cause) = next {
        chain.push(cause);
        next = match cause
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner as &(dyn Error + 'static)),
            None => cause.source(),
        };
        if chain.len() > 32 {
            break;
        }
    }
    chain
}

fn from_rustls(error: &rustls::Error) -> Failure {
    use rustls::CertificateError as Cert;
    match error {
        rustls::Error::InvalidCertificate(
            Cert::UnknownIssuer | Cert::BadSignature | Cert::UnhandledCriticalExtension,
        ) => Failure::UnknownCa,
        rustls::Error::InvalidCertificate(
            cert @ (Cert::NotValidForName | Cert::NotValidForNameContext { .. }),
        ) => Failure::WrongHost(cert.to_string()),
        rustls::Error::InvalidCertificate(other) => {
            Failure::Tls(format!("bad certificate: {other:?}"))
        }
        // What a server that answers in plain text looks like from inside
        // a TLS handshake.
        rustls::Error::InvalidMessage(_) => Failure::NoTls,
        other => Failure::Tls(other.to_string()),
    }
}

fn from_sqlx(error: &(dyn Error + 'static)) -> Option<Failure> {
    match error.downcast_ref::<sqlx::Error>()? {
        sqlx::Error::Tls(reason) if reason.to_string().contains("does not support TLS") => {
            Some(Failure::NoTls)
        }
        sqlx::Error::Database(db) => {
            // SQLSTATE class 28: invalid authorization (PostgreSQL and MySQL).
            if db.code().is_some_and(|code| code.starts_with("28")) {
                Some(Failure::Auth(db.message().to_string()))
            } else {
                Some(Failure::Other(db.message().to_string()))
            }
        }
        sqlx::Error::PoolTimedOut => Some(Failure::Timeout),
        _ => None,
    }
}

fn from_redis(error: &(dyn Error + 'static)) -> Option<Failure> {
    let redis = error.downcast_ref::<redis::RedisError>()?;
    let refused_credentials = redis.kind() == redis::ErrorKind::AuthenticationFailed
        || matches!(redis.code(), Some("WRONGPASS" | "NOAUTH"));
    refused_credentials.then(|| Failure::Auth(redis.to_string()))
}

/// What resolvers say when a name does not resolve (glibc, macOS, and the
/// Redis client's own words).
fn names_a_failed_lookup(text: &str) -> bool {
    [
        "failed to lookup address",
        "Name or service not known",
        "nodename nor servname",
        "No address found",
        "Temporary failure in name resolution",
        "No such host",
    ]
    .iter()
    .any(|words| text.contains(words))
}

/// `text` with the password of `url` (if it has one) replaced by `***`:
/// a client library's message may quote what it was given.
pub fn without_password(text: &str, url: &str) -> String {
    let Some(password) = password_of(url) else {
        return text.to_string();
    };
    text.replace(password, "***")
}

fn password_of(url: &str) -> Option<&str> {
    let rest = &url[url.find("://")? + 3..];
    let userinfo = &rest[..rest.rfind('@')?];
    let (_, password) = userinfo.split_once(':')?;
    (!password.is_empty()).then_some(password)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn io(kind: std::io::ErrorKind, text: &str) -> std::io::Error {
        std::io::Error::new(kind, text.to_string())
    }

    #[test]
    fn causes_are_read_through_io_errors_and_library_errors() {
        let refused = sqlx::Error::Io(io(std::io::ErrorKind::ConnectionRefused, "refused"));
        assert_eq!(classify(&refused), Failure::Refused);
        let lookup = sqlx::Error::Io(io(
            std::io::ErrorKind::Other,
            "failed to lookup address information: Name or service not known",
        ));
        assert_eq!(classify(&lookup), Failure::Dns);
        let wrong_host = sqlx::Error::Io(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForName),
        ));
        assert!(matches!(classify(&wrong_host), Failure::WrongHost(_)));
        let unknown_ca = redis::RedisError::from(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
        ));
        assert_eq!(classify(&unknown_ca), Failure::UnknownCa);
        let in_words = redis::RedisError::from((
            redis::ErrorKind::Io,
            "TLS",
            "invalid peer certificate: UnknownIssuer".to_string(),
        ));
        assert_eq!(classify(&in_words), Failure::UnknownCa);
        let no_tls = sqlx::Error::Tls("server does not support TLS".into());
        assert_eq!(classify(&no_tls), Failure::NoTls);
        assert!(Failure::NoTls.to_string().starts_with("TLS: "));
        let other = sqlx::Error::Protocol("what".into());
        assert!(matches!(classify(&other), Failure::Other(_)));
    }

    #[test]
    fn a_password_in_the_url_is_taken_out_of_any_text() {
        let url = "postgres://careline:hunter2@db:5432/careline";
        assert_eq!(
            without_password("login for careline:hunter2 failed", url),
            "login for careline:*** failed"
        );
        assert_eq!(
            without_password("x", "rediss://:s3cret@redis:6380"),
            "x".to_string()
        );
        assert_eq!(
            without_password("s3cret", "rediss://:s3cret@redis:6380"),
            "***"
        );
        assert_eq!(without_password("abc", "sqlite://./data/c.db"), "abc");
    }
}
