//! The API's request bodies: a JSON object, read as the route's type.
//! serde reads a struct from a JSON array as well (`[null, null]` is a
//! change of nothing, `["Hi", "there"]` a ticket), which no caller means
//! and the document does not allow: anything but an object is refused.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// A body that is a JSON object and reads as `T`.
pub struct Body<T>(pub T);

/// Why a body was not read, in words for the caller's error.
#[derive(Debug)]
pub struct Unreadable(String);

impl Unreadable {
    pub fn body_text(&self) -> &str {
        &self.0
    }
}

/// The routes take `Result<Body<T>, Unreadable>` to say what they expected;
/// one that takes `Body` alone still answers in the one JSON error shape.
impl axum::response::IntoResponse for Unreadable {
    fn into_response(self) -> axum::response::Response {
        crate::web::error::ApiError(crate::domain::invalid("body", self.0)).into_response()
    }
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = Unreadable;

    async fn from_request(request: Request, state: &S) -> Result<Self, Unreadable> {
        let Json(object) = Json::<Map<String, Value>>::from_request(request, state)
            .await
            .map_err(|e: JsonRejection| Unreadable(e.body_text()))?;
        serde_json::from_value(Value::Object(object))
            .map(Body)
            .map_err(|e| Unreadable(e.to_string()))
    }
}
