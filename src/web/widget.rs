//! The widget's HTTP side: `widget.js` itself, the visitor bootstrap
//! `POST /api/widget/v1/session` (who the visitor is: `domain::identity`)
//! and `POST /api/widget/v1/logout`, answered cross-origin only for
//! origins a site allows (CORS).

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::AppState;
use super::error::ApiError;
use super::ws::origin_allowed;
use crate::domain::DomainError;
use crate::domain::chat::Audience;
use crate::domain::identity::{self, Claim};
use crate::protocol::ConversationFrame;

const WIDGET_JS: &str = include_str!("../../assets/widget.js");

pub fn routes(_state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/widget.js", get(widget_js))
        .route("/api/widget/v1/session", post(session).options(preflight))
        .route("/api/widget/v1/logout", post(logout).options(preflight))
        .route(
            "/api/widget/v1/conversations",
            get(history).options(preflight),
        )
}

async fn widget_js() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        WIDGET_JS,
    )
}

pub(super) fn cors(mut response: Response, origin: &str) -> Response {
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(origin) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
    }
    headers.insert(header::VARY, HeaderValue::from_static("Origin"));
    response
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(json!({"error": {"code": code, "message": message}})),
    )
        .into_response()
}

/// Preflight: the body (and so the site) is not known yet, so any origin
/// that some site allows gets through; the POST itself checks its site.
pub(super) async fn preflight(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) else {
        return error(
            StatusCode::FORBIDDEN,
            "forbidden",
            "an Origin header is required",
        );
    };
    let sites = match state.store().sites().await {
        Ok(sites) => sites,
        Err(_) => {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "try again shortly",
            );
        }
    };
    if !sites
        .iter()
        .any(|site| origin_allowed(&state, site, origin))
    {
        return error(
            StatusCode::FORBIDDEN,
            "forbidden",
            "this origin may not use the chat",
        );
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    let h = response.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, POST"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("authorization, content-type"),
    );
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("600"),
    );
    cors(response, origin)
}

#[derive(Deserialize)]
struct SessionRequest {
    site_key: String,
    #[serde(default)]
    visitor_token: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    email: Option<String>,
    /// The host site's word for who its user is (`Careline.identify`).
    #[serde(default)]
    identity: Option<IdentityClaim>,
}

#[derive(Deserialize)]
struct IdentityClaim {
    user_id: String,
    user_hash: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    email: Option<String>,
}

#[derive(Serialize)]
struct SiteInfo {
    name: String,
    greeting: String,
    color: String,
    require_email: bool,
    /// `bottom-right` or `bottom-left`.
    position: &'static str,
    agents_online: bool,
}

#[derive(Serialize)]
struct SessionResponse {
    visitor_token: String,
    visitor_id: String,
    /// Whether the host site vouched for this visitor (a verified identity).
    verified: bool,
    /// Why the identity the page passed was not taken, for its developer.
    #[serde(skip_serializing_if = "Option::is_none")]
    identity_error: Option<&'static str>,
    site: SiteInfo,
    conversations: Vec<ConversationFrame>,
}

/// The page's `Origin`, which every widget request must carry.
fn origin_of(headers: &HeaderMap) -> Result<String, Box<Response>> {
    headers
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok())
        .map(str::to_string)
        .ok_or_else(|| {
            Box::new(error(
                StatusCode::FORBIDDEN,
                "forbidden",
                "an Origin header is required",
            ))
        })
}

/// The site `key` names, when `origin` may use its chat: else the answer
/// (404 readable by a known origin, 403 without CORS, 503).
async fn site_for(
    state: &AppState,
    key: &str,
    origin: &str,
) -> Result<crate::store::Site, Box<Response>> {
    let site = match state.store().site_by_key(key).await {
        Ok(Some(site)) => site,
        Ok(None) => {
            let refused = error(StatusCode::NOT_FOUND, "not_found", "unknown site_key");
            return Err(Box::new(readable_by(state, refused, origin).await));
        }
        Err(e) => {
            tracing::error!(error = %e, "site lookup failed");
            return Err(Box::new(error(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "try again shortly",
            )));
        }
    };
    if !origin_allowed(state, &site, origin) {
        return Err(Box::new(error(
            StatusCode::FORBIDDEN,
            "forbidden",
            "this origin may not use this site's chat",
        )));
    }
    Ok(site)
}

/// An error a page may read only if some site lets its origin embed the
/// widget; any other origin gets it without CORS headers.
async fn readable_by(state: &AppState, response: Response, origin: &str) -> Response {
    let known = match state.store().sites().await {
        Ok(sites) => sites.iter().any(|site| origin_allowed(state, site, origin)),
        Err(_) => false,
    };
    if known {
        cors(response, origin)
    } else {
        response
    }
}

async fn session(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let origin = match origin_of(&headers) {
        Ok(origin) => origin,
        Err(refused) => return *refused,
    };
    let request: SessionRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(e) => {
            let refused = error(
                StatusCode::BAD_REQUEST,
                "invalid",
                &format!("bad request body: {e}"),
            );
            return readable_by(&state, refused, &origin).await;
        }
    };
    let site = match site_for(&state, &request.site_key, &origin).await {
        Ok(site) => site,
        Err(refused) => return *refused,
    };
    // An archived site's widget says why it takes no chat (410 `gone`).
    if let Err(e) = crate::domain::sites::takes_new_chats(&site) {
        return cors(ApiError(e).into_response(), &origin);
    }
    let may_create = || state.may_create_visitor(peer, &headers);
    match bootstrap(&state, &site, request, may_create).await {
        Ok(Some(response)) => cors(Json(response).into_response(), &origin),
        Ok(None) => {
            let mut refused = error(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "too many new chats from your address; try again in a minute",
            );
            refused
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
            cors(refused, &origin)
        }
        // The one mapping of domain errors (web/error.rs): a bad field is a
        // 422 naming it; an internal failure is logged with a reference.
        Err(e) => cors(ApiError(e).into_response(), &origin),
    }
}

/// The visitor's session (`domain::identity::session` decides who it is)
/// with its conversations and the site's look. `None`: a new visitor was
/// needed and too many came from this address (a returning visitor is
/// never held back, so offices behind one address keep working).
async fn bootstrap(
    state: &AppState,
    site: &crate::store::Site,
    request: SessionRequest,
    may_create: impl FnOnce() -> bool,
) -> Result<Option<SessionResponse>, DomainError> {
    let asked = identity::SessionRequest {
        visitor_token: request.visitor_token,
        name: request.name,
        email: request.email,
        identity: request.identity.map(|c| Claim {
            user_id: c.user_id,
            hash: c.user_hash,
            name: c.name,
            email: c.email,
        }),
    };
    let store = state.store();
    let Some(session) = identity::session(store, state.secret(), site, asked, may_create).await?
    else {
        return Ok(None);
    };
    let visitor = session.visitor;
    let chat = state.chat();
    let conversations = store
        .visitor_conversations(visitor.id)
        .await?
        .iter()
        .map(|c| chat.conversation_frame(c, Audience::Visitor))
        .collect();
    let agents_online = chat.agents_online().await?;
    Ok(Some(SessionResponse {
        visitor_token: session.token,
        visitor_id: visitor.id.to_string(),
        verified: session.verified,
        identity_error: session.rejected,
        site: SiteInfo {
            name: site.name.clone(),
            greeting: site.greeting.clone(),
            color: site.color.clone(),
            require_email: site.require_email,
            position: site.position.as_str(),
            agents_online,
        },
        conversations,
    }))
}

#[derive(Deserialize)]
struct LogoutRequest {
    site_key: String,
    visitor_token: String,
}

/// `Careline.logout()`: the host site's user logged out, so this browser's
/// token ends (the widget then forgets it and starts anonymous).
async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let origin = match origin_of(&headers) {
        Ok(origin) => origin,
        Err(refused) => return *refused,
    };
    let Ok(request) = serde_json::from_slice::<LogoutRequest>(&body) else {
        let refused = error(
            StatusCode::BAD_REQUEST,
            "invalid",
            "expected {\"site_key\", \"visitor_token\"}",
        );
        return readable_by(&state, refused, &origin).await;
    };
    let site = match site_for(&state, &request.site_key, &origin).await {
        Ok(site) => site,
        Err(refused) => return *refused,
    };
    match identity::logout(state.store(), &site, &request.visitor_token).await {
        Ok(()) => cors(StatusCode::NO_CONTENT.into_response(), &origin),
        Err(e) => cors(ApiError(e).into_response(), &origin),
    }
}

/// A page of the visitor's history.
const HISTORY_PAGE: i64 = 20;

#[derive(Deserialize)]
struct HistoryQuery {
    site: String,
    #[serde(default)]
    before: Option<String>,
}

#[derive(Serialize)]
struct History {
    conversations: Vec<ConversationFrame>,
    /// Whether older conversations remain (ask again with `before`).
    more: bool,
}

/// `GET /api/widget/v1/conversations?site=KEY&before=ID` with the visitor's
/// bearer token: their conversations older than `before`, newest first, a
/// page at a time (a verified customer's from every device).
async fn history(
    State(state): State<AppState>,
    axum::extract::Query(query): axum::extract::Query<HistoryQuery>,
    headers: HeaderMap,
) -> Response {
    let (visitor, origin) =
        match super::attachments::widget_visitor(&state, &headers, &query.site).await {
            Ok(found) => found,
            Err(response) => return response,
        };
    let before = match query
        .before
        .as_deref()
        .filter(|b| !b.is_empty())
        .map(str::parse::<i64>)
    {
        None => None,
        Some(Ok(id)) => Some(crate::model::ConversationId(id)),
        Some(Err(_)) => {
            let refused = error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid",
                "before must be a conversation id",
            );
            return cors(refused, &origin);
        }
    };
    let page = state
        .store()
        .visitor_conversations_before(visitor.id, before, HISTORY_PAGE + 1)
        .await;
    match page {
        Ok(mut conversations) => {
            let more = conversations.len() as i64 > HISTORY_PAGE;
            conversations.truncate(HISTORY_PAGE as usize);
            let chat = state.chat();
            let conversations = conversations
                .iter()
                .map(|c| chat.conversation_frame(c, Audience::Visitor))
                .collect();
            cors(
                Json(History {
                    conversations,
                    more,
                })
                .into_response(),
                &origin,
            )
        }
        Err(e) => cors(ApiError(e.into()).into_response(), &origin),
    }
}
