//! Every HTTP request (and so every socket upgrade) gets a request id and
//! one access-log line. The id is put on the request's tracing span, so
//! every log line of the request carries it (with the method, the path and
//! the client's address as the trusted proxies report it), and returned in
//! `X-Request-Id` so a person reporting a problem can quote it. The access
//! line itself is tower-http's trace layer ([`access_log`]), written at
//! `info` when the response starts, inside that span.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tower_http::LatencyUnit;
use tower_http::classify::{ServerErrorsAsFailures, SharedClassifier};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::{Instrument, Level};

use super::AppState;

pub async fn assign(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let id = crate::auth::random_token(9);
    let client = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(peer)| state.client_of(*peer, request.headers()).to_string())
        .unwrap_or_default();
    let span = tracing::info_span!(
        "request",
        id = %id,
        method = %request.method(),
        path = %request.uri().path(),
        client = %client,
    );
    let mut response = next.run(request).instrument(span).await;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}

/// Counts each request for `/metrics` by method, matched route and status,
/// with its latency (to the start of the response).
pub async fn count(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let route = route_of(&request).to_owned();
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    crate::metrics::http_request(
        method.as_str(),
        &route,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

type MakeRouteSpan = fn(&Request<Body>) -> tracing::Span;

/// One `info` line a request, when its response starts: the route it
/// matched, the status and the time taken (the request span adds the id,
/// method, path and client). The route, not the path, so that ids in paths
/// do not make every line different.
pub fn access_log()
-> TraceLayer<SharedClassifier<ServerErrorsAsFailures>, MakeRouteSpan, (), DefaultOnResponse> {
    TraceLayer::new_for_http()
        .make_span_with(route_span as MakeRouteSpan)
        .on_request(())
        .on_response(
            DefaultOnResponse::new()
                .level(Level::INFO)
                .latency_unit(LatencyUnit::Millis),
        )
}

fn route_span(request: &Request<Body>) -> tracing::Span {
    tracing::info_span!("route", route = %route_of(request))
}

/// The route a request matched (`/tickets/{number}`), or `(none)`: what
/// logs and metrics label requests by, so that ids in paths do not make
/// every label different.
fn route_of(request: &Request<Body>) -> &str {
    request
        .extensions()
        .get::<MatchedPath>()
        .map_or("(none)", |path| path.as_str())
}
