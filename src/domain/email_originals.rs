//! The original of every email that entered a conversation, kept whole in
//! the blob store (the chat message holds only the new text), and who may
//! read it: staff any, a customer those of their own conversations, and
//! anyone else is told it does not exist.

use super::chat::Chat;
use super::{DomainError, DomainResult, tickets};
use crate::blobs::{BlobKey, BlobStream, Spool};
use crate::model::User;
use crate::store::{InboundOriginal, Store};

/// Keeps `raw` as an email's original: named in the store first, then put
/// in the blob store (the order uploads keep, `store::attachments`). Its
/// key, or `None` when this chat keeps no files. A failure here comes
/// before anything of the email is written, so the sender may simply
/// deliver it again.
pub(super) async fn keep(chat: &Chat, raw: &[u8]) -> DomainResult<Option<String>> {
    let Some(files) = chat.files() else {
        return Ok(None);
    };
    let failed = |what: &str, e: &dyn std::fmt::Display| {
        DomainError::Unavailable(format!("keeping an email's original: {what}: {e}"))
    };
    // The transport bounded the email's size; the spool hashes it and gives
    // the blob store a file to take, as for an upload.
    let mut spool = Spool::create(&files.spool_dir, raw.len() as u64)
        .await
        .map_err(|e| failed("opening a spool file", &e))?;
    spool
        .write(raw)
        .await
        .map_err(|e| failed("writing a spool file", &e))?;
    let spooled = spool
        .finish()
        .await
        .map_err(|e| failed("finishing a spool file", &e))?;
    chat.store()
        .name_email_original(spooled.key.as_str(), spooled.size as i64)
        .await?;
    files
        .blobs
        .put(&spooled.key, spooled.path())
        .await
        .map_err(|e| failed("storing a blob", &e))?;
    Ok(Some(spooled.key.to_string()))
}

/// The original of inbound email `id`, if `viewer` may read it: staff may
/// read every one; a customer those of their own conversations (their
/// ticket, as `tickets::find` decides, or their own chat). Anyone else gets
/// "not found", the same as for an id that does not exist.
pub async fn find(store: &Store, viewer: &User, id: i64) -> DomainResult<InboundOriginal> {
    let original = store
        .inbound_original(id)
        .await?
        .ok_or(DomainError::NotFound)?;
    if viewer.role.is_staff() {
        return Ok(original);
    }
    let conversation = store
        .conversation(original.conversation_id)
        .await?
        .ok_or(DomainError::NotFound)?;
    let by_ticket = match conversation.ticket_number {
        Some(number) => tickets::find(store, viewer, number).await.is_ok(),
        None => false,
    };
    let own_chat = || async {
        store
            .visitor(conversation.visitor_id)
            .await
            .map(|v| v.is_some_and(|v| v.user_id == Some(viewer.id)))
    };
    if by_ticket || own_chat().await? {
        Ok(original)
    } else {
        Err(DomainError::NotFound)
    }
}

/// The bytes of an original that [`find`] allowed.
pub async fn bytes(chat: &Chat, original: &InboundOriginal) -> DomainResult<BlobStream> {
    let missing =
        || DomainError::Unavailable(format!("the original {} is missing", original.sha256));
    let key = BlobKey::parse(&original.sha256).ok_or_else(missing)?;
    let files = chat.files().ok_or_else(missing)?;
    files
        .blobs
        .get(&key)
        .await
        .map_err(|e| DomainError::Unavailable(e.to_string()))?
        .ok_or_else(missing)
}

/// The original's bytes in memory, for a page to read (at most what the
/// transport let in: SendGrid's 30 MB).
pub async fn read_whole(chat: &Chat, original: &InboundOriginal) -> DomainResult<Vec<u8>> {
    use futures_util::StreamExt;
    let mut stream = bytes(chat, original).await?;
    let mut whole = Vec::with_capacity(original.size.max(0) as usize);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| DomainError::Unavailable(e.to_string()))?;
        whole.extend_from_slice(&chunk);
    }
    Ok(whole)
}
