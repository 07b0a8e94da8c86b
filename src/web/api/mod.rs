//! The JSON API (v1), for the portal's scripts and integrations. It takes
//! the session cookie or a personal API token (`Authorization: Bearer
//! clt_…`, made on the account page), the same authorization as the pages,
//! and the public shapes of `domain::shapes`. One file per kind of thing.

use axum::Router;

use super::AppState;

mod contacts;
mod conversations;
mod directory;
mod idempotency;
mod new_ticket;
mod reports;
mod ticket_changes;
mod tickets;

pub fn routes() -> Router<AppState> {
    Router::new()
        .merge(tickets::routes())
        .merge(new_ticket::routes())
        .merge(ticket_changes::routes())
        .merge(directory::routes())
        .merge(conversations::routes())
        .merge(contacts::routes())
        .merge(reports::routes())
}
