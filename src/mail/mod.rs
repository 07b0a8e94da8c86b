//! Email: the `Mailer` seam, the templates, and the delivery worker that
//! drains the outbox. The default mailer writes emails to the log and keeps
//! them in the outbox (shown on the admin page); SendGrid v3 delivers them
//! for real when an API key is configured.

pub mod imap;
pub mod inbound;
pub mod original;
pub mod sendgrid;
pub mod smtp;
pub mod templates;
pub mod threading;
pub mod worker;

use std::time::Duration;

pub use crate::adapter::BoxFuture;

/// A rendered email, ready to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Email {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
    /// How mail clients thread it and where a reply goes; every transport
    /// sends these headers as they are here.
    pub threading: Threading,
}

/// The headers that make an email part of a conversation. Values are
/// checked where they are made: no CR or LF can reach a header.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Threading {
    /// `Message-ID`, with its angle brackets: the same on every attempt to
    /// send the same outbox row, so a retry is one email to a mail client.
    pub message_id: Option<String>,
    /// `In-Reply-To` and `References`: the customer's email this one answers.
    pub in_reply_to: Option<String>,
    /// `Reply-To`: the address whose replies come back into the conversation.
    pub reply_to: Option<String>,
    /// `Auto-Submitted: auto-replied`: this email answers an email, so an
    /// auto-responder at the other end must not answer it (RFC 3834).
    pub auto_replied: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// Worth trying again: after `after` when the service says so.
    #[error("temporary failure: {reason}")]
    Retry {
        after: Option<Duration>,
        reason: String,
    },
    /// The service refused this email; trying again will not help.
    #[error("rejected: {0}")]
    Rejected(String),
}

pub trait Mailer: Send + Sync + 'static {
    fn send<'a>(&'a self, email: &'a Email) -> BoxFuture<'a, Result<(), SendError>>;

    fn name(&self) -> &'static str;
}

/// The default: no mail service. Emails stay in the outbox for admins to
/// read and are logged (recipient and subject only) at debug level.
pub struct LogMailer;

impl Mailer for LogMailer {
    fn send<'a>(&'a self, email: &'a Email) -> BoxFuture<'a, Result<(), SendError>> {
        Box::pin(async move {
            tracing::debug!(to = %email.to, subject = %email.subject, "email kept in the outbox (no mail service configured)");
            Ok(())
        })
    }

    fn name(&self) -> &'static str {
        "outbox"
    }
}
