//! Careline, the Customer Care Registry. `lib.rs` builds the application
//! from its configuration: the one place where adapters are chosen.

pub mod auth;
pub mod config;
pub mod domain;
pub mod store;
pub mod web;

use std::net::SocketAddr;

use tokio::net::TcpListener;

use crate::auth::Secret;
use crate::config::Config;
use crate::store::Store;
use crate::web::AppState;

/// A configured application, ready to serve.
pub struct App {
    pub state: AppState,
    /// Present while no admin exists: the token the setup page asks for.
    pub setup_token: Option<String>,
}

impl App {
    pub async fn build(config: Config) -> anyhow::Result<App> {
        let store = Store::open(&config.database_url, config.database_max_connections).await?;
        let secret = match &config.secret_key {
            Some(key) => Secret::new(key),
            None => Secret::load_or_create(&config.data_dir).map_err(|e| {
                anyhow::anyhow!(
                    "cannot keep the generated secret in {}: {e}; set `secret_key` or fix the directory",
                    config.data_dir.display()
                )
            })?,
        };
        store.default_site().await?;
        let setup_token = if store.any_admin_exists().await? {
            None
        } else {
            Some(auth::random_token(18))
        };
        let state = AppState::new(store, config, secret, setup_token.clone());
        Ok(App { state, setup_token })
    }

    /// Serves on `listener` until `shutdown` completes, then drains.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let store = self.state.store().clone();
        spawn_housekeeping(store.clone());
        let router = web::router(self.state);
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await?;
        store.close().await;
        Ok(())
    }
}

/// Periodic clean-up that needs no coordination between instances.
fn spawn_housekeeping(store: Store) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(3600));
        loop {
            tick.tick().await;
            match store.delete_expired_sessions().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(sessions = n, "removed expired sessions"),
                Err(e) => tracing::warn!(error = %e, "could not remove expired sessions"),
            }
        }
    });
}
