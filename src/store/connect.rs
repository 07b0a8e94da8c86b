//! Opening the connection pool: the URL's scheme picks the backend, the
//! pool checks idle connections, and each new connection gets the session
//! settings its backend needs.

use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Connection as _, Executor};

use super::{Backend, StoreError, StoreResult, redact};

/// A pooled connection idle at least this long is pinged before use.
const PING_IF_IDLE_FOR: Duration = Duration::from_secs(10);

/// Connects to the database at `url`, of `backend`, with at most
/// `max_connections` connections.
pub(super) async fn pool(
    url: &str,
    backend: Backend,
    max_connections: u32,
) -> StoreResult<AnyPool> {
    if backend == Backend::Sqlite {
        create_sqlite_parent_dir(url)?;
    }
    let options =
        AnyConnectOptions::from_str(&backend.driver_url(url)).map_err(|e| StoreError::Open {
            url: redact(url),
            reason: e.to_string(),
        })?;
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
        .map_err(|e| StoreError::Open {
            url: redact(url),
            reason: e.to_string(),
        })
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
