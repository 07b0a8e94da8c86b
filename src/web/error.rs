//! One mapping from domain errors to responses, for pages (HTML) and the API
//! (JSON). Internal details are logged with a request id and never shown.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::domain::DomainError;

fn status_of(error: &DomainError) -> StatusCode {
    match error {
        DomainError::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        DomainError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        DomainError::NotFound => StatusCode::NOT_FOUND,
        DomainError::Forbidden(_) => StatusCode::FORBIDDEN,
        DomainError::Conflict(_) => StatusCode::CONFLICT,
        DomainError::BadCredentials | DomainError::Unauthenticated => StatusCode::UNAUTHORIZED,
        DomainError::Unavailable(_) | DomainError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// What a person may read about an error; internal ones get a reference.
fn public_message(error: &DomainError) -> String {
    match error {
        DomainError::Unavailable(_) | DomainError::Internal(_) => {
            let reference = crate::auth::random_token(6);
            tracing::error!(%reference, error = %error, "request failed");
            format!(
                "Something went wrong on our side (reference {reference}). Try again in a moment."
            )
        }
        DomainError::NotFound => "We could not find that page.".into(),
        other => other.to_string(),
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
        let status = status_of(&self.0);
        let message = public_message(&self.0);
        let title = status.canonical_reason().unwrap_or("Error");
        (status, super::pages::layout::error_page(title, &message)).into_response()
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
        let status = status_of(&self.0);
        let code = match &self.0 {
            DomainError::Invalid { .. } => "invalid",
            DomainError::TooLarge { .. } => "too_large",
            DomainError::NotFound => "not_found",
            DomainError::Forbidden(_) => "forbidden",
            DomainError::Conflict(_) => "conflict",
            DomainError::BadCredentials | DomainError::Unauthenticated => "unauthorized",
            DomainError::Unavailable(_) | DomainError::Internal(_) => "internal",
        };
        let field = match &self.0 {
            DomainError::Invalid { field, .. } | DomainError::TooLarge { field, .. } => {
                Some(*field)
            }
            _ => None,
        };
        let body =
            json!({"error": {"code": code, "message": public_message(&self.0), "field": field}});
        (status, Json(body)).into_response()
    }
}
