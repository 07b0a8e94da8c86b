//! The edge: HTTP pages, the JSON API and health endpoints. Handlers turn
//! requests into domain calls and domain results into responses; they hold
//! no business rule.

mod api;
mod assets;
mod attachments;
mod client_ip;
mod csrf;
mod error;
mod health;
mod hooks;
mod pages;
mod request_id;
mod security_headers;
mod session;
mod widget;
pub mod ws;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::middleware;
use tower_http::limit::RequestBodyLimitLayer;

use crate::auth::Secret;
use crate::blobs::Blobs;
use crate::config::Config;
use crate::domain::chat::Chat;
use crate::store::Store;
use ws::hub::Hub;

pub use client_ip::ClientIp;

/// Shared by every handler; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    chat: Arc<Chat>,
    hub: Arc<Hub>,
    config: Config,
    secret: Secret,
    blobs: Arc<dyn Blobs>,
    /// New widget visitors per client address (see `widget.rs`).
    new_visitors: Arc<governor::DefaultKeyedRateLimiter<std::net::IpAddr>>,
    /// Requests per personal API token (see `session::ApiUser`).
    api_tokens: Arc<governor::DefaultKeyedRateLimiter<i64>>,
    client_ip: ClientIp,
    /// Required by the setup page while no admin exists; printed at start.
    setup_token: Option<String>,
    setup_done: AtomicBool,
}

impl AppState {
    pub fn new(
        store: Store,
        chat: Arc<Chat>,
        config: Config,
        secret: Secret,
        blobs: Arc<dyn Blobs>,
        setup_token: Option<String>,
    ) -> AppState {
        let setup_done = setup_token.is_none();
        let per_minute = std::num::NonZeroU32::new(config.widget_new_visitors_per_minute)
            .expect("validated as at least 1");
        let new_visitors = Arc::new(governor::RateLimiter::keyed(governor::Quota::per_minute(
            per_minute,
        )));
        // Forget addresses that have been quiet, so the table stays small.
        let pruned = Arc::downgrade(&new_visitors);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
            loop {
                tick.tick().await;
                let Some(limiter) = pruned.upgrade() else {
                    return;
                };
                limiter.retain_recent();
            }
        });
        // Ten a second, bursts of sixty: scripts, not floods.
        let api_tokens = Arc::new(governor::RateLimiter::keyed(
            governor::Quota::per_second(std::num::NonZeroU32::new(10).expect("ten"))
                .allow_burst(std::num::NonZeroU32::new(60).expect("sixty")),
        ));
        let client_ip = ClientIp::new(config.trusted_proxies.clone());
        let hub = Hub::new(chat.bus().clone(), chat.metrics().clone());
        AppState {
            inner: Arc::new(Inner {
                store,
                chat,
                hub,
                config,
                secret,
                blobs,
                new_visitors,
                api_tokens,
                client_ip,
                setup_token,
                setup_done: AtomicBool::new(setup_done),
            }),
        }
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn chat(&self) -> &Arc<Chat> {
        &self.inner.chat
    }

    pub fn bus(&self) -> &dyn crate::bus::Bus {
        self.chat().bus().as_ref()
    }

    pub fn hub(&self) -> &Arc<Hub> {
        &self.inner.hub
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// Whether API token `id` may make one more request now.
    pub(crate) fn api_token_allows(&self, id: i64) -> bool {
        self.inner.api_tokens.check_key(&id).is_ok()
    }

    /// The client of a request from `peer`: its own address, or the one a
    /// trusted proxy forwarded.
    pub(crate) fn client_of(
        &self,
        peer: std::net::SocketAddr,
        headers: &axum::http::HeaderMap,
    ) -> std::net::IpAddr {
        self.inner.client_ip.from_headers(peer.ip(), headers)
    }

    /// Whether `client` may create another widget visitor now.
    pub(crate) fn may_create_visitor(
        &self,
        peer: std::net::SocketAddr,
        headers: &axum::http::HeaderMap,
    ) -> bool {
        let client = self.client_of(peer, headers);
        self.inner
            .new_visitors
            .check_key(&client_ip::rate_limit_key(client))
            .is_ok()
    }

    /// Whether a request may read `/metrics`: with the configured bearer
    /// token from anywhere; without one, only from this machine, straight
    /// (a loopback peer and no forwarding header of any kind: a request
    /// that a proxy on this machine forwarded from the public carries one,
    /// whichever of them the proxy is set to write).
    pub(crate) fn may_read_metrics(
        &self,
        peer: std::net::SocketAddr,
        headers: &axum::http::HeaderMap,
    ) -> bool {
        match &self.inner.config.metrics_token {
            Some(expected) => {
                bearer_token(headers).is_some_and(|given| crate::auth::same_secret(expected, given))
            }
            // `to_canonical`: on a dual-stack socket a local IPv4 client
            // arrives as ::ffff:127.0.0.1.
            None => {
                peer.ip().to_canonical().is_loopback()
                    && !FORWARDING_HEADERS.iter().any(|h| headers.contains_key(*h))
            }
        }
    }

    pub fn blobs(&self) -> &Arc<dyn Blobs> {
        &self.inner.blobs
    }

    pub(crate) fn secret(&self) -> &Secret {
        &self.inner.secret
    }

    fn setup_pending(&self) -> bool {
        !self.inner.setup_done.load(Ordering::Acquire)
    }

    fn setup_token_matches(&self, token: &str) -> bool {
        self.inner
            .setup_token
            .as_deref()
            .is_some_and(|expected| crate::auth::same_secret(expected, token))
    }

    fn finish_setup(&self) {
        self.inner.setup_done.store(true, Ordering::Release);
    }
}

/// Forms and JSON bodies are small: an 8,000-character message in any
/// script url-encodes to under 100 KiB. Attachments get their own limit.
const BODY_LIMIT: usize = 256 * 1024;

/// The token of an `Authorization: Bearer <token>` header, as sent.
fn bearer_token(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
}

pub fn router(state: AppState) -> Router {
    // Installed before the first request is counted.
    crate::metrics::exporter();
    Router::new()
        .merge(pages::routes(&state))
        .merge(api::routes())
        .merge(widget::routes(&state))
        .merge(ws::routes())
        .merge(health::routes())
        .merge(assets::routes())
        .layer(RequestBodyLimitLayer::new(BODY_LIMIT))
        // Uploads stream to disk under their own limit (attachment_max_bytes).
        .merge(attachments::routes())
        // Inbound email, under its own limit (SendGrid's 30 MB).
        .merge(hooks::routes())
        .layer(middleware::from_fn_with_state(
            state.clone(),
            csrf::ensure_cookie,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            security_headers::add,
        ))
        .layer(middleware::from_fn(request_id::count))
        .layer(request_id::access_log())
        .layer(middleware::from_fn_with_state(
            state.clone(),
            request_id::assign,
        ))
        .with_state(state)
}

/// Headers a proxy writes to say whom it forwards for: any of them means
/// the request did not start on this machine.
const FORWARDING_HEADERS: [&str; 5] = [
    "x-forwarded-for",
    "forwarded",
    "x-real-ip",
    "x-forwarded-host",
    "via",
];
