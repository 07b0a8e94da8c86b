//! Attachments: files a customer or an agent sends with a message.
//!
//! - The type is decided from the bytes, never from the name or the
//!   client's claim, and only an allowlist is accepted.
//! - Only raster images are ever shown inline; everything else is a
//!   download, so nothing uploaded can run as a page of Careline's origin.
//! - An upload belongs to one conversation. Until it is sent it is visible
//!   to its uploader only; once sent it is as visible as its message.
//! - An upload not sent within [`UNSENT_UPLOAD_LIFETIME`] is removed, and
//!   its bytes with it unless another upload has the same file.

use std::path::Path;
use std::time::{Duration, SystemTime};

use super::{DomainResult, invalid};
use crate::blobs::{BlobKey, Blobs};
use crate::model::{Attachment, AttachmentRef, ConversationId, SenderKind, UserId};
use crate::store::{Store, UploadRemoval};

/// Who reads an attachment, once it is known that they may read its
/// conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reader {
    /// The customer (widget visitor or portal user) of the conversation.
    Customer,
    /// An agent or admin.
    Staff { user_id: UserId },
}

impl Attachment {
    /// Sent attachments are as visible as their message; an upload not yet
    /// sent is visible to whoever uploaded it only.
    pub fn readable_by(&self, reader: Reader) -> bool {
        match (reader, self.message_id) {
            (Reader::Customer, Some(_)) => !self.private,
            (Reader::Staff { .. }, Some(_)) => true,
            (Reader::Customer, None) => self.uploader_kind == SenderKind::Customer,
            (Reader::Staff { user_id }, None) => {
                self.uploader_kind == SenderKind::Agent && self.uploader_user_id == Some(user_id)
            }
        }
    }
}

/// The sender's own upload in a conversation, to go out with a message
/// (chat, portal or console). A retried message finds its upload already
/// sent, which is fine: the store then returns the first message.
pub async fn sender_upload(
    store: &Store,
    conversation_id: ConversationId,
    sender: Reader,
    attachment_id: Option<&str>,
) -> DomainResult<Option<AttachmentRef>> {
    let Some(id) = attachment_id.map(str::trim).filter(|id| !id.is_empty()) else {
        return Ok(None);
    };
    match store.attachment(id).await? {
        Some(a) if a.conversation_id == conversation_id && a.readable_by(sender) => {
            Ok(Some(a.reference()))
        }
        _ => Err(invalid(
            "attachment_id",
            "there is no such upload in this conversation (uploads not sent within a day are removed); upload the file first",
        )),
    }
}

/// How long an upload may wait to be sent before it is removed.
pub const UNSENT_UPLOAD_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// Uploads removed per store round trip of a sweep.
const SWEEP_BATCH: i64 = 200;

/// What one sweep removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    /// Unsent uploads whose rows were removed.
    pub uploads: u64,
    /// Blobs deleted with them (fewer when another upload shares the file).
    pub blobs: u64,
    /// Spool files of uploads that never finished (a process that died
    /// mid-upload leaves them).
    pub spool_files: u64,
}

/// Removes the uploads made before `before_ms` that no message took, their
/// bytes when nothing else uses them, and spool files older than
/// [`UNSENT_UPLOAD_LIFETIME`] in `spool_dir`. Safe to run on every
/// instance at once, and beside uploads of the same file (see
/// `store::attachments`). An upload whose bytes cannot be deleted now stays
/// for the next sweep on PostgreSQL; on SQLite its row goes and the bytes
/// stay behind, logged (`UploadRemoval::BytesFailed`).
pub async fn sweep_unsent_uploads(
    store: &Store,
    blobs: &dyn Blobs,
    spool_dir: &Path,
    before_ms: i64,
) -> DomainResult<Swept> {
    let mut swept = Swept::default();
    loop {
        let expired = store.unsent_uploads_before(before_ms, SWEEP_BATCH).await?;
        let mut progress = false;
        for (id, sha256) in &expired {
            match remove_unsent_upload(store, blobs, id, sha256).await? {
                UploadRemoval::Removed => {
                    swept.uploads += 1;
                    swept.blobs += 1;
                    progress = true;
                }
                UploadRemoval::BytesShared => {
                    swept.uploads += 1;
                    progress = true;
                }
                UploadRemoval::NotThere => progress = true,
                UploadRemoval::BytesFailed => {}
            }
        }
        // A short page is the last; a page where nothing could be removed
        // (the blob store is down) would come back the same.
        if (expired.len() as i64) < SWEEP_BATCH || !progress {
            break;
        }
    }
    swept.spool_files = remove_stale_spool_files(spool_dir).await;
    Ok(swept)
}

/// Removes unsent upload `id` (bytes `sha256`) and its bytes if no other
/// upload has them: what the sweep does to an expired upload and the upload
/// door to one whose bytes could not be stored.
pub async fn remove_unsent_upload(
    store: &Store,
    blobs: &dyn Blobs,
    id: &str,
    sha256: &str,
) -> DomainResult<UploadRemoval> {
    let delete_bytes = async {
        let Some(key) = BlobKey::parse(sha256) else {
            // Not a key this store ever wrote: no bytes to delete.
            return true;
        };
        match blobs.delete(&key).await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(error = %e, blob = %key, "could not delete the bytes of an unsent upload");
                false
            }
        }
    };
    Ok(store.remove_unsent_upload(id, sha256, delete_bytes).await?)
}

/// Spool files are deleted when their upload ends; one older than an
/// upload's whole lifetime belongs to a process that died mid-upload.
async fn remove_stale_spool_files(dir: &Path) -> u64 {
    let Ok(mut entries) = tokio::fs::read_dir(dir).await else {
        return 0; // No upload yet: no folder.
    };
    let mut removed = 0;
    while let Ok(Some(entry)) = entries.next_entry().await {
        let stale = entry
            .metadata()
            .await
            .ok()
            .filter(|meta| meta.is_file())
            .and_then(|meta| meta.modified().ok())
            .and_then(|modified| SystemTime::now().duration_since(modified).ok())
            .is_some_and(|age| age > UNSENT_UPLOAD_LIFETIME);
        if stale && tokio::fs::remove_file(entry.path()).await.is_ok() {
            removed += 1;
        }
    }
    removed
}

/// What people are told when a file's type is refused.
pub const ACCEPTED_TYPES: &str = "images (PNG, JPEG, GIF, WebP), PDF, ZIP archives (also Word, Excel and other Office files) and plain text";

/// The file's type, from its first bytes; `None` when it is not on the
/// allowlist (executables, HTML, SVG, scripts, anything unknown).
pub fn sniff(head: &[u8]) -> Option<&'static str> {
    const SIGNATURES: [(&[u8], &str); 7] = [
        (b"\x89PNG\r\n\x1a\n", "image/png"),
        (b"\xff\xd8\xff", "image/jpeg"),
        (b"GIF87a", "image/gif"),
        (b"GIF89a", "image/gif"),
        (b"%PDF-", "application/pdf"),
        (b"PK\x03\x04", "application/zip"),
        (b"PK\x05\x06", "application/zip"),
    ];
    if let Some((_, content_type)) = SIGNATURES.iter().find(|(magic, _)| head.starts_with(magic)) {
        return Some(content_type);
    }
    if head.len() >= 12 && &head[0..4] == b"RIFF" && &head[8..12] == b"WEBP" {
        return Some("image/webp");
    }
    (is_plain_text(head) && !is_markup(head)).then_some("text/plain")
}

/// Whether a browser would take this text for a page: HTML, XHTML, SVG
/// or other XML (WHATWG MIME sniffing's "HTML" and "XML" patterns, and
/// `<svg`). Such text is refused, not stored as plain text, so that no
/// copy of it can ever be served where a browser might render it.
fn is_markup(head: &[u8]) -> bool {
    const TAGS: [&[u8]; 20] = [
        b"!doctype html",
        b"html",
        b"head",
        b"script",
        b"iframe",
        b"h1",
        b"div",
        b"font",
        b"table",
        b"a",
        b"style",
        b"title",
        b"b",
        b"body",
        b"br",
        b"p",
        b"svg",
        b"math",
        b"xsl:stylesheet",
        b"object",
    ];
    let text = head.strip_prefix(b"\xef\xbb\xbf").unwrap_or(head);
    let start = text.iter().position(|b| !b.is_ascii_whitespace());
    let Some(rest) = start.and_then(|i| text[i..].strip_prefix(b"<")) else {
        return false;
    };
    if rest.starts_with(b"?xml") || rest.starts_with(b"!--") {
        return true;
    }
    TAGS.iter().any(|tag| {
        rest.len() > tag.len()
            && rest[..tag.len()].eq_ignore_ascii_case(tag)
            && matches!(
                rest[tag.len()],
                b' ' | b'>' | b'\t' | b'\n' | b'\r' | b'\x0c' | b'/'
            )
    })
}

/// UTF-8 (a character cut at the end of the sample is fine) without control
/// characters other than tab, newlines and form feed.
fn is_plain_text(head: &[u8]) -> bool {
    if head.is_empty() {
        return false;
    }
    let text = match std::str::from_utf8(head) {
        Ok(text) => text,
        Err(e) if e.error_len().is_none() => {
            std::str::from_utf8(&head[..e.valid_up_to()]).expect("checked prefix")
        }
        Err(_) => return false,
    };
    text.chars()
        .all(|c| !c.is_control() || matches!(c, '\t' | '\n' | '\r' | '\x0c'))
}

/// The longest file name kept, in characters.
pub const MAX_NAME: usize = 200;

/// A file name safe to store and show: no folders, no control or
/// bidirectional-override characters, not empty, not too long.
pub fn clean_name(raw: &str) -> String {
    let base = raw.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = base
        .chars()
        .filter(|c| !c.is_control() && !is_bidi_control(*c))
        .take(MAX_NAME)
        .collect();
    let cleaned = cleaned.trim().trim_start_matches('.').trim();
    if cleaned.is_empty() {
        "file".into()
    } else {
        cleaned.to_string()
    }
}

/// Characters that can make `exe.pdf` display as `fdp.exe`.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}')
}

/// A size as people read it: `512 B`, `14 KB`, `2.4 MB`.
pub fn human_size(bytes: i64) -> String {
    const KB: f64 = 1024.0;
    let b = bytes as f64;
    if b < KB {
        format!("{bytes} B")
    } else if b < KB * KB {
        format!("{:.0} KB", b / KB)
    } else {
        format!("{:.1} MB", b / (KB * KB))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{MessageId, is_inline_image};

    #[test]
    fn types_come_from_the_bytes_and_only_from_the_allowlist() {
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n...."), Some("image/png"));
        assert_eq!(sniff(b"\xff\xd8\xff\xe0..JFIF"), Some("image/jpeg"));
        assert_eq!(sniff(b"GIF89a..."), Some("image/gif"));
        assert_eq!(sniff(b"RIFF\x10\0\0\0WEBPVP8 "), Some("image/webp"));
        assert_eq!(sniff(b"%PDF-1.7\n"), Some("application/pdf"));
        assert_eq!(sniff(b"PK\x03\x04\x14\0"), Some("application/zip"));
        assert_eq!(
            sniff("order 123: crème brûlée\r\n".as_bytes()),
            Some("text/plain")
        );
        // A multi-byte character cut by the sample's end is still text.
        assert_eq!(
            sniff(&"é".repeat(300).as_bytes()[..511]),
            Some("text/plain")
        );
        for refused in [
            &b"MZ\x90\0\x03\0\0\0"[..],      // Windows executable
            b"\x7fELF\x02\x01\x01",          // Linux executable
            b"\0\0\0\x18ftypmp42",           // video
            b"\xd0\xcf\x11\xe0\xa1\xb1\x1a", // legacy Office container
            b"",
        ] {
            assert_eq!(sniff(refused), None, "{refused:?}");
        }
    }

    #[test]
    fn markup_is_refused_not_taken_for_text() {
        // HTML, XHTML, SVG and XML are what docs/protocol.md §2a refuses
        // (415), whatever the file is called.
        for markup in [
            &b"<svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(1)</script></svg>"[..],
            b"<!doctype html><script>alert(1)</script>",
            b"<!DOCTYPE HTML PUBLIC>",
            b"\xef\xbb\xbf  \n<HTML><body>hi</body></HTML>",
            b"<?xml version=\"1.0\"?><html xmlns=\"http://www.w3.org/1999/xhtml\"/>",
            b"<?xml version=\"1.0\"?><svg/>",
            b"<script>alert(1)</script>",
            b"<!-- a comment first --><p>x</p>",
            b"<p>hello</p>",
            b"<a href=x>click</a>",
        ] {
            assert_eq!(sniff(markup), None, "{}", String::from_utf8_lossy(markup));
        }
        // Text that merely mentions markup, or starts with another `<`, is text.
        for text in [
            &b"The page said <html> somewhere in the middle."[..],
            b"<2026-12-07> log line",
            b"<abbr-like> not a tag we sniff",
        ] {
            let sniffed = sniff(text).unwrap();
            assert_eq!(sniffed, "text/plain");
            assert!(!is_inline_image(sniffed));
        }
    }

    #[test]
    fn names_lose_folders_controls_and_direction_tricks() {
        assert_eq!(clean_name("C:\\Users\\me\\report.pdf"), "report.pdf");
        assert_eq!(clean_name("../../etc/passwd"), "passwd");
        assert_eq!(clean_name("invoice\u{202e}fdp.exe"), "invoicefdp.exe");
        assert_eq!(clean_name("a\r\nb\0.txt"), "ab.txt");
        assert_eq!(clean_name(".htaccess"), "htaccess");
        assert_eq!(clean_name("   "), "file");
        assert_eq!(clean_name(&"x".repeat(500)).chars().count(), MAX_NAME);
        assert_eq!(
            clean_name("<img src=x onerror=alert(1)>.png"),
            "<img src=x onerror=alert(1)>.png"
        );
    }

    #[test]
    fn uploads_not_yet_sent_are_their_uploaders_only() {
        let mut a = Attachment {
            id: "a".into(),
            conversation_id: ConversationId(1),
            uploader_kind: SenderKind::Agent,
            uploader_user_id: Some(UserId(7)),
            name: "x.png".into(),
            content_type: "image/png".into(),
            size: 1,
            sha256: String::new(),
            message_id: None,
            private: false,
            created_at: 0,
        };
        assert!(a.readable_by(Reader::Staff { user_id: UserId(7) }));
        assert!(!a.readable_by(Reader::Staff { user_id: UserId(8) }));
        assert!(!a.readable_by(Reader::Customer));
        a.message_id = Some(MessageId(1));
        assert!(a.readable_by(Reader::Staff { user_id: UserId(8) }));
        assert!(a.readable_by(Reader::Customer));
        a.private = true;
        assert!(!a.readable_by(Reader::Customer));
    }

    #[test]
    fn sizes_read_like_people_write_them() {
        assert_eq!(human_size(512), "512 B");
        assert_eq!(human_size(14 * 1024), "14 KB");
        assert_eq!(human_size(2_516_582), "2.4 MB");
    }
}
