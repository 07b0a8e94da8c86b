//! Who is asking: the session cookie, and extractors that require a
//! logged-in user, staff, or an admin. Pages send anonymous people to the
//! login page; the API answers 401.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};

use super::AppState;
use super::error::{ApiError, PageError};
use crate::domain::api_tokens::{self, Scope};
use crate::domain::{DomainError, accounts};
use crate::model::{Role, User};

/// Over HTTPS the `__Host-` prefix makes browsers refuse the cookie unless
/// it is `Secure`, host-only and for `/`: a sibling subdomain cannot plant it.
pub fn session_cookie_name(state: &AppState) -> &'static str {
    if state.config().cookies_secure() {
        "__Host-careline_session"
    } else {
        "careline_session"
    }
}

/// The session token the browser presented, if any.
pub fn session_token(state: &AppState, headers: &axum::http::HeaderMap) -> Option<String> {
    CookieJar::from_headers(headers)
        .get(session_cookie_name(state))
        .map(|c| c.value().to_string())
        .filter(|v| !v.is_empty())
}

/// The session cookie for a new login.
pub fn session_cookie(state: &AppState, token: String) -> Cookie<'static> {
    let max_age = time::Duration::hours(state.config().session_ttl_hours as i64);
    Cookie::build((session_cookie_name(state), token))
        .http_only(true)
        .secure(state.config().cookies_secure())
        .same_site(SameSite::Lax)
        .path("/")
        .max_age(max_age)
        .build()
}

/// A cookie that tells the browser to forget the session.
pub fn expired_session_cookie(state: &AppState) -> Cookie<'static> {
    Cookie::build((session_cookie_name(state), ""))
        .path("/")
        .secure(state.config().cookies_secure())
        .removal()
        .build()
}

/// The logged-in user, if any, and their session token.
pub struct MaybeUser {
    pub user: Option<User>,
    pub token: Option<String>,
}

impl FromRequestParts<AppState> for MaybeUser {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, PageError> {
        let Some(token) = session_token(state, &parts.headers) else {
            return Ok(MaybeUser {
                user: None,
                token: None,
            });
        };
        let user = accounts::session_user(state.store(), &token).await?;
        Ok(MaybeUser {
            user,
            token: Some(token),
        })
    }
}

/// A logged-in user; anonymous visitors are sent to the login page and back.
pub struct CurrentUser {
    pub user: User,
    pub token: String,
}

pub enum LoginRequired {
    Redirect(String),
    Error(PageError),
}

impl IntoResponse for LoginRequired {
    fn into_response(self) -> Response {
        match self {
            LoginRequired::Redirect(next) => {
                Redirect::to(&format!("/login?next={}", urlencode(&next))).into_response()
            }
            LoginRequired::Error(e) => e.into_response(),
        }
    }
}

fn urlencode(s: &str) -> String {
    serde_urlencoded::to_string([("", s)])
        .map(|encoded| encoded.trim_start_matches('=').to_string())
        .unwrap_or_default()
}

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = LoginRequired;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, LoginRequired> {
        let maybe = MaybeUser::from_request_parts(parts, state)
            .await
            .map_err(LoginRequired::Error)?;
        match (maybe.user, maybe.token) {
            (Some(user), Some(token)) => Ok(CurrentUser { user, token }),
            _ => {
                let next = parts
                    .uri
                    .path_and_query()
                    .map(|p| p.as_str().to_string())
                    .unwrap_or_else(|| "/".into());
                Err(LoginRequired::Redirect(next))
            }
        }
    }
}

/// An agent or admin. Customers get "not found": staff pages do not exist for them.
pub struct Staff(pub CurrentUser);

impl FromRequestParts<AppState> for Staff {
    type Rejection = LoginRequired;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, LoginRequired> {
        let current = CurrentUser::from_request_parts(parts, state).await?;
        if current.user.role.is_staff() {
            Ok(Staff(current))
        } else {
            Err(LoginRequired::Error(PageError(DomainError::NotFound)))
        }
    }
}

/// An admin; anyone else gets "not found".
pub struct Admin(pub CurrentUser);

impl FromRequestParts<AppState> for Admin {
    type Rejection = LoginRequired;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, LoginRequired> {
        let current = CurrentUser::from_request_parts(parts, state).await?;
        if current.user.role == Role::Admin {
            Ok(Admin(current))
        } else {
            Err(LoginRequired::Error(PageError(DomainError::NotFound)))
        }
    }
}

/// A caller of the JSON API: the browser's session, or a personal API
/// token (`Authorization: Bearer clt_…`, `domain::api_tokens`) with its
/// scope. Anonymous callers, and revoked, expired or unknown tokens, get
/// 401; a token past its rate gets 429.
pub struct ApiUser {
    pub user: User,
    /// `None`: the browser's own session, which may do what its user may.
    pub scope: Option<Scope>,
}

impl ApiUser {
    /// Refuses a token whose scope is below `needed` (403, naming it).
    pub fn require(&self, needed: Scope) -> Result<(), ApiError> {
        match self.scope {
            Some(scope) if scope < needed => Err(ApiError(DomainError::Forbidden(match needed {
                Scope::Read => "this token may not read",
                Scope::Write => "this token is read-only: make a write token for changes",
                Scope::Admin => "this needs an admin token",
            }))),
            _ => Ok(()),
        }
    }
}

impl FromRequestParts<AppState> for ApiUser {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        if let Some(token) = super::bearer_token(&parts.headers) {
            let (user, scope, id) = api_tokens::authenticate(state.store(), token.trim())
                .await
                .map_err(|e| ApiError(e).into_response())?;
            if !state.api_token_allows(id) {
                let mut refused = (
                    axum::http::StatusCode::TOO_MANY_REQUESTS,
                    super::error::api_error_body(
                        "rate_limited",
                        "too many requests with this token; slow down",
                        None,
                    ),
                )
                    .into_response();
                refused.headers_mut().insert(
                    axum::http::header::RETRY_AFTER,
                    axum::http::HeaderValue::from_static("1"),
                );
                return Err(refused);
            }
            // A write token may read; every route says what it needs.
            let caller = ApiUser {
                user,
                scope: Some(scope),
            };
            if parts.method == axum::http::Method::GET {
                caller
                    .require(Scope::Read)
                    .map_err(IntoResponse::into_response)?;
            } else {
                caller
                    .require(Scope::Write)
                    .map_err(IntoResponse::into_response)?;
            }
            return Ok(caller);
        }
        let maybe = MaybeUser::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError(e.0).into_response())?;
        let user = maybe
            .user
            .ok_or(ApiError(DomainError::Unauthenticated).into_response())?;
        // The cookie goes with every request a browser makes, whoever's
        // page asked: a change also needs the page's CSRF token.
        let safe = matches!(
            parts.method,
            axum::http::Method::GET | axum::http::Method::HEAD
        );
        if !safe && !super::csrf::header_matches(state, &parts.headers) {
            return Err(ApiError(DomainError::Forbidden(
                "send the page's CSRF token in X-CSRF-Token (or use an API token)",
            ))
            .into_response());
        }
        Ok(ApiUser { user, scope: None })
    }
}
