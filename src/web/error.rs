//! One mapping from domain errors to what callers are told, for pages
//! (HTML), the API (JSON) and the socket (`error` frames). Internal details
//! are logged with a reference and never shown.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::domain::DomainError;

/// What kind of error a caller is told of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Code {
    Invalid,
    TooLarge,
    NotFound,
    Forbidden,
    Conflict,
    /// It was there and takes nothing new (an archived site's chat).
    Gone,
    Unauthorized,
    /// Too busy now: try again after the time given.
    Busy,
    /// Failed on our side (storage unavailable, or a bug): nothing the
    /// caller can correct.
    Internal,
}

impl Code {
    /// The code as the API's JSON says it.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Code::Invalid => "invalid",
            Code::TooLarge => "too_large",
            Code::NotFound => "not_found",
            Code::Forbidden => "forbidden",
            Code::Conflict => "conflict",
            Code::Gone => "gone",
            Code::Unauthorized => "unauthorized",
            Code::Busy => "busy",
            Code::Internal => "internal",
        }
    }

    fn status(self) -> StatusCode {
        match self {
            Code::Invalid => StatusCode::UNPROCESSABLE_ENTITY,
            Code::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Code::NotFound => StatusCode::NOT_FOUND,
            Code::Forbidden => StatusCode::FORBIDDEN,
            Code::Conflict => StatusCode::CONFLICT,
            Code::Gone => StatusCode::GONE,
            Code::Unauthorized => StatusCode::UNAUTHORIZED,
            Code::Busy => StatusCode::SERVICE_UNAVAILABLE,
            Code::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// What an error lets its caller read.
enum Said {
    /// The error's own words (its `Display`): written for people.
    Own(String),
    /// Only that it is not there: the same answer whether it does not exist
    /// or is not the caller's to see.
    NotFound,
    /// Nothing but the reference the details were logged under.
    Logged { reference: String },
}

/// A domain error taken apart into what every surface builds its answer
/// from: the code, the field it concerns, and the words a person may read.
pub(crate) struct ErrorParts {
    pub(crate) code: Code,
    /// The field at fault, for an invalid or too large value.
    pub(crate) field: Option<&'static str>,
    /// Seconds to wait before trying again, for a busy answer.
    retry_after_secs: Option<u64>,
    said: Said,
}

impl ErrorParts {
    /// Takes `error` apart. An internal one is logged (as `what` failed)
    /// under a fresh reference, which is all its caller will see of it.
    pub(crate) fn of(error: &DomainError, what: &str) -> ErrorParts {
        let (code, field) = match error {
            DomainError::Invalid { field, .. } => (Code::Invalid, Some(*field)),
            DomainError::TooLarge { field, .. } => (Code::TooLarge, Some(*field)),
            DomainError::NotFound => (Code::NotFound, None),
            DomainError::Forbidden(_) => (Code::Forbidden, None),
            DomainError::Conflict(_) => (Code::Conflict, None),
            DomainError::Gone(_) => (Code::Gone, None),
            DomainError::BadCredentials | DomainError::Unauthenticated => {
                (Code::Unauthorized, None)
            }
            DomainError::Busy { .. } => (Code::Busy, None),
            DomainError::Unavailable(_) | DomainError::Internal(_) => (Code::Internal, None),
        };
        let retry_after_secs = match error {
            DomainError::Busy {
                retry_after_secs, ..
            } => Some(*retry_after_secs),
            _ => None,
        };
        let said = match code {
            Code::NotFound => Said::NotFound,
            Code::Internal => {
                let reference = crate::auth::random_token(6);
                tracing::error!(%reference, error = %error, "{what}");
                Said::Logged { reference }
            }
            _ => Said::Own(error.to_string()),
        };
        ErrorParts {
            code,
            field,
            retry_after_secs,
            said,
        }
    }

    /// `response` with `Retry-After` when the error is a busy one.
    fn with_retry_after(&self, mut response: Response) -> Response {
        if let Some(secs) = self.retry_after_secs {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        response
    }

    /// What a page or the API tells a person.
    fn page_message(&self) -> String {
        match &self.said {
            Said::Own(words) => words.clone(),
            Said::NotFound => "We could not find that page.".into(),
            Said::Logged { reference } => format!(
                "Something went wrong on our side (reference {reference}). Try again in a moment."
            ),
        }
    }

    /// The `code` of a socket's `error` frame, or `None` when the socket
    /// must close instead (its session has ended). A refused frame is
    /// `unknown_type`: it is not one this side of the chat may send.
    pub(crate) fn socket_code(&self) -> Option<&'static str> {
        match self.code {
            Code::Unauthorized => None,
            Code::Forbidden => Some("unknown_type"),
            code => Some(code.as_str()),
        }
    }

    /// The `message` of a socket's `error` frame: a frame has no form, so
    /// the field at fault leads the words.
    pub(crate) fn socket_message(&self) -> String {
        match (&self.said, self.field) {
            (Said::Own(words), Some(field)) => format!("{field}: {words}"),
            (Said::Own(words), None) => words.clone(),
            (Said::NotFound, _) => "no such conversation".into(),
            (Said::Logged { reference }, _) => {
                format!("something went wrong on our side (reference {reference}); try again")
            }
        }
    }
}

/// An error shown as an HTML page.
#[derive(Debug)]
pub struct PageError(pub DomainError);

impl<E: Into<DomainError>> From<E> for PageError {
    fn from(e: E) -> Self {
        PageError(e.into())
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let parts = ErrorParts::of(&self.0, "request failed");
        let status = parts.code.status();
        let title = status.canonical_reason().unwrap_or("Error");
        let page = super::pages::layout::error_page(title, &parts.page_message());
        parts.with_retry_after((status, page).into_response())
    }
}

/// An error answered as JSON: `{"error": {"code", "message", "field"?}}`.
#[derive(Debug)]
pub struct ApiError(pub DomainError);

impl<E: Into<DomainError>> From<E> for ApiError {
    fn from(e: E) -> Self {
        ApiError(e.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let parts = ErrorParts::of(&self.0, "request failed");
        let body = api_error_body(parts.code.as_str(), &parts.page_message(), parts.field);
        parts.with_retry_after((parts.code.status(), body).into_response())
    }
}

/// The one JSON shape of every API error, for the answers that are not
/// a domain error (a rate limit, an idempotency key's refusal): `field`
/// is always there, `null` when no one field is at fault.
pub(crate) fn api_error_body(
    code: &str,
    message: &str,
    field: Option<&str>,
) -> Json<serde_json::Value> {
    Json(json!({"error": {"code": code, "message": message, "field": field}}))
}

/// Every `code` an API error may have (`Code::as_str`, and the rate
/// limit's own).
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub(crate) enum ErrorCode {
    Invalid,
    TooLarge,
    NotFound,
    Forbidden,
    Conflict,
    Gone,
    Unauthorized,
    Busy,
    Internal,
    RateLimited,
    /// A file of a type Careline does not take (uploads).
    UnsupportedType,
    /// Files cannot be stored or read right now (uploads).
    Unavailable,
}

/// `{"error": {…}}`, as the OpenAPI document describes every refusal.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // described, never built: `api_error_body` writes it
pub(crate) struct ErrorBody {
    error: ErrorDetail,
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub(crate) struct ErrorDetail {
    /// What kind of refusal it is; the HTTP status says the same.
    code: ErrorCode,
    /// Words for a person; for an error on Careline's side only a
    /// reference to quote.
    message: String,
    /// The field at fault (a body field, a query parameter, a header), or
    /// `null`.
    field: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_answer_is_503_with_retry_after_on_pages_and_the_api() {
        let busy = || DomainError::Busy {
            message: "Too many people are logging in right now.",
            retry_after_secs: 2,
        };
        for response in [
            PageError(busy()).into_response(),
            ApiError(busy()).into_response(),
        ] {
            assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(response.headers()["retry-after"], "2");
        }
        let other = ApiError(DomainError::NotFound).into_response();
        assert!(other.headers().get("retry-after").is_none());
    }

    fn invalid() -> DomainError {
        crate::domain::invalid("email", "that is not an email address")
    }

    /// Each surface's words for each kind of error, as they are on the wire.
    #[test]
    fn each_surface_says_what_it_always_said() {
        let cases = [
            (
                invalid(),
                "invalid",
                "that is not an email address",
                Some("invalid"),
                "email: that is not an email address",
            ),
            (
                DomainError::TooLarge {
                    field: "body",
                    message: "at most 8000 characters".into(),
                },
                "too_large",
                "at most 8000 characters",
                Some("too_large"),
                "body: at most 8000 characters",
            ),
            (
                DomainError::NotFound,
                "not_found",
                "We could not find that page.",
                Some("not_found"),
                "no such conversation",
            ),
            (
                DomainError::Forbidden("this frame is for agents"),
                "forbidden",
                "this frame is for agents",
                Some("unknown_type"),
                "this frame is for agents",
            ),
            (
                DomainError::Conflict("Bea owns it".into()),
                "conflict",
                "Bea owns it",
                Some("conflict"),
                "Bea owns it",
            ),
            (
                DomainError::Gone("Shop takes no new chats".into()),
                "gone",
                "Shop takes no new chats",
                Some("gone"),
                "Shop takes no new chats",
            ),
            (
                DomainError::BadCredentials,
                "unauthorized",
                "wrong email or password",
                None,
                "wrong email or password",
            ),
        ];
        for (error, code, page, socket_code, socket) in cases {
            let parts = ErrorParts::of(&error, "test");
            assert_eq!(parts.code.as_str(), code, "{error:?}");
            assert_eq!(parts.page_message(), page, "{error:?}");
            assert_eq!(parts.socket_code(), socket_code, "{error:?}");
            assert_eq!(parts.socket_message(), socket, "{error:?}");
        }
    }

    #[test]
    fn internal_errors_show_only_a_reference() {
        for error in [
            DomainError::Unavailable("pool timed out".into()),
            DomainError::Internal("secret detail".into()),
        ] {
            let parts = ErrorParts::of(&error, "test");
            assert_eq!(parts.code, Code::Internal);
            assert_eq!(parts.code.status(), StatusCode::INTERNAL_SERVER_ERROR);
            assert_eq!(parts.socket_code(), Some("internal"));
            let page = parts.page_message();
            assert!(
                page.starts_with("Something went wrong on our side (reference "),
                "{page}"
            );
            assert!(page.ends_with("). Try again in a moment."), "{page}");
            let socket = parts.socket_message();
            assert!(
                socket.starts_with("something went wrong on our side (reference "),
                "{socket}"
            );
            assert!(socket.ends_with("); try again"), "{socket}");
            assert!(!page.contains("detail") && !page.contains("pool"), "{page}");
            assert!(
                !socket.contains("detail") && !socket.contains("pool"),
                "{socket}"
            );
        }
    }
}
