//! The OpenAPI 3.1 document of `/api/v1`, made from the code: each handler
//! carries its `#[utoipa::path]` (parameters, bodies, every answer, the
//! security it needs), each file of `web/api/` lists its handlers in a
//! `Doc`, and [`PARTS`] names every file's `Doc`. Served at
//! `/api/openapi.json`; the reference page (`/api/docs`) reads the same.
//!
//! Security requirements name roles, as OpenAPI 3.1 allows for schemes
//! other than OAuth: `read`, `write` or `admin` is the token scope a route
//! needs, `staff` that its caller must be an agent or admin (customers get
//! 404, as on the pages), `admins` that it must be an admin (anyone else
//! gets 404).

use std::sync::OnceLock;

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use utoipa::openapi::OpenApi as Document;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::web::AppState;

/// Every file's routes. A new file of `web/api/` adds its `Doc` here (and
/// its `routes()` in `mod.rs`); `tests/openapi.rs` fails on a route the
/// router has and the document does not.
const PARTS: &[fn() -> Document] = &[
    super::tickets::Doc::openapi,
    super::ticket_changes::Doc::openapi,
    super::labels::Doc::openapi,
    super::conversations::Doc::openapi,
    super::directory::Doc::openapi,
    super::new_ticket::Doc::openapi,
    super::contacts::Doc::openapi,
    super::reports::Doc::openapi,
    crate::web::attachments::Doc::openapi,
];

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/openapi.json", get(serve))
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Careline API",
        description = "Careline's JSON API: tickets, live conversations, contacts, the agents \
            and sites, the report figures. Long lists (tickets, contacts, a contact's \
            conversations) come a page at a time: when more follow, the \
            answer's `Link: <…>; rel=\"next\"` header is the next page's address. \
            Authenticate with a personal API token (`Authorization: Bearer clt_…`, made under \
            Your account → API tokens) or, from Careline's own pages, the session cookie (changes \
            also send the page's CSRF token in `X-CSRF-Token`). Every error is \
            `{\"error\": {\"code\", \"message\", \"field\"}}`. Times are unix milliseconds unless \
            a field says otherwise.",
        license(name = "MIT", identifier = "MIT"),
    ),
    modifiers(&Schemes),
    tags(
        (name = "tickets", description = "Tickets: read, reply, note, change"),
        (name = "conversations", description = "Live conversations, for staff"),
        (name = "directory", description = "The agents and the sites, for staff"),
        (name = "contacts", description = "The customers behind the conversations, for staff"),
        (name = "reports", description = "The report figures, for admins"),
    )
)]
struct Base;

/// The ways a caller proves who they are.
struct Schemes;

impl Modify for Schemes {
    fn modify(&self, doc: &mut Document) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("clt_…")
                    .description(Some(
                        "A personal API token (Your account → API tokens). Its scope: `read` \
                         (GET only), `write` (also changes), `admin` (also admin routes; admins \
                         only). It never does more than its owner may do now. Ten requests a \
                         second, bursts of sixty, then 429.",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                "careline_session",
                "The browser's login session (named `__Host-careline_session` over HTTPS).",
            ))),
        );
        components.add_security_scheme(
            "csrf",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-CSRF-Token",
                "The page's CSRF token: a change made with the session cookie sends it.",
            ))),
        );
    }
}

/// The document, built once.
pub(crate) fn document() -> &'static Document {
    static DOCUMENT: OnceLock<Document> = OnceLock::new();
    DOCUMENT.get_or_init(|| {
        let mut doc = Base::openapi();
        doc.info.version = env!("CARGO_PKG_VERSION").to_string();
        for part in PARTS {
            doc.merge(part());
        }
        doc
    })
}

async fn serve() -> impl IntoResponse {
    static JSON: OnceLock<String> = OnceLock::new();
    let json = JSON.get_or_init(|| {
        serde_json::to_string_pretty(document()).expect("the document always serializes")
    });
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            // The same for everyone until the next release.
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        json.as_str(),
    )
}
