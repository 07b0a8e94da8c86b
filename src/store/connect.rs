//! Opening the connection pool: the URL's scheme picks the backend, the
//! pool checks idle connections, and each new connection gets the session
//! settings its backend needs.
//!
//! TLS is as the URL says (`sslmode`/`sslrootcert` for PostgreSQL as in
//! libpq, `ssl-mode`/`ssl-ca` for MySQL and MariaDB), through rustls with
//! ring. A CA named in the URL is always checked, and a first connection
//! is made before the pool so that a failure is told by its cause (see
//! [`crate::connect_failure`]) rather than as a pool timeout.

use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyConnection, AnyPool, Connection as _, Executor};

use super::{Backend, StoreError, StoreResult, redact};
use crate::connect_failure::{self, Failure};

/// A pooled connection idle at least this long is pinged before use.
const PING_IF_IDLE_FOR: Duration = Duration::from_secs(10);

/// How long the first connection may take. A refused one is tried again
/// meanwhile: the database may be starting beside Careline.
const FIRST_CONNECTION_WITHIN: Duration = Duration::from_secs(10);

/// Connects to the database at `url`, of `backend`, with at most
/// `max_connections` connections.
pub(super) async fn pool(
    url: &str,
    backend: Backend,
    max_connections: u32,
) -> StoreResult<AnyPool> {
    crate::adapter::install_tls();
    let open_error = |reason: String| StoreError::Open {
        url: redact(url),
        reason: connect_failure::without_password(&reason, url),
    };
    let sqlite = backend == Backend::Sqlite;
    if sqlite {
        create_sqlite_parent_dir(url)?;
    }
    let mut options = AnyConnectOptions::from_str(&backend.driver_url(url))
        .map_err(|e| open_error(e.to_string()))?;
    tls_settings(&mut options.database_url, backend).map_err(open_error)?;
    if !sqlite {
        first_connection(&options)
            .await
            .map_err(|failure| open_error(explain(&failure, backend)))?;
    }
    AnyPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(10))
        // sqlx pings every connection before handing it out: one extra
        // round trip per query, a third of all of them on the chat's
        // hot path (docs/benchmarks.md). A connection in steady use is
        // known to work; only one idle for a while (the database may
        // have restarted meanwhile) is checked first.
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for >= PING_IF_IDLE_FOR {
                    conn.ping().await?;
                }
                Ok(true)
            })
        })
        .after_connect(move |conn, _meta| {
            Box::pin(async move {
                for statement in backend.session_setup() {
                    conn.execute(*statement).await?;
                }
                Ok(())
            })
        })
        .connect_with(options)
        .await
        .map_err(|e| open_error(explain(&connect_failure::classify(&e), backend)))
}

/// Makes a first connection, trying a refused one again until
/// [`FIRST_CONNECTION_WITHIN`] has passed.
async fn first_connection(options: &AnyConnectOptions) -> Result<(), Failure> {
    let deadline = tokio::time::Instant::now() + FIRST_CONNECTION_WITHIN;
    let mut backoff = Duration::from_millis(50);
    loop {
        let attempt = tokio::time::timeout_at(deadline, AnyConnection::connect_with(options)).await;
        let failure = match attempt {
            Err(_) => return Err(Failure::Timeout),
            Ok(Ok(connection)) => {
                let _ = connection.close().await;
                return Ok(());
            }
            Ok(Err(e)) => connect_failure::classify(&e),
        };
        if failure != Failure::Refused || tokio::time::Instant::now() + backoff >= deadline {
            return Err(failure);
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(1));
    }
}

/// Checks and completes the TLS parameters of a network database's URL:
/// - a CA file named in the URL must be readable, and it is always checked:
///   `require` with a CA becomes `verify-ca` (as libpq does), and MySQL's
///   `REQUIRED` with a CA becomes `VERIFY_CA`;
/// - PostgreSQL's `sslrootcert=system` (libpq 16) means the system's roots
///   and `verify-full`;
/// - `sslmode=allow` is refused: sqlx would connect without TLS, never
///   trying it.
fn tls_settings(url: &mut url::Url, kind: Backend) -> Result<(), String> {
    let (mode_keys, ca_keys): (&[&str], &[&str]) = match kind {
        Backend::Postgres => (
            &["sslmode", "ssl-mode"],
            &["sslrootcert", "ssl-root-cert", "ssl-ca"],
        ),
        Backend::Mysql => (&["ssl-mode", "sslmode"], &["ssl-ca", "sslca"]),
        Backend::Sqlite => return Ok(()),
    };
    let mut pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    let mode_at = pairs
        .iter()
        .position(|(k, _)| mode_keys.contains(&k.as_str()));
    let ca_at = pairs
        .iter()
        .position(|(k, _)| ca_keys.contains(&k.as_str()));
    let mode = mode_at.map(|at| pairs[at].1.to_ascii_lowercase());
    let ca = ca_at.map(|at| pairs[at].1.clone());
    let mut new_mode = None;
    match (kind, mode.as_deref(), ca.as_deref()) {
        (Backend::Postgres, Some("allow"), _) => {
            return Err(
                "sslmode=allow is not supported: it would connect without TLS; \
                        use disable, prefer, require, verify-ca or verify-full"
                    .into(),
            );
        }
        (Backend::Postgres, mode, Some("system")) => {
            if mode.is_some_and(|m| m != "verify-full") {
                return Err("sslrootcert=system needs sslmode=verify-full (as in libpq)".into());
            }
            pairs.retain(|(k, _)| !ca_keys.contains(&k.as_str()));
            new_mode = Some("verify-full");
        }
        (_, _, Some(ca)) => {
            check_ca_file(ca, kind)?;
            new_mode = match (kind, mode.as_deref()) {
                (Backend::Postgres, Some("require")) => Some("verify-ca"),
                (Backend::Mysql, Some("required")) => Some("VERIFY_CA"),
                _ => None,
            };
        }
        _ => {}
    }
    if let Some(new_mode) = new_mode {
        pairs.retain(|(k, _)| !mode_keys.contains(&k.as_str()));
        pairs.push((mode_keys[0].to_string(), new_mode.to_string()));
    }
    if new_mode.is_some() || ca.as_deref() == Some("system") {
        url.query_pairs_mut().clear().extend_pairs(&pairs);
    }
    Ok(())
}

/// A CA named in a URL (a file, or PEM text) holds at least one certificate.
fn check_ca_file(ca: &str, kind: Backend) -> Result<(), String> {
    let parameter = ca_parameter(kind);
    let pem = if ca.trim_start().starts_with("-----BEGIN") {
        ca.as_bytes().to_vec()
    } else {
        std::fs::read(ca).map_err(|e| format!("cannot read {parameter} `{ca}`: {e}"))?
    };
    crate::adapter::check_ca_pem(&pem).map_err(|why| format!("{parameter} `{ca}` {why}"))
}

fn ca_parameter(kind: Backend) -> &'static str {
    match kind {
        Backend::Mysql => "ssl-ca",
        _ => "sslrootcert",
    }
}

/// The failure in words, with what to change in the URL where it helps.
fn explain(failure: &Failure, kind: Backend) -> String {
    let hint = match (failure, kind) {
        (_, Backend::Sqlite) => String::new(),
        (Failure::UnknownCa, kind) => format!(
            "; name the CA that signed it with {}=/path/to/ca.pem in the URL",
            ca_parameter(kind)
        ),
        (Failure::WrongHost(_), _) => "; connect by a host name the certificate names".to_string(),
        _ => String::new(),
    };
    format!("{failure}{hint}")
}

fn create_sqlite_parent_dir(url: &str) -> StoreResult<()> {
    let path = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:")
        .split('?')
        .next()
        .unwrap_or_default();
    if path.is_empty() || path == ":memory:" {
        return Ok(());
    }
    if let Some(parent) = std::path::Path::new(path).parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent).map_err(|e| StoreError::Open {
            url: url.to_string(),
            reason: format!("cannot create directory {}: {e}", parent.display()),
        })?;
    }
    Ok(())
}
