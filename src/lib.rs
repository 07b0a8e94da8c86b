//! Careline, the Customer Care Registry. `lib.rs` builds the application
//! from its configuration: the one place where adapters are chosen.

pub mod adapter;
pub mod auth;
pub mod blobs;
pub mod bot;
pub mod bus;
pub mod config;
pub mod connect_failure;
pub mod domain;
pub mod egress;
pub mod mail;
pub mod metrics;
pub mod model;
pub mod protocol;
pub mod store;
pub mod web;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::serve::ListenerExt;
use tokio::net::TcpListener;

use crate::auth::Secret;
use crate::blobs::{Blobs, LocalBlobs, S3Blobs};
use crate::bot::Bot;
use crate::bot::faq::FaqBot;
use crate::bot::switching::SwitchingBot;
use crate::bus::{Bus, LocalBus, RedisBus};
use crate::config::{BlobConfig, Config, MailTransport, SmtpTls};
use crate::domain::chat::{Chat, ChatConfig};
use crate::domain::uploads::Files;
use crate::mail::sendgrid::SendGrid;
use crate::mail::smtp::{Security, Smtp, SmtpSettings};
use crate::mail::{LogMailer, Mailer};
use crate::store::Store;
use crate::web::AppState;

/// Seams chosen by the caller instead of by configuration.
#[derive(Default)]
pub struct Adapters {
    pub bus: Option<Arc<dyn Bus>>,
    pub bot: Option<Arc<dyn Bot>>,
    pub mailer: Option<Arc<dyn Mailer>>,
    pub blobs: Option<Arc<dyn Blobs>>,
    /// Where admin-given URLs' names are looked up (the system's resolver
    /// by default); the egress policy judges the answers all the same.
    pub dns: Option<Arc<dyn egress::Dns>>,
}

/// A configured application, ready to serve.
pub struct App {
    pub state: AppState,
    mailer: Arc<dyn Mailer>,
    /// Present while no admin exists: the token the setup page asks for.
    pub setup_token: Option<String>,
}

impl App {
    pub async fn build(config: Config) -> anyhow::Result<App> {
        App::build_with(config, Adapters::default()).await
    }

    /// Builds with some seams replaced (tests use it for a failing bot, or
    /// to give several instances one shared bus).
    pub async fn build_with(mut config: Config, adapters: Adapters) -> anyhow::Result<App> {
        if let Some(dns) = adapters.dns {
            config.egress = config.egress.with_dns(dns);
        }
        domain::password::allow_at_once(config.password_hashes_at_once);
        let store = open_store(&config, config.database_max_connections).await?;
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
        // Derived from the secret, so every instance sharing the secret
        // accepts the same token on its setup page.
        let setup_token = if store.any_admin_exists().await? {
            None
        } else {
            Some(secret.setup_token())
        };
        let bus: Arc<dyn Bus> = match (adapters.bus, &config.redis_url) {
            (Some(bus), _) => bus,
            (None, Some(url)) => {
                Arc::new(connect_redis(url, config.redis_ca_file.as_deref()).await?)
            }
            (None, None) => Arc::new(LocalBus::standalone()),
        };
        let bot: Arc<dyn Bot> = match adapters.bot {
            Some(bot) => bot,
            None => Arc::new(SwitchingBot::new(
                store.clone(),
                secret.clone(),
                FaqBot::new(store.clone(), config.faq_threshold),
                config.egress.clone(),
            )),
        };
        let chat_config = ChatConfig {
            bot_miss_limit: config.bot_miss_limit,
            bot_timeout: config.bot_timeout,
            ..ChatConfig::default()
        };
        let mailer: Arc<dyn Mailer> = match adapters.mailer {
            Some(mailer) => mailer,
            None => mailer_for(&config)?,
        };
        let blobs: Arc<dyn Blobs> = match (adapters.blobs, &config.blobs) {
            (Some(blobs), _) => blobs,
            (None, BlobConfig::Local) => Arc::new(LocalBlobs::new(config.data_dir.join("blobs"))),
            (None, BlobConfig::S3(settings)) => Arc::new(S3Blobs::new(settings).map_err(|e| {
                anyhow::anyhow!("{e} (settings `s3_*`: bucket {})", settings.bucket)
            })?),
        };
        let files = Files::new(blobs.clone(), config.attachment_max_bytes, &config.data_dir);
        let chat = Arc::new(Chat::new(store.clone(), bus, bot, chat_config).with_files(files));
        let state = AppState::new(store, chat, config, secret, blobs, setup_token.clone());
        Ok(App {
            state,
            mailer,
            setup_token,
        })
    }

    /// Serves on `listener` until `shutdown` completes. Then it stops
    /// accepting, closes every socket with 1001 (going away: clients
    /// reconnect, through the load balancer, and resume) and drains.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let store = self.state.store().clone();
        let hub = self.state.hub().clone();
        spawn_housekeeping(
            store.clone(),
            self.state.blobs().clone(),
            blobs::spool_dir(&self.state.config().data_dir),
        );
        let mail = &self.state.config().mail;
        let worker = mail::worker::spawn(
            store.clone(),
            self.mailer.clone(),
            mail::worker::WorkerConfig {
                public_url: self.state.config().public_url.clone(),
                poll: mail.poll,
                max_attempts: mail.max_attempts,
                backoff: mail.retry,
                threading: mail::worker::ThreadingConfig {
                    secret: self.state.secret().clone(),
                    from: mail.from.clone(),
                    reply_address: mail.reply_address.clone(),
                },
            },
        );
        let mailbox = domain::mailbox::spawn(
            self.state.chat().clone(),
            self.state.secret().clone(),
            domain::mailbox::MailboxConfig::from_settings(
                &self.state.config().mail,
                &self.state.config().egress,
            )?,
        );
        let webhooks = domain::webhooks::spawn(
            self.state.chat().clone(),
            self.state.secret().clone(),
            self.state.config().egress.clone(),
            domain::webhooks::WorkerConfig {
                public_url: self.state.config().public_url.clone(),
                poll: self.state.config().webhooks.poll,
                retry: self.state.config().webhooks.retry,
                timeout: self.state.config().webhooks.timeout,
                disable_after: self.state.config().webhooks.disable_after,
            },
        );
        let chat = self.state.chat().clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(domain::chat::PRESENCE_PERIOD);
            loop {
                tick.tick().await;
                if let Err(e) = chat.refresh_presence().await {
                    tracing::warn!(error = %e, "could not refresh visitor presence");
                }
            }
        });
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            shutdown.await;
            let _ = stop_tx.send(true);
        });
        let mut server_stop = stop_rx.clone();
        let mut sockets_stop = stop_rx;
        let closer = tokio::spawn(async move {
            if sockets_stop.wait_for(|stop| *stop).await.is_ok() {
                hub.close_all(web::ws::hub::close::GOING_AWAY, Duration::from_secs(10))
                    .await;
            }
        });
        let router = web::router(self.state);
        // Without TCP_NODELAY a small frame written right after another
        // (a message, then its ack) waits for the peer's delayed ACK: 40 ms.
        let listener = listener.tap_io(|tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(error = %e, "could not set TCP_NODELAY");
            }
        });
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            let _ = server_stop.wait_for(|stop| *stop).await;
        })
        .await?;
        let _ = closer.await;
        worker.abort();
        mailbox.abort();
        webhooks.abort();
        store.close().await;
        Ok(())
    }
}

/// The mailer `mail_transport` names: SendGrid, SMTP or none (the outbox).
fn mailer_for(config: &Config) -> anyhow::Result<Arc<dyn Mailer>> {
    let mail = &config.mail;
    Ok(match (&mail.transport, &mail.sendgrid_api_key) {
        (MailTransport::SendGrid, Some(key)) => Arc::new(SendGrid::new(
            &mail.sendgrid_url,
            key,
            &mail.from,
            &mail.from_name,
        )),
        (MailTransport::Smtp(smtp), _) => {
            let settings = SmtpSettings {
                host: smtp.host.clone(),
                port: smtp.port,
                security: match smtp.tls {
                    SmtpTls::StartTls => Security::StartTls,
                    SmtpTls::Tls => Security::Tls,
                    SmtpTls::None => Security::None,
                },
                credentials: smtp.user.clone().zip(smtp.password.clone()),
                ca_file: smtp.ca_file.clone(),
                timeout: smtp.timeout,
                // EHLO names this host as people reach it, when that is a name.
                hello_name: url::Url::parse(&config.public_url)
                    .ok()
                    .and_then(|url| url.domain().map(str::to_string))
                    .filter(|name| name.contains('.')),
                from_email: mail.from.clone(),
                from_name: mail.from_name.clone(),
            };
            Arc::new(Smtp::new(&settings).map_err(|e| {
                anyhow::anyhow!("{e} (settings `smtp_*`: {}:{})", smtp.host, smtp.port)
            })?)
        }
        _ => Arc::new(LogMailer),
    })
}

/// Opens the database of `config` (running its migrations). A failure to
/// connect is one line naming the setting and the reason.
pub async fn open_store(config: &Config, max_connections: u32) -> anyhow::Result<Store> {
    Store::open(&config.database_url, max_connections)
        .await
        .map_err(|e| match e {
            store::StoreError::Open { url, reason } => anyhow::anyhow!(
                "cannot connect to the database at {url} (setting `database_url` / DATABASE_URL): {reason}"
            ),
            e => anyhow::anyhow!(e),
        })
}

/// Connects the Redis bus; a failure is one line naming the setting (and
/// `redis_ca_file` when a TLS failure may be about it) and the reason.
async fn connect_redis(url: &str, ca_file: Option<&std::path::Path>) -> anyhow::Result<RedisBus> {
    let place = format!(
        "cannot connect to Redis at {} (setting `redis_url` / REDIS_URL)",
        store::redact(url)
    );
    let ca_pem = match ca_file {
        Some(file) => Some(std::fs::read(file).map_err(|e| {
            anyhow::anyhow!(
                "{place}: cannot read `redis_ca_file` {}: {e}",
                file.display()
            )
        })?),
        None => None,
    };
    RedisBus::connect_trusting(url, ca_pem.as_deref())
        .await
        .map_err(|e| {
            let hint = match (&e, ca_file) {
                (bus::BusError::Unreachable(f), Some(file)) if f.is_tls() => format!(
                    " (trusting only the CA in `redis_ca_file`, {})",
                    file.display()
                ),
                (bus::BusError::Unreachable(connect_failure::Failure::UnknownCa), None) => {
                    "; name the CA that signed it in `redis_ca_file`".to_string()
                }
                (bus::BusError::Unreachable(connect_failure::Failure::Timeout), _)
                    if url.starts_with("rediss://") =>
                {
                    "; rediss:// is TLS: is TLS on at that port?".to_string()
                }
                _ => String::new(),
            };
            let reason = connect_failure::without_password(&e.to_string(), url);
            anyhow::anyhow!("{place}: {reason}{hint}")
        })
}

/// Periodic clean-up that needs no coordination between instances: each
/// step is safe to run on all of them at once.
fn spawn_housekeeping(store: Store, blobs: Arc<dyn Blobs>, spool_dir: PathBuf) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(HOUSEKEEPING_PERIOD);
        loop {
            tick.tick().await;
            match store.delete_expired_sessions().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(sessions = n, "removed expired sessions"),
                Err(e) => tracing::warn!(error = %e, "could not remove expired sessions"),
            }
            let now = store::now_ms();
            match store
                .prune_webhooks(
                    now - WEBHOOK_EVENTS_KEPT_MS,
                    now - WEBHOOK_DELIVERIES_KEPT_MS,
                )
                .await
            {
                Ok((0, 0)) => {}
                Ok((events, deliveries)) => {
                    tracing::info!(
                        events,
                        deliveries,
                        "removed old webhook events and deliveries"
                    )
                }
                Err(e) => tracing::warn!(error = %e, "could not remove old webhook deliveries"),
            }
            let before =
                store::now_ms() - domain::attachments::UNSENT_UPLOAD_LIFETIME.as_millis() as i64;
            match domain::attachments::sweep_unsent_uploads(&store, &*blobs, &spool_dir, before)
                .await
            {
                Ok(swept) if swept == Default::default() => {}
                Ok(swept) => tracing::info!(
                    uploads = swept.uploads,
                    blobs = swept.blobs,
                    spool_files = swept.spool_files,
                    "removed uploads that were never sent"
                ),
                Err(e) => {
                    tracing::warn!(error = %e, "could not remove uploads that were never sent")
                }
            }
        }
    });
}

/// How often expired sessions and unsent uploads are removed.
const HOUSEKEEPING_PERIOD: Duration = Duration::from_secs(15 * 60);
/// A fanned-out webhook event is kept a day (its deliveries carry it on).
const WEBHOOK_EVENTS_KEPT_MS: i64 = 24 * 3_600_000;
/// A delivered webhook delivery, and its lines of the delivery log, a week.
const WEBHOOK_DELIVERIES_KEPT_MS: i64 = 7 * 24 * 3_600_000;

pub use adapter::{http_client, install_tls};

/// Helpers for the integration tests; not part of the product.
#[doc(hidden)]
pub mod testing {
    use crate::store::Store;

    /// Makes an emailed token look older than its lifetime.
    pub async fn expire_token(store: &Store, token_hash: &str) {
        store
            .expire_email_token(token_hash)
            .await
            .expect("token expired");
    }
}
