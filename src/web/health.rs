//! `/healthz`: the process answers. `/readyz`: it can reach its database.
//! `/metrics`: counters for this machine or a scraper with the token.

use std::net::SocketAddr;

use axum::Json;
use axum::Router;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use super::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
}

/// Ready when the database answers and the bus is connected: an instance
/// that cannot fan out must not get new sockets from the load balancer.
async fn ready(State(state): State<AppState>) -> (StatusCode, Json<serde_json::Value>) {
    let database = match state.store().ping().await {
        Ok(()) => state.store().backend().name(),
        Err(e) => {
            tracing::warn!(error = %e, "readiness: database unreachable");
            "unreachable"
        }
    };
    let bus = state.chat().bus();
    let bus_state = if bus.is_connected() {
        bus.name()
    } else {
        "unreachable"
    };
    let ready = database != "unreachable" && bus_state != "unreachable";
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "status": if ready { "ready" } else { "unavailable" },
        "database": database,
        "bus": bus_state,
    });
    (status, Json(body))
}

/// Prometheus text format. Counts only: no names, emails or message bodies;
/// still not for the public (`AppState::may_read_metrics`).
async fn metrics(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    if !state.may_read_metrics(peer, &headers) {
        return (
            StatusCode::FORBIDDEN,
            "metrics are for this machine, or for a scraper with the metrics token \
             (Authorization: Bearer <CARELINE_METRICS_TOKEN>)\n",
        )
            .into_response();
    }
    let bus = state.chat().bus();
    let gauges = crate::metrics::Gauges {
        sockets_open: state.hub().socket_count() as u64,
        slow_socket_closes: state.hub().slow_closes(),
        bus_reconnects: bus.reconnects(),
        bus_connected: bus.is_connected(),
        outbox_pending: state.store().outbox_pending().await.unwrap_or(-1),
        append_batches: state.store().append_batches(),
        append_queued: state.store().append_queued(),
    };
    let mut text = state.chat().metrics().render(&gauges);
    text.push_str(&crate::metrics::render_exported(state.store().pool_stats()));
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}
