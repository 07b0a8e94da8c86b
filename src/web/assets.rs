//! Static assets, embedded in the binary so that a deployment is one file
//! and the pages work offline (no CDN).

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

use super::AppState;

const CSS: &str = include_str!("../../assets/careline.css");
const CONSOLE_JS: &str = include_str!("../../assets/console.js");
const TICKET_JS: &str = include_str!("../../assets/ticket.js");

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/assets/careline.css", get(css))
        .route("/assets/console.js", get(|| script(CONSOLE_JS)))
        .route("/assets/ticket.js", get(|| script(TICKET_JS)))
}

async fn script(source: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        source,
    )
}

async fn css() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        CSS,
    )
}
