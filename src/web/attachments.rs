//! Attachments over HTTP: uploads stream to a spool file under their own
//! size limit, are typed from their bytes, stored in the blob store and
//! recorded; downloads are answered only to those who may read the
//! conversation, with headers that keep a file from ever running as a page
//! of Careline's origin.
//!
//! Two doors, one set of rules:
//! - the widget (any allowed origin, CORS): `Authorization: Bearer
//!   <visitor_token>` and `?site=KEY`;
//! - pages (same origin): the session cookie, and for uploads the CSRF
//!   token in `X-CSRF-Token`.

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};

use super::AppState;
use super::error::{ErrorBody, api_error_body};
use super::session::{ApiUser, MaybeUser};
use super::widget::{cors, preflight};
use super::ws::origin_allowed;
use crate::auth::{hash_token, random_token};
use crate::domain::attachments::Reader;
use crate::domain::uploads::{UploadRefusal, Uploader, store_upload};
use crate::model::{
    Attachment, Conversation, ConversationId, SenderKind, User, Visitor, is_inline_image,
};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/api/widget/v1/conversations/{id}/attachments",
            post(widget_upload).options(preflight),
        )
        .route(
            "/api/widget/v1/attachments/{id}",
            get(widget_download).options(preflight),
        )
        .route("/api/v1/conversations/{id}/attachments", post(page_upload))
        .route("/attachments/{id}", get(page_download))
}

/// An answer the caller can act on, in the API's one error shape.
fn refuse(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    let message: String = message.into();
    (status, api_error_body(code, &message, None)).into_response()
}

fn not_found() -> Response {
    refuse(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such conversation or file (or it is not yours)",
    )
}

fn unavailable(what: &str, error: &dyn std::fmt::Display) -> Response {
    let reference = random_token(6);
    tracing::error!(%reference, error = %error, "{what} failed");
    refuse(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        format!(
            "files cannot be stored or read right now (reference {reference}); try again shortly"
        ),
    )
}

#[derive(Deserialize)]
struct UploadQuery {
    #[serde(default)]
    name: String,
}

#[derive(Deserialize)]
struct WidgetQuery {
    #[serde(default)]
    site: String,
    #[serde(default)]
    name: String,
}

#[derive(Serialize, utoipa::ToSchema)]
struct Uploaded {
    id: String,
    name: String,
    size: i64,
    content_type: String,
    image: bool,
    url: String,
}

/// Streams the body through the upload rules (`domain::uploads`) and
/// answers with the stored file or the refusal.
async fn receive(
    state: &AppState,
    uploader: Uploader,
    raw_name: &str,
    headers: &HeaderMap,
    body: Body,
    url_base: &str,
) -> Response {
    let Some(files) = state.chat().files() else {
        return unavailable("an upload", &"no blob store is configured");
    };
    // Refused before a byte is read when the client says it up front.
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let stored = store_upload(
        state.store(),
        files,
        uploader,
        raw_name,
        declared,
        body.into_data_stream(),
    )
    .await;
    let attachment = match stored {
        Ok(attachment) => attachment,
        Err(refusal) => return refused(refusal),
    };
    (
        StatusCode::CREATED,
        Json(Uploaded {
            url: format!("{url_base}/{}", attachment.id),
            image: is_inline_image(&attachment.content_type),
            id: attachment.id,
            name: attachment.name,
            size: attachment.size,
            content_type: attachment.content_type,
        }),
    )
        .into_response()
}

/// An upload's refusal as the widget and the pages are answered.
fn refused(refusal: UploadRefusal) -> Response {
    let (status, code) = match &refusal {
        UploadRefusal::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
        UploadRefusal::RateLimited => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
        UploadRefusal::Interrupted => (StatusCode::BAD_REQUEST, "invalid"),
        UploadRefusal::Empty => (StatusCode::UNPROCESSABLE_ENTITY, "invalid"),
        UploadRefusal::UnsupportedType => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_type"),
        UploadRefusal::Unavailable { what, error } => return unavailable(what, error),
    };
    refuse(status, code, refusal.to_string())
}

/// The file, for a reader already known to be allowed.
async fn send_file(state: &AppState, attachment: &Attachment) -> Response {
    let Some(key) = crate::blobs::BlobKey::parse(&attachment.sha256) else {
        return unavailable("reading a blob key", &"malformed sha256");
    };
    let stream = match state.blobs().get(&key).await {
        Ok(Some(stream)) => stream,
        Ok(None) => return unavailable("reading a blob", &format!("blob {key} is missing")),
        Err(e) => return unavailable("reading a blob", &e),
    };
    let inline = is_inline_image(&attachment.content_type);
    let content_type = if attachment.content_type == "text/plain" {
        "text/plain; charset=utf-8".to_string()
    } else {
        attachment.content_type.clone()
    };
    let mut response = Body::from_stream(stream).into_response();
    let h = response.headers_mut();
    let mut set = |name: header::HeaderName, value: &str| {
        if let Ok(value) = HeaderValue::from_str(value) {
            h.insert(name, value);
        }
    };
    set(header::CONTENT_TYPE, &content_type);
    set(header::CONTENT_LENGTH, &attachment.size.to_string());
    set(
        header::CONTENT_DISPOSITION,
        &content_disposition(inline, &attachment.name),
    );
    // Even if a browser were talked into rendering it: no scripts, no
    // plugins, no same-origin powers.
    set(
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; sandbox",
    );
    set(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    // The bytes behind an id never change; only the reader may keep them.
    set(header::CACHE_CONTROL, "private, max-age=86400, immutable");
    response
}

/// `attachment` (or `inline` for raster images) with the name twice: a
/// plain-ASCII fallback and the exact UTF-8 name (RFC 6266 / RFC 8187).
fn content_disposition(inline: bool, name: &str) -> String {
    let fallback: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && !matches!(c, '"' | '\\' | ';' | '%') || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded: String = name
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    let kind = if inline { "inline" } else { "attachment" };
    format!("{kind}; filename=\"{fallback}\"; filename*=UTF-8''{encoded}")
}

// ---- the widget's door ------------------------------------------------------

/// The visitor behind `Authorization: Bearer <token>` on site `site_key`,
/// when the request's origin may use that site's chat.
pub(super) async fn widget_visitor(
    state: &AppState,
    headers: &HeaderMap,
    site_key: &str,
) -> Result<(Visitor, String), Response> {
    let origin = headers
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok())
        .ok_or_else(|| {
            refuse(
                StatusCode::FORBIDDEN,
                "forbidden",
                "an Origin header is required",
            )
        })?
        .to_string();
    let site = match state.store().site_by_key(site_key).await {
        Ok(Some(site)) if origin_allowed(state, &site, &origin) => site,
        Ok(_) => {
            return Err(refuse(
                StatusCode::FORBIDDEN,
                "forbidden",
                "this origin may not use this site's chat (check ?site=)",
            ));
        }
        Err(e) => return Err(unavailable("site lookup", &e)),
    };
    let token = super::bearer_token(headers)
        .map(str::trim)
        .filter(|t| !t.is_empty() && t.len() <= 100);
    let unauthorized = || {
        cors(
            refuse(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "send Authorization: Bearer <visitor_token> (from /api/widget/v1/session)",
            ),
            &origin,
        )
    };
    let Some(token) = token else {
        return Err(unauthorized());
    };
    match state
        .store()
        .visitor_by_token(site.id, &hash_token(token))
        .await
    {
        Ok(Some(visitor)) => Ok((visitor, origin)),
        Ok(None) => Err(unauthorized()),
        Err(e) => Err(cors(unavailable("visitor lookup", &e), &origin)),
    }
}

async fn widget_upload(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<WidgetQuery>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (visitor, origin) = match widget_visitor(&state, &headers, &query.site).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let conversation = match id.parse::<i64>() {
        Ok(id) => state
            .chat()
            .visitor_conversation(&visitor, ConversationId(id))
            .await
            .ok(),
        Err(_) => None,
    };
    let Some(conversation) = conversation else {
        return cors(not_found(), &origin);
    };
    let uploader = Uploader {
        conversation_id: conversation.id,
        kind: SenderKind::Customer,
        user_id: visitor.user_id,
    };
    let response = receive(
        &state,
        uploader,
        &query.name,
        &headers,
        body,
        "/api/widget/v1/attachments",
    )
    .await;
    cors(response, &origin)
}

async fn widget_download(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<WidgetQuery>,
    headers: HeaderMap,
) -> Response {
    let (visitor, origin) = match widget_visitor(&state, &headers, &query.site).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let readable = match state.store().attachment(&id).await {
        Ok(Some(a)) if a.readable_by(Reader::Customer) => {
            match state.store().conversation(a.conversation_id).await {
                Ok(Some(c)) if c.visitor_id == visitor.id => Some(a),
                Ok(_) => None,
                Err(e) => return cors(unavailable("conversation lookup", &e), &origin),
            }
        }
        Ok(_) => None,
        Err(e) => return cors(unavailable("attachment lookup", &e), &origin),
    };
    match readable {
        Some(a) => cors(send_file(&state, &a).await, &origin),
        None => cors(not_found(), &origin),
    }
}

// ---- the pages' door ---------------------------------------------------------

/// How `user` reads conversation `c`: staff read every conversation, a
/// customer only those of their own visitor records.
async fn reader_of(
    state: &AppState,
    user: &User,
    c: &Conversation,
) -> Result<Option<Reader>, Response> {
    if user.role.is_staff() {
        return Ok(Some(Reader::Staff { user_id: user.id }));
    }
    match state.store().visitor(c.visitor_id).await {
        Ok(Some(v)) if v.user_id == Some(user.id) => Ok(Some(Reader::Customer)),
        Ok(_) => Ok(None),
        Err(e) => Err(unavailable("visitor lookup", &e)),
    }
}

fn login_first() -> Response {
    refuse(StatusCode::UNAUTHORIZED, "unauthorized", "log in first")
}

/// This door's route in the OpenAPI document (`api::openapi`).
#[derive(utoipa::OpenApi)]
#[openapi(paths(page_upload))]
pub(super) struct Doc;

/// Upload a file
///
/// The raw bytes of one file for a conversation the caller may write in
/// (staff; a customer their own ticket's); then send its `id` as
/// `attachment_id` with a reply, a note or a message. Typed from its bytes:
/// PNG, JPEG, GIF, WebP, PDF, ZIP (and Office files) or plain text. A file
/// not sent within a day is removed.
#[utoipa::path(
    post,
    path = "/api/v1/conversations/{id}/attachments",
    operation_id = "upload_attachment",
    tag = "conversations",
    params(
        ("id" = String, Path, description = "The conversation's id"),
        ("name" = Option<String>, Query, description = "The file's name, as people will see it"),
        ("Idempotency-Key" = Option<String>, Header,
            description = "1–255 visible characters (a UUID is usual): a retry with the same key answers the first upload again (`Idempotent-Replayed: true`) rather than storing the file twice"),
    ),
    request_body(content = String, content_type = "application/octet-stream",
        description = "The file's bytes"),
    responses(
        (status = 201, description = "Stored; send its `id` with a message", body = Uploaded),
        (status = 401, description = "No valid session or token", body = ErrorBody),
        (status = 403, description = "A read-only token, or a session without its CSRF token", body = ErrorBody),
        (status = 404, description = "No such conversation, or not the caller's", body = ErrorBody),
        (status = 413, description = "Larger than `attachment_max_bytes`", body = ErrorBody),
        (status = 415, description = "Not a type Careline takes", body = ErrorBody),
        (status = 409, description = "An upload with this Idempotency-Key is still running", body = ErrorBody),
        (status = 422, description = "An empty file, or an Idempotency-Key used for another request", body = ErrorBody),
        (status = 429, description = "Too many requests or uploads", body = ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds to wait"))),
    ),
    security(("token" = ["write"]), ("session" = [], "csrf" = [])),
)]
async fn page_upload(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<UploadQuery>,
    // A token (write scope), or the session with the page's CSRF token.
    ApiUser { user, .. }: ApiUser,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let conversation = match id.parse::<i64>() {
        Ok(id) => match state.store().conversation(ConversationId(id)).await {
            Ok(c) => c,
            Err(e) => return unavailable("conversation lookup", &e),
        },
        Err(_) => None,
    };
    let Some(conversation) = conversation else {
        return not_found();
    };
    let kind = match reader_of(&state, &user, &conversation).await {
        Ok(Some(Reader::Staff { .. })) => SenderKind::Agent,
        Ok(Some(Reader::Customer)) => SenderKind::Customer,
        Ok(None) => return not_found(),
        Err(response) => return response,
    };
    let uploader = Uploader {
        conversation_id: conversation.id,
        kind,
        user_id: Some(user.id),
    };
    // A retried upload with the same key is the same file, not a second.
    let request = format!(
        "POST /api/v1/conversations/{}/attachments",
        conversation.id.0
    );
    super::api::idempotency::once(&state, &user, &headers, &request, || {
        receive(
            &state,
            uploader,
            &query.name,
            &headers,
            body,
            "/attachments",
        )
    })
    .await
}

async fn page_download(
    State(state): State<AppState>,
    Path(id): Path<String>,
    maybe: MaybeUser,
) -> Response {
    let Some(user) = maybe.user else {
        return login_first();
    };
    let attachment = match state.store().attachment(&id).await {
        Ok(Some(a)) => a,
        Ok(None) => return not_found(),
        Err(e) => return unavailable("attachment lookup", &e),
    };
    let conversation = match state.store().conversation(attachment.conversation_id).await {
        Ok(Some(c)) => c,
        Ok(None) => return not_found(),
        Err(e) => return unavailable("conversation lookup", &e),
    };
    match reader_of(&state, &user, &conversation).await {
        Ok(Some(reader)) if attachment.readable_by(reader) => send_file(&state, &attachment).await,
        Ok(_) => not_found(),
        Err(response) => response,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dispositions_quote_nothing_dangerous_and_keep_the_real_name() {
        assert_eq!(
            content_disposition(false, "report.pdf"),
            "attachment; filename=\"report.pdf\"; filename*=UTF-8''report.pdf"
        );
        assert_eq!(
            content_disposition(true, "crème \"brûlée\";.png"),
            "inline; filename=\"cr_me _br_l_e__.png\"; filename*=UTF-8''cr%C3%A8me%20%22br%C3%BBl%C3%A9e%22%3B.png"
        );
    }
}
