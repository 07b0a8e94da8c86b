//! `Idempotency-Key` on API requests that create something: the first
//! request with a key runs, its answer is kept, and a retry with the same
//! key gets that answer again (`Idempotent-Replayed: true`) instead of
//! creating twice. A key is the caller's (per user); reusing one for a
//! different request is refused; a failure on Careline's side (5xx) lets
//! the key go, so the retry runs.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::model::User;
use crate::store::Claimed;
use crate::web::AppState;

/// The largest answer kept for a replay.
const KEPT_ANSWER: usize = 1024 * 1024;

fn refuse(status: StatusCode, code: &str, message: &str) -> Response {
    let body = crate::web::error::api_error_body(code, message, Some("Idempotency-Key"));
    (status, body).into_response()
}

/// Runs `work` once per `Idempotency-Key` of `user` (without the header,
/// simply runs it). `request` names it (method and path), so that a key
/// reused for another request is caught.
pub async fn once<F, Fut>(
    state: &AppState,
    user: &User,
    headers: &HeaderMap,
    request: &str,
    work: F,
) -> Response
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Response>,
{
    let Some(key) = headers.get("idempotency-key") else {
        return work().await;
    };
    let key = match key.to_str() {
        Ok(k) if !k.is_empty() && k.len() <= 255 && k.bytes().all(|b| b.is_ascii_graphic()) => k,
        _ => {
            return refuse(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid",
                "Idempotency-Key must be 1 to 255 visible ASCII characters (a UUID is usual)",
            );
        }
    };
    let store = state.store();
    match store.claim_idempotency_key(user.id, key, request).await {
        Err(e) => crate::web::error::ApiError(e.into()).into_response(),
        Ok(Claimed::Running) => refuse(
            StatusCode::CONFLICT,
            "conflict",
            "a request with this Idempotency-Key is still running; retry in a moment",
        ),
        Ok(Claimed::Answered(asked, status, body)) if asked == request => {
            let mut response = (
                StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
                [(header::CONTENT_TYPE, "application/json")],
                body,
            )
                .into_response();
            response
                .headers_mut()
                .insert("idempotent-replayed", HeaderValue::from_static("true"));
            response
        }
        Ok(Claimed::Answered(..)) => refuse(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            "this Idempotency-Key was used for another request; use a new key for each request",
        ),
        Ok(Claimed::Fresh) => {
            let response = work().await;
            let status = response.status();
            if status.is_server_error() {
                if let Err(e) = store.release_idempotency_key(user.id, key).await {
                    tracing::warn!(error = %e, "could not let an idempotency key go; it stays running");
                }
                return response;
            }
            let (parts, body) = response.into_parts();
            let bytes = match axum::body::to_bytes(body, KEPT_ANSWER).await {
                Ok(bytes) => bytes,
                Err(e) => {
                    tracing::warn!(error = %e, "an API answer could not be kept for replay");
                    let _ = store.release_idempotency_key(user.id, key).await;
                    return StatusCode::INTERNAL_SERVER_ERROR.into_response();
                }
            };
            let kept = String::from_utf8_lossy(&bytes);
            if let Err(e) = store
                .answer_idempotency_key(user.id, key, status.as_u16(), &kept)
                .await
            {
                // Not "running" forever: a retry may then run again.
                tracing::warn!(error = %e, "an API answer could not be kept for replay; its key is let go");
                let _ = store.release_idempotency_key(user.id, key).await;
            }
            Response::from_parts(parts, axum::body::Body::from(bytes))
        }
    }
}
