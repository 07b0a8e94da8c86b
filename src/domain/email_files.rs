//! The files of a customer's email, taken into its conversation as the
//! customer's own uploads: through the same rules as the widget's files
//! (`uploads`: type from the bytes, the size limit, the name cleaned), each
//! sent as a message of its own, as the widget sends a file alone.
//!
//! An email is one delivery, not a person clicking: the widget's bound on
//! unsent uploads cannot hold it back (each file is sent the moment it is
//! stored), so at most [`MAX_FILES_PER_EMAIL`] files of one email are taken.

use std::sync::Arc;

use super::attachments::{clean_name, remove_unsent_upload};
use super::chat::{Chat, Sent};
use super::uploads::{UploadRefusal, Uploader, in_memory, store_upload};
use super::{DomainError, DomainResult};
use crate::mail::inbound::MailFile;
use crate::model::{Attachment, ConversationId, SenderKind, Visitor};

/// Files taken from one email at most: more than a person attaches to one
/// reply, few enough that a flood of emails cannot fill the blob store much
/// faster than the widget's own bound would let it.
pub const MAX_FILES_PER_EMAIL: usize = 10;

/// What became of an email's files.
#[derive(Debug, Default)]
pub(super) struct FilesTaken {
    /// Files sent into the conversation (now or by an earlier delivery).
    pub taken: usize,
    /// Files not taken: their name and why, for people.
    pub refused: Vec<(String, String)>,
}

impl FilesTaken {
    /// One line for the inbound email's record (the admin's inbound page).
    pub fn detail(&self) -> String {
        let mut detail = match self.taken {
            0 => String::new(),
            1 => "1 file taken".to_string(),
            n => format!("{n} files taken"),
        };
        if !self.refused.is_empty() {
            if !detail.is_empty() {
                detail.push_str("; ");
            }
            detail.push_str("not taken: ");
            let refused: Vec<String> = self
                .refused
                .iter()
                .map(|(name, why)| format!("{name} ({why})"))
                .collect();
            detail.push_str(&refused.join("; "));
        }
        detail
    }
}

/// Takes `files` into `conversation_id` as `visitor`'s uploads, each sent as
/// its own message. `email_id` makes each file's `client_msg_id`, so that a
/// second delivery of the email sends none twice. Files that are refused
/// are named in a private note for the agents (below).
pub(super) async fn take(
    chat: &Arc<Chat>,
    email_id: &str,
    conversation_id: ConversationId,
    visitor: &Visitor,
    files: &[MailFile],
) -> DomainResult<FilesTaken> {
    let mut outcome = FilesTaken::default();
    for (i, file) in files.iter().enumerate() {
        let taken = if i < MAX_FILES_PER_EMAIL {
            let client_msg_id = format!("{email_id}-f{}", i + 1);
            take_one(chat, &client_msg_id, conversation_id, visitor, file).await?
        } else {
            Err(format!(
                "only the first {MAX_FILES_PER_EMAIL} files of an email are taken"
            ))
        };
        match taken {
            Ok(()) => outcome.taken += 1,
            Err(why) => outcome.refused.push((clean_name(&file.name), why)),
        }
    }
    if !outcome.refused.is_empty() {
        tell_agents(chat, email_id, conversation_id, &outcome.refused).await?;
    }
    Ok(outcome)
}

/// Takes one file as the message `client_msg_id`: `Err` says why it was
/// not taken, for people.
async fn take_one(
    chat: &Arc<Chat>,
    client_msg_id: &str,
    conversation_id: ConversationId,
    visitor: &Visitor,
    file: &MailFile,
) -> DomainResult<Result<(), String>> {
    let store = chat.store();
    if store
        .message_by_client_id(conversation_id, client_msg_id)
        .await?
        .is_some()
    {
        // Sent by an earlier delivery of this email.
        return Ok(Ok(()));
    }
    let Some(place) = chat.files() else {
        return Ok(Err("this Careline keeps no files".into()));
    };
    let uploader = Uploader {
        conversation_id,
        kind: SenderKind::Customer,
        user_id: visitor.user_id,
    };
    let size = Some(file.bytes.len() as u64);
    let body = in_memory(&file.bytes);
    let upload = match store_upload(store, place, uploader, &file.name, size, body).await {
        Ok(upload) => upload,
        Err(UploadRefusal::Unavailable { what, error }) => {
            tracing::warn!(%error, "{what} failed for a file of an inbound email");
            return Ok(Err(STORAGE_FAILED.into()));
        }
        Err(refusal) => return Ok(Err(refusal.to_string())),
    };
    let sent = chat
        .send_as_visitor_to(
            visitor,
            conversation_id,
            client_msg_id,
            "",
            Some(&upload.id),
        )
        .await;
    // A delivery racing this one sent the file first (a duplicate), or it
    // was not sent: this copy goes now rather than waiting a day for the
    // sweep.
    if !matches!(
        sent,
        Ok(Sent {
            duplicate: false,
            ..
        })
    ) {
        forget(chat, &upload).await;
    }
    Ok(sent.map(|_| ()).map_err(|e| not_sent(&e)))
}

/// Why a file could not be stored when the blob store or the database
/// failed: by then the email's text is in, and delivering the email again
/// would not bring the file back (it is taken once), so it is said, not
/// retried.
const STORAGE_FAILED: &str = "it could not be stored just now; ask the customer to send it again";

/// Removes an upload of an email's file that no message took.
async fn forget(chat: &Chat, upload: &Attachment) {
    let Some(place) = chat.files() else { return };
    let removed =
        remove_unsent_upload(chat.store(), &*place.blobs, &upload.id, &upload.sha256).await;
    if let Err(e) = removed {
        tracing::warn!(error = %e, "could not remove an email's unsent file; the sweep will");
    }
}

fn not_sent(e: &DomainError) -> String {
    match e {
        DomainError::Unavailable(_) | DomainError::Internal(_) | DomainError::Busy { .. } => {
            tracing::warn!(error = %e, "a file of an inbound email could not be sent");
            STORAGE_FAILED.to_string()
        }
        other => other.to_string(),
    }
}

/// A private note in the conversation naming the files not taken. The
/// agents answering it are the ones who need to know a file is missing (to
/// ask for it another way); a note sits where they read, where a line on
/// the admin's inbound page alone would go unseen. The customer is not
/// emailed about it: an automatic answer to an email is what two
/// auto-responders loop on, and the agent can ask in their reply.
async fn tell_agents(
    chat: &Arc<Chat>,
    email_id: &str,
    conversation_id: ConversationId,
    refused: &[(String, String)],
) -> DomainResult<()> {
    let mut note = String::from(
        "Not attached from the customer's email (ask for these another way if you need them):",
    );
    for (name, why) in refused {
        note.push_str(&format!("\n- {name}: {why}"));
    }
    let note = crate::model::text::at_most(&note, crate::model::MAX_BODY);
    // `:` is the server's own: no client can take this id first.
    chat.note_from_careline(conversation_id, &format!("{email_id}:refused"), note)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_record_says_what_was_taken_and_what_was_not_and_why() {
        let mut outcome = FilesTaken {
            taken: 2,
            refused: vec![],
        };
        assert_eq!(outcome.detail(), "2 files taken");
        outcome.refused.push((
            "setup.exe".into(),
            "this kind of file cannot be attached".into(),
        ));
        assert_eq!(
            outcome.detail(),
            "2 files taken; not taken: setup.exe (this kind of file cannot be attached)"
        );
        outcome.taken = 0;
        assert!(outcome.detail().starts_with("not taken: setup.exe"));
        assert_eq!(FilesTaken::default().detail(), "");
    }
}
