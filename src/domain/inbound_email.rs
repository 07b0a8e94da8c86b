//! Email from customers, decided once for every way it arrives (SendGrid's
//! Inbound Parse hook today): a reply to one of Careline's emails enters
//! its conversation as the customer's message, live to the agent and the
//! widget like any other; any other email opens a ticket for its sender.
//!
//! The conversation is named by a signed tag (`mail::threading`) in a
//! recipient address or in the threading headers, never by a number alone,
//! and only its own customer may write into it: anyone else's email opens
//! a ticket of their own. Machine mail (auto-replies, bounces, lists)
//! becomes nothing and gets no answer, so two auto-responders cannot loop.
//! Each email is taken once, by its `Message-ID`, however often it is
//! delivered.
//!
//! An email that is taken keeps its original whole (`email_originals`),
//! linked from the message its new text became; its files follow that
//! message as the customer's own uploads (`email_files`).

use std::sync::Arc;

use super::chat::Chat;
use super::{DomainError, DomainResult, email_files, email_originals, tickets};
use crate::auth::Secret;
use crate::mail::inbound::InboundMail;
use crate::mail::threading;
use crate::model::{Conversation, ConversationId, Email, Priority, TicketNumber, Visitor};
use crate::store::{InboundOutcome, InboundRecord, Store};

/// What became of an email.
#[derive(Debug, Clone, PartialEq)]
pub enum Received {
    /// It entered `conversation` as the customer's message number `seq`.
    Appended {
        conversation: ConversationId,
        seq: i64,
    },
    /// It opened ticket `number`.
    Opened { number: TicketNumber },
    /// The same email was taken before.
    AlreadyTaken,
    /// Nothing was made of it, for this reason.
    Ignored(&'static str),
    /// It cannot be read, for this reason: kept for an admin.
    Unreadable(String),
}

impl Received {
    /// What became of it, in a word (logs, answers to a webhook).
    pub fn outcome(&self) -> &'static str {
        match self {
            Received::Appended { .. } => "appended",
            Received::Opened { .. } => "opened",
            Received::AlreadyTaken => "already taken",
            Received::Ignored(_) => "ignored",
            Received::Unreadable(_) => "failed",
        }
    }
}

/// The raw mail kept for an admin when it cannot be read, at most.
const KEPT_RAW: usize = 1024 * 1024;

/// The key an email is taken once by: its `Message-ID`, or without one a
/// hash of what it says.
pub fn message_key(mail: &InboundMail) -> String {
    match &mail.message_id {
        Some(id) if id.len() <= 250 => id.clone(),
        _ => content_key(&format!(
            "{}\0{}\0{}\0",
            mail.from.as_ref().map_or("", |(a, _)| a.as_str()),
            mail.subject,
            mail.full_text
        )),
    }
}

/// The key of an email known only by its content (`sha256:<hex>`).
pub fn content_key(content: &str) -> String {
    format!("sha256:{}", crate::auth::hash_token(content))
}

/// Takes one whole MIME message, as a mailbox (IMAP) or SendGrid's raw
/// mode hands it over; `envelope_to` are the SMTP recipients when known.
/// Mail that cannot be read is kept for an admin.
pub async fn receive_raw(
    chat: &Arc<Chat>,
    secret: &Secret,
    raw: &[u8],
    envelope_to: &[String],
) -> DomainResult<Received> {
    match crate::mail::inbound::parse_raw(raw, envelope_to) {
        Ok(mail) => receive(chat, secret, &mail, raw).await,
        Err(e) => {
            let kept = String::from_utf8_lossy(&raw[..raw.len().min(KEPT_RAW)]);
            keep_unreadable(chat.store(), &kept, &e.to_string()).await
        }
    }
}

/// An email that cannot be read (`reason`): its text (the first MB) is
/// kept for an admin on the inbound page, once however often it comes,
/// and logged. Nothing is half-stored: no message, no ticket, no answer.
pub async fn keep_unreadable(store: &Store, raw: &str, reason: &str) -> DomainResult<Received> {
    let raw = crate::model::text::at_most(raw, KEPT_RAW);
    store
        .record_inbound_email(&InboundRecord {
            message_key: &content_key(raw),
            from_email: "",
            outcome: InboundOutcome::Failed,
            conversation_id: None,
            detail: reason,
            raw: Some(raw),
            original_sha256: None,
            message_seq: None,
        })
        .await?;
    tracing::warn!(%reason, bytes = raw.len(), "inbound email cannot be read; kept for an admin");
    Ok(Received::Unreadable(reason.to_string()))
}

/// What a conversation's first email message says when the email had files
/// and no words: the files follow it, each as a message of its own.
const FILES_ONLY: &str = "(no text: the email's files follow)";

/// Takes one email (see the module docs); `original` is the email as it
/// came (or as near as the transport gives it), kept for its readers.
pub async fn receive(
    chat: &Arc<Chat>,
    secret: &Secret,
    mail: &InboundMail,
    original: &[u8],
) -> DomainResult<Received> {
    let store = chat.store();
    let key = message_key(mail);
    if store.inbound_email_seen(&key).await? {
        return Ok(Received::AlreadyTaken);
    }
    let from = mail.from.as_ref().map_or("", |(a, _)| a.as_str());
    let ignore = |reason: &'static str| ignored(store, &key, from, reason);
    if let Some(why) = mail.automatic {
        return ignore(why).await;
    }
    let Some((address, name)) = &mail.from else {
        return ignore("no sender").await;
    };
    let Ok(sender) = Email::parse(address) else {
        return ignore("the sender's address is not an email address").await;
    };
    let text = match mail.new_text() {
        text if !text.is_empty() => text,
        _ => mail.full_text.trim().to_string(),
    };
    let text = match text {
        text if !text.is_empty() => text,
        _ if !mail.files.is_empty() => FILES_ONLY.to_string(),
        _ => return ignore("no text").await,
    };
    let text = crate::model::text::at_most(&text, crate::model::MAX_BODY).to_string();

    let named = mail
        .recipients
        .iter()
        .chain(&mail.threads)
        .find_map(|r| threading::conversation_in(secret, r));
    if let Some(id) = named
        && let Some(conversation) = store.conversation(id).await?
        && same_address(&conversation, sender.as_str())
    {
        let email = Taking {
            key: &key,
            from,
            mail,
            original,
        };
        return append(chat, &email, &conversation, &text).await;
    }
    if named.is_some() {
        // A tag that verifies, from someone who is not that conversation's
        // customer (a forwarded email, a colleague in Cc): never appended
        // to another person's conversation; it opens their own ticket.
        tracing::info!(message = %key_for_log(&key), "inbound email names a conversation that is not its sender's; opening a ticket instead");
    }
    let answering = mail
        .message_id
        .as_deref()
        .filter(|id| threading::is_message_id(id));
    let email = Taking {
        key: &key,
        from,
        mail,
        original,
    };
    open_ticket(chat, &email, (&sender, name), &text, answering).await
}

/// An email being taken: its key, sender, contents and original.
struct Taking<'a> {
    key: &'a str,
    from: &'a str,
    mail: &'a InboundMail,
    original: &'a [u8],
}

impl Taking<'_> {
    /// The email's own client id: a second delivery racing this one is the
    /// same message (the store's retry rule), not a second one; its files
    /// add their number to it.
    fn client_msg_id(&self) -> String {
        format!("email-{}", &crate::auth::hash_token(self.key)[..32])
    }
}

/// After the email's text is in `conversation` as message `seq`: its files
/// follow, and the email is recorded with its original and that message.
async fn taken(
    chat: &Arc<Chat>,
    email: &Taking<'_>,
    (conversation, visitor, seq): (ConversationId, &Visitor, i64),
    (outcome, original): (InboundOutcome, Option<&str>),
) -> DomainResult<()> {
    let files = email_files::take(
        chat,
        &email.client_msg_id(),
        conversation,
        visitor,
        &email.mail.files,
    )
    .await?;
    chat.store()
        .record_inbound_email(&InboundRecord {
            message_key: email.key,
            from_email: email.from,
            outcome,
            conversation_id: Some(conversation),
            detail: &files.detail(),
            raw: None,
            original_sha256: original,
            message_seq: Some(seq),
        })
        .await?;
    Ok(())
}

/// Nothing is made of the email `key` from `from`, for `reason`: recorded
/// and logged.
async fn ignored(
    store: &Store,
    key: &str,
    from: &str,
    reason: &'static str,
) -> DomainResult<Received> {
    record_ignored(store, key, from, reason).await?;
    Ok(Received::Ignored(reason))
}

/// Records that nothing is made of the email `key` from `from`, for
/// `reason` (shown on the admin page), and logs it: the one shape of an
/// ignored email, whichever door it came through.
pub(super) async fn record_ignored(
    store: &Store,
    key: &str,
    from: &str,
    reason: &str,
) -> DomainResult<()> {
    tracing::info!(message = %key_for_log(key), reason, "inbound email ignored");
    store
        .record_inbound_email(&InboundRecord {
            message_key: key,
            from_email: from,
            outcome: InboundOutcome::Ignored,
            conversation_id: None,
            detail: reason,
            raw: None,
            original_sha256: None,
            message_seq: None,
        })
        .await?;
    Ok(())
}

/// Whether `address` is the conversation's customer's.
fn same_address(conversation: &Conversation, address: &str) -> bool {
    !conversation.customer_email.is_empty()
        && conversation.customer_email.eq_ignore_ascii_case(address)
}

/// A Message-ID is the sender's; logs get a hash of it.
fn key_for_log(key: &str) -> String {
    crate::auth::hash_token(key)[..12].to_string()
}

async fn append(
    chat: &Arc<Chat>,
    email: &Taking<'_>,
    conversation: &Conversation,
    text: &str,
) -> DomainResult<Received> {
    let store = chat.store();
    let visitor = store
        .visitor(conversation.visitor_id)
        .await?
        .ok_or(DomainError::NotFound)?;
    let original = email_originals::keep(chat, email.original).await?;
    let sent = chat
        .send_as_visitor_to(
            &visitor,
            conversation.id,
            &email.client_msg_id(),
            text,
            None,
        )
        .await?;
    let message = (conversation.id, &visitor, sent.message.seq);
    let kept = (InboundOutcome::Appended, original.as_deref());
    taken(chat, email, message, kept).await?;
    Ok(Received::Appended {
        conversation: conversation.id,
        seq: sent.message.seq,
    })
}

async fn open_ticket(
    chat: &Arc<Chat>,
    email: &Taking<'_>,
    (sender, name): (&Email, &str),
    text: &str,
    answering: Option<&str>,
) -> DomainResult<Received> {
    let store = chat.store();
    let customer = super::accounts::customer_by_email(chat.store(), sender, name).await?;
    if customer.role.is_staff() {
        // Staff write from the console; an email of theirs is not a ticket.
        let reason = "the sender is staff: agents answer in the console";
        return ignored(store, email.key, sender.as_str(), reason).await;
    }
    let original = email_originals::keep(chat, email.original).await?;
    let subject = match crate::model::text::clean_line(&email.mail.subject) {
        s if s.trim().is_empty() => "(no subject)".to_string(),
        s => s.chars().take(tickets::MAX_SUBJECT).collect(),
    };
    let ticket = tickets::raise_answering(
        chat,
        &customer,
        (&subject, text),
        Priority::Normal,
        answering,
        Some(email.key),
    )
    .await?;
    // The ticket's conversation and its first message: the description
    // this email's text became.
    let conversation = store
        .conversation(ticket.conversation_id)
        .await?
        .ok_or(DomainError::NotFound)?;
    let visitor = store
        .visitor(conversation.visitor_id)
        .await?
        .ok_or(DomainError::NotFound)?;
    let first = store
        .messages_after(conversation.id, 0, true, 1)
        .await?
        .first()
        .map_or(1, |m| m.seq);
    let message = (conversation.id, &visitor, first);
    let kept = (InboundOutcome::Opened, original.as_deref());
    taken(chat, email, message, kept).await?;
    Ok(Received::Opened {
        number: ticket.number,
    })
}
