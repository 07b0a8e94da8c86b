//! The JSON API (v1), for the portal's scripts and integrations. It takes
//! the session cookie or a personal API token (`Authorization: Bearer
//! clt_…`, made on the account page), the same authorization as the pages,
//! and the public shapes of `domain::shapes`. One file per kind of thing;
//! each handler carries its `#[utoipa::path]`, and `openapi.rs` makes the
//! document of them all.

use axum::Router;
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::error::api_error_body;

mod body;
mod contacts;
mod conversations;
mod directory;
pub(super) mod idempotency;
mod labels;
mod new_ticket;
pub(crate) mod openapi;
mod paging;
mod reports;
mod ticket_changes;
mod tickets;

pub fn routes() -> Router<AppState> {
    Router::new()
        .merge(tickets::routes())
        .merge(new_ticket::routes())
        .merge(ticket_changes::routes())
        .merge(labels::routes())
        .merge(directory::routes())
        .merge(conversations::routes())
        .merge(contacts::routes())
        .merge(reports::routes())
        .layer(middleware::from_fn(json_refusals))
        .merge(openapi::routes())
}

/// The longest refusal text of axum's that is kept.
const REFUSAL_TEXT: usize = 4096;

/// axum's own refusals (a path, query or body it cannot read) are plain
/// text; the API says them in its one JSON shape, as the document
/// promises (a value it cannot read is `422 invalid`, as the API's own).
async fn json_refusals(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let plain = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/plain"));
    if !plain || !response.status().is_client_error() {
        return response;
    }
    let (status, code) = match response.status() {
        StatusCode::PAYLOAD_TOO_LARGE => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
        _ => (StatusCode::UNPROCESSABLE_ENTITY, "invalid"),
    };
    let text = axum::body::to_bytes(response.into_body(), REFUSAL_TEXT)
        .await
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_else(|_| "the request could not be read".into());
    (status, api_error_body(code, &text, None)).into_response()
}
