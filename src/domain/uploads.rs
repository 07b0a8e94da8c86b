//! The one way a file enters Careline, whichever door it comes through (the
//! widget, a ticket page, a customer's email): spooled to disk under the
//! size limit, typed from its bytes ([`sniff`]), its name cleaned
//! ([`clean_name`]), recorded, then stored in the blob store. A refusal
//! leaves nothing behind.

use std::path::PathBuf;
use std::sync::Arc;

use futures_util::{Stream, StreamExt};

use super::attachments::{ACCEPTED_TYPES, clean_name, human_size, remove_unsent_upload, sniff};
use crate::auth::random_token;
use crate::blobs::{Blobs, Spool, SpoolError, Spooled, spool_dir};
use crate::model::{Attachment, ConversationId, SenderKind, UserId};
use crate::store::{Store, now_ms};

/// Uploads one conversation may hold unsent within an hour: enough for a
/// person, a bound for a script.
pub const UNSENT_PER_HOUR: i64 = 20;

/// Where files go and how large one may be: the blob store, the
/// `attachment_max_bytes` setting, and the spool folder under the data
/// directory.
#[derive(Clone)]
pub struct Files {
    pub blobs: Arc<dyn Blobs>,
    pub max_bytes: u64,
    pub spool_dir: PathBuf,
}

impl Files {
    /// The files of a Careline whose data directory is `data_dir`.
    pub fn new(blobs: Arc<dyn Blobs>, max_bytes: u64, data_dir: &std::path::Path) -> Files {
        Files {
            blobs,
            max_bytes,
            spool_dir: spool_dir(data_dir),
        }
    }
}

/// Who uploads into which conversation (the caller decided they may).
#[derive(Debug, Clone, Copy)]
pub struct Uploader {
    pub conversation_id: ConversationId,
    /// `Customer` or `Agent`.
    pub kind: SenderKind,
    pub user_id: Option<UserId>,
}

/// Why a file was not taken, in words the sender can act on (the widget,
/// the pages and the note on an email's refused file all say these).
#[derive(Debug, thiserror::Error)]
pub enum UploadRefusal {
    #[error("files may be up to {}", human_size(*limit as i64))]
    TooLarge { limit: u64 },
    #[error("too many files waiting to be sent in this conversation; send them or try later")]
    RateLimited,
    #[error("the upload was interrupted; send the file again")]
    Interrupted,
    #[error("the file is empty")]
    Empty,
    #[error("this kind of file cannot be attached; send {ACCEPTED_TYPES}")]
    UnsupportedType,
    /// The store or the disk failed while `what`: nothing the sender did.
    /// `error` is for the log only.
    #[error("files cannot be stored right now; try again shortly")]
    Unavailable { what: &'static str, error: String },
}

fn unavailable(what: &'static str, error: impl std::fmt::Display) -> UploadRefusal {
    UploadRefusal::Unavailable {
        what,
        error: error.to_string(),
    }
}

/// Takes one file for `uploader`: `declared` is the size the sender said up
/// front (refused before a byte is read when over the limit), `body` its
/// bytes in chunks. The returned upload is the uploader's until a message
/// carries it (`attachments::sender_upload`).
pub async fn store_upload<S, C, E>(
    store: &Store,
    files: &Files,
    uploader: Uploader,
    raw_name: &str,
    declared: Option<u64>,
    body: S,
) -> Result<Attachment, UploadRefusal>
where
    S: Stream<Item = Result<C, E>>,
    C: AsRef<[u8]>,
{
    let limit = files.max_bytes;
    if declared.is_some_and(|n| n > limit) {
        return Err(UploadRefusal::TooLarge { limit });
    }
    let since = now_ms() - 3_600_000;
    match store
        .unsent_uploads_since(uploader.conversation_id, since)
        .await
    {
        Ok(n) if n >= UNSENT_PER_HOUR => return Err(UploadRefusal::RateLimited),
        Ok(_) => {}
        Err(e) => return Err(unavailable("counting uploads", e)),
    }
    let spooled = spool(files, body).await?;
    if spooled.size == 0 {
        return Err(UploadRefusal::Empty);
    }
    let content_type = sniff(&spooled.head).ok_or(UploadRefusal::UnsupportedType)?;
    let attachment = Attachment {
        id: random_token(24),
        conversation_id: uploader.conversation_id,
        uploader_kind: uploader.kind,
        uploader_user_id: uploader.user_id,
        name: clean_name(raw_name),
        content_type: content_type.to_string(),
        size: spooled.size as i64,
        sha256: spooled.key.to_string(),
        message_id: None,
        private: false,
        created_at: now_ms(),
    };
    // The row first, then the bytes: a sweep that removes an expired upload
    // of the same file then either sees this row and keeps the bytes, or
    // deleted them before this row, and the put below stores them again
    // (`store::attachments`).
    if let Err(e) = store.insert_attachment(&attachment).await {
        return Err(unavailable("recording an upload", e));
    }
    if let Err(e) = files.blobs.put(&spooled.key, spooled.path()).await {
        // Nobody was told its id: its row goes, as a sweep would remove it,
        // with any bytes a half-done put left that nothing else uses.
        let forgotten =
            remove_unsent_upload(store, &*files.blobs, &attachment.id, &attachment.sha256).await;
        if let Err(forget) = forgotten {
            tracing::warn!(error = %forget, "could not remove the row of an upload whose bytes were not stored; the sweep will");
        }
        return Err(unavailable("storing a blob", e));
    }
    Ok(attachment)
}

/// Streams `body` into a spool file under the size limit.
async fn spool<S, C, E>(files: &Files, body: S) -> Result<Spooled, UploadRefusal>
where
    S: Stream<Item = Result<C, E>>,
    C: AsRef<[u8]>,
{
    let mut spool = Spool::create(&files.spool_dir, files.max_bytes)
        .await
        .map_err(|e| unavailable("opening a spool file", e))?;
    let mut body = std::pin::pin!(body);
    while let Some(chunk) = body.next().await {
        // The sender went away or broke the body: nothing is kept.
        let chunk = chunk.map_err(|_| UploadRefusal::Interrupted)?;
        match spool.write(chunk.as_ref()).await {
            Ok(()) => {}
            Err(SpoolError::TooLarge { limit }) => return Err(UploadRefusal::TooLarge { limit }),
            Err(SpoolError::Io(e)) => return Err(unavailable("writing a spool file", e)),
        }
    }
    spool
        .finish()
        .await
        .map_err(|e| unavailable("finishing a spool file", e))
}

/// A file already in memory (an email's attachment), as one chunk.
pub fn in_memory(bytes: &[u8]) -> impl Stream<Item = Result<&[u8], std::convert::Infallible>> {
    futures_util::stream::once(async move { Ok(bytes) })
}
