//! Server-rendered pages (maud). One file per area of the product.

mod account;
mod admin;
mod api_reference;
mod api_tokens;
mod auth;
mod bot;
mod console;
mod contacts;
mod home;
mod inbound;
mod labels;
pub mod layout;
mod live;
mod mailbox;
mod original_email;
mod password;
mod portal;
mod reports;
mod settings;
mod setup;
mod site_identity;
mod sites;
mod ticket_labels;
mod ticket_parts;
mod webhooks;

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{Method, Response, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use tower_governor::GovernorError;
use tower_governor::GovernorLayer;
use tower_governor::governor::GovernorConfigBuilder;

use super::{AppState, ClientIp};

pub fn routes(state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/", get(home::home))
        .route("/logout", post(auth::logout))
        .route("/verify", get(auth::verify))
        .route("/account/verify", post(account::resend_verification))
        .route("/account", get(account::show))
        .route(
            "/account/tokens",
            get(api_tokens::show).post(api_tokens::create),
        )
        .route("/account/tokens/{id}/revoke", post(api_tokens::revoke))
        .route("/api/docs", get(api_reference::show))
        .route("/account/profile", post(account::update_profile))
        .route("/account/notifications", post(account::save_notifications))
        .route("/dashboard", get(portal::dashboard))
        .route("/tickets", post(portal::create))
        .route("/tickets/new", get(portal::new_ticket))
        .route("/tickets/{number}", get(portal::show))
        .route("/tickets/{number}/reply", post(portal::reply))
        .route("/tickets/{number}/rate", post(portal::rate))
        .route("/emails/{id}", get(original_email::show))
        .route("/emails/{id}/original.eml", get(original_email::download))
        .route("/console", get(console::list))
        .route("/console/chat", get(live::console))
        .route("/console/tickets/{number}", get(console::show))
        .route("/console/tickets/{number}/reply", post(console::reply))
        .route("/console/tickets/{number}/note", post(console::note))
        .route("/console/tickets/{number}/update", post(console::update))
        .route("/console/tickets/{number}/labels", post(ticket_labels::add))
        .route(
            "/console/tickets/{number}/labels/{label}/remove",
            post(ticket_labels::remove),
        )
        .route("/console/bulk", post(ticket_labels::apply))
        .route("/console/contacts", get(contacts::list))
        .route("/console/contacts/{id}", get(contacts::show))
        .route("/console/contacts/{id}/notes", post(contacts::add_note))
        .route(
            "/console/contacts/{id}/attributes",
            post(contacts::set_attribute),
        )
        .route("/console/contacts/{id}/merge", post(contacts::merge))
        .route("/admin/people", get(admin::people).post(admin::create))
        .route("/admin/people/role", post(admin::change_role))
        .route("/admin/people/capacity", post(admin::set_capacity))
        .route("/admin/sites", get(sites::show).post(sites::add))
        .route("/admin/sites/{id}", post(sites::save))
        .route("/admin/sites/{id}/remove", post(sites::remove))
        .route("/admin/faq", get(settings::faq).post(settings::add_faq))
        .route("/admin/faq/{id}", post(settings::save_faq))
        .route("/admin/faq/{id}/delete", post(settings::delete_faq))
        .route(
            "/admin/canned",
            get(settings::canned).post(settings::add_canned),
        )
        .route("/admin/canned/{id}/delete", post(settings::delete_canned))
        .route("/admin/labels", get(labels::show).post(labels::add))
        .route("/admin/labels/{id}", post(labels::save))
        .route("/admin/labels/{id}/delete", post(labels::delete))
        .route("/admin/outbox", get(settings::outbox))
        .route("/admin/webhooks", get(webhooks::show).post(webhooks::add))
        .route(
            "/admin/webhooks/{id}",
            get(webhooks::show_endpoint).post(webhooks::save),
        )
        .route("/admin/webhooks/{id}/test", post(webhooks::send_test))
        .route("/admin/webhooks/{id}/enable", post(webhooks::enable))
        .route("/admin/webhooks/{id}/delete", post(webhooks::delete))
        .route(
            "/admin/sites/{id}/identity",
            get(site_identity::show).post(site_identity::save),
        )
        .route(
            "/admin/sites/{id}/identity/rotate",
            post(site_identity::rotate),
        )
        .route("/admin/inbound", get(inbound::show))
        .route(
            "/admin/inbound/mailbox",
            get(mailbox::show).post(mailbox::save),
        )
        .route("/admin/reports", get(reports::show))
        .route("/admin/bot", get(bot::show).post(bot::save))
        .route("/admin/bot/test", post(bot::test))
        .merge(rate_limited(state))
}

/// Login, registration, setup and password changes: the pages a password
/// guesser would hit, limited per client address.
fn rate_limited(state: &AppState) -> Router<AppState> {
    let config = state.config();
    let period = Duration::from_millis(60_000 / config.auth_rate_limit_per_minute.max(1));
    let governor = GovernorConfigBuilder::default()
        .period(period)
        .burst_size(config.auth_rate_limit_burst)
        .methods(vec![Method::POST])
        .key_extractor(ClientIp::new(config.trusted_proxies.clone()))
        .finish()
        .expect("rate limit period and burst are validated as non-zero");
    let limiter = governor.limiter().clone();
    // Forget clients that have been quiet, so the table does not grow forever.
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tick.tick().await;
            limiter.retain_recent();
        }
    });
    Router::new()
        .route("/login", get(auth::login_page).post(auth::login))
        .route("/register", get(auth::register_page).post(auth::register))
        .route("/setup", get(setup::show).post(setup::submit))
        .route("/account/password", post(account::change_password))
        .route(
            "/password/forgot",
            get(password::forgot).post(password::send_link),
        )
        .route("/password", get(password::choose).post(password::save))
        .route_layer(middleware::from_fn_with_state(state.clone(), cluster_limit))
        .route_layer(GovernorLayer::new(governor).error_handler(too_many_requests))
}

/// How long the shared count of a client's attempts runs.
const CLUSTER_WINDOW: Duration = Duration::from_secs(60);
/// How long a credential request waits for the shared count.
const CLUSTER_COUNT_WAIT: Duration = Duration::from_millis(250);

/// The same pages limited across every instance: a load balancer spreading
/// one guesser over three instances must not give them three budgets. The
/// shared count (on the bus: Redis) allows `max(burst, per minute)`
/// attempts a minute per client; this instance's own limiter still runs
/// first, and is the only one while the shared count cannot be read.
async fn cluster_limit(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Response<Body> {
    if request.method() != Method::POST {
        return next.run(request).await;
    }
    let client = super::client_ip::rate_limit_key(state.client_of(peer, request.headers()));
    let config = state.config();
    let allowed = u64::from(config.auth_rate_limit_burst).max(config.auth_rate_limit_per_minute);
    let key = format!("auth:{client}");
    // An unreachable Redis must not hold up every login: past a short wait
    // the local limit alone decides.
    let counted = tokio::time::timeout(
        CLUSTER_COUNT_WAIT,
        state.bus().count_in_window(&key, CLUSTER_WINDOW),
    )
    .await;
    match counted {
        Ok(Ok(Some((count, left)))) if count > allowed => too_many(left.as_secs().max(1)),
        Ok(Ok(_)) => next.run(request).await,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "shared rate limit unreadable: this instance's own limit applies");
            next.run(request).await
        }
        Err(_) => {
            tracing::warn!("shared rate limit too slow to read: this instance's own limit applies");
            next.run(request).await
        }
    }
}

fn too_many_requests(error: GovernorError) -> Response<Body> {
    let wait = match error {
        GovernorError::TooManyRequests { wait_time, .. } => wait_time.max(1),
        _ => 60,
    };
    too_many(wait)
}

/// 429 with a page that says how long to wait, and `Retry-After`.
fn too_many(wait: u64) -> Response<Body> {
    let page = layout::error_page(
        "Too many attempts",
        &format!("Too many attempts from your address. Wait {wait} seconds and try again."),
    );
    let mut response = (StatusCode::TOO_MANY_REQUESTS, page).into_response();
    if let Ok(value) = wait.to_string().parse() {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}
