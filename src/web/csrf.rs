//! CSRF protection for every form. A form's token is an HMAC, under the
//! server secret, of the session token when the browser is logged in, or of
//! a random per-browser `careline_csrf` cookie before login. A post whose
//! token does not match is refused and changes nothing.

use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::header;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::Response;
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::AppState;
use super::error::PageError;
use super::session::session_token;
use crate::auth::random_token;
use crate::domain::{DomainError, invalid};

fn csrf_cookie_name(state: &AppState) -> &'static str {
    if state.config().cookies_secure() {
        "__Host-careline_csrf"
    } else {
        "careline_csrf"
    }
}

/// What a browser's tokens are bound to: its session, else its CSRF cookie.
fn binding(
    state: &AppState,
    headers: &axum::http::HeaderMap,
    cookie: Option<&CsrfCookie>,
) -> Option<String> {
    match session_token(state, headers) {
        Some(session) => Some(format!("session:{session}")),
        None => cookie.map(|c| format!("cookie:{}", c.0)),
    }
}

/// The browser's CSRF cookie value, put in the request by [`ensure_cookie`].
#[derive(Clone)]
struct CsrfCookie(String);

pub fn csrf_cookie(state: &AppState, value: String) -> Cookie<'static> {
    Cookie::build((csrf_cookie_name(state), value))
        .http_only(true)
        .secure(state.config().cookies_secure())
        .same_site(SameSite::Lax)
        .path("/")
        .build()
}

/// Gives every browser a CSRF cookie on its first request.
pub async fn ensure_cookie(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let jar = CookieJar::from_headers(request.headers());
    let existing = jar
        .get(csrf_cookie_name(&state))
        .map(|c| c.value().to_string())
        .filter(|v| v.len() >= 22 && v.len() <= 64);
    let (value, fresh) = match existing {
        Some(v) => (v, false),
        None => (random_token(24), true),
    };
    request.extensions_mut().insert(CsrfCookie(value.clone()));
    let mut response = next.run(request).await;
    let already_set = response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .any(|v| {
            v.as_bytes()
                .starts_with(csrf_cookie_name(&state).as_bytes())
        });
    if fresh && !already_set {
        let cookie = csrf_cookie(&state, value).to_string();
        if let Ok(value) = cookie.parse() {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}

/// Where a browser says a request comes from: the `Origin` header and the
/// fetch metadata `Sec-Fetch-Site`, as sent.
struct Provenance {
    origin: Option<String>,
    fetch_site: Option<String>,
    /// The `Host` the browser sent the request to.
    host: Option<String>,
}

impl Provenance {
    fn of(headers: &axum::http::HeaderMap) -> Provenance {
        let text = |name: &str| {
            headers
                .get(name)
                .map(|v| v.to_str().unwrap_or("(not text)").to_string())
        };
        Provenance {
            origin: text("origin"),
            fetch_site: text("sec-fetch-site"),
            host: text("host"),
        }
    }
}

/// Defence in depth beside the token: a browser that says where a post
/// comes from must say it comes from Careline's own pages. `Sec-Fetch-Site`
/// is `same-origin` (or `none`: typed, or a bookmark), and `Origin`, when
/// sent, is Careline's own: `public_url`'s, or the host the browser sent
/// the request to (`localhost` and `127.0.0.1` are both this machine; a
/// page of another site carries its own origin, never Careline's host). A
/// client that sends neither (no browser does today) is left to the token.
fn from_own_pages(state: &AppState, provenance: &Provenance) -> bool {
    let fetch_site_ok = provenance
        .fetch_site
        .as_deref()
        .is_none_or(|site| matches!(site, "same-origin" | "none"));
    let own = super::ws::origin_of(&state.config().public_url);
    let same_host = |origin: &str| {
        let authority = origin.split_once("://").map(|(_, rest)| rest);
        authority.is_some() && authority == provenance.host.as_deref()
    };
    let origin_ok = provenance
        .origin
        .as_deref()
        .is_none_or(|origin| origin == own || same_host(origin));
    fetch_site_ok && origin_ok
}

/// Whether a script's request (not a form) carries the page's CSRF token in
/// `X-CSRF-Token`, from one of Careline's own pages. Only logged-in
/// requests are accepted this way.
pub fn header_matches(state: &AppState, headers: &axum::http::HeaderMap) -> bool {
    if !from_own_pages(state, &Provenance::of(headers)) {
        return false;
    }
    let Some(binding) = binding(state, headers, None) else {
        return false;
    };
    headers
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|token| state.secret().csrf_matches(&binding, token))
}

/// The token to put in a form's hidden `csrf` field.
pub struct CsrfToken(pub String);

impl FromRequestParts<AppState> for CsrfToken {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, PageError> {
        let cookie = parts.extensions.get::<CsrfCookie>();
        let binding = binding(state, &parts.headers, cookie)
            .ok_or_else(|| PageError(DomainError::Internal("CSRF middleware missing".into())))?;
        Ok(CsrfToken(state.secret().csrf_token(&binding)))
    }
}

#[derive(Deserialize)]
struct TokenField {
    #[serde(default)]
    csrf: String,
}

/// A url-encoded form whose `csrf` field has been checked.
pub struct CsrfForm<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for CsrfForm<T> {
    type Rejection = PageError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, PageError> {
        let binding = binding(
            state,
            request.headers(),
            request.extensions().get::<CsrfCookie>(),
        );
        let provenance = Provenance::of(request.headers());
        let bytes = axum::body::Bytes::from_request(request, state)
            .await
            .map_err(|_| PageError(invalid("form", "The form could not be read; try again.")))?;
        let token: TokenField = serde_urlencoded::from_bytes(&bytes)
            .map_err(|_| PageError(invalid("form", "The form could not be read; try again.")))?;
        if !from_own_pages(state, &provenance) {
            return Err(PageError(DomainError::Forbidden(
                "This form was sent from another site. Careline takes forms only from its own pages: open the page here and send it again.",
            )));
        }
        let valid = binding.is_some_and(|b| state.secret().csrf_matches(&b, &token.csrf));
        if !valid {
            return Err(PageError(DomainError::Forbidden(
                "This form has expired or was sent from another site. Go back, reload the page and try again.",
            )));
        }
        let form = serde_urlencoded::from_bytes(&bytes).map_err(|e| {
            PageError(invalid(
                "form",
                format!("The form is missing a field or has a bad value: {e}"),
            ))
        })?;
        Ok(CsrfForm(form))
    }
}
