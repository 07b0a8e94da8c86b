//! How the API's long lists read their query and say where the next page
//! is: every value is read as text (so that a bad one is named in the JSON
//! error, not refused by the extractor), a page holds [`PAGE`] unless
//! `limit` says otherwise, and `Link: <path?…&cursor=…>; rel="next"` gives
//! the next page while one follows.

use axum::Json;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::domain::{DomainError, invalid};

/// Items per page unless `limit` says otherwise, and the most it may say.
pub const PAGE: i64 = 50;
pub const MAX_PAGE: i64 = 100;

/// A query value; empty is none.
pub fn given(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

/// The page size `limit` asks for, or the error naming it.
pub fn page_size(limit: &Option<String>) -> Result<i64, DomainError> {
    match given(limit) {
        None => Ok(PAGE),
        Some(l) => l
            .parse()
            .ok()
            .filter(|l| (1..=MAX_PAGE).contains(l))
            .ok_or_else(|| invalid("limit", format!("limit must be 1 to {MAX_PAGE}"))),
    }
}

/// `answer`, with the next page's address when `next` (its query, the
/// cursor set) says one follows.
pub fn paged<T: Serialize>(answer: Vec<T>, path: &str, next: Option<&impl Serialize>) -> Response {
    let mut response = Json(answer).into_response();
    let link = next.map(|query| {
        format!(
            "<{path}?{}>; rel=\"next\"",
            serde_urlencoded::to_string(query).unwrap_or_default()
        )
    });
    if let Some(value) = link.and_then(|l| HeaderValue::from_str(&l).ok()) {
        response.headers_mut().insert(header::LINK, value);
    }
    response
}
