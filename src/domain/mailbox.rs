//! The support mailbox (IMAP), read by one instance at a time: whoever
//! holds its lease logs in every `every`, takes each unread email through
//! `inbound_email::receive_raw` (the same rules as SendGrid's hook) and
//! only then marks it read (and moves it, if an admin named a folder).
//!
//! Nothing is taken twice even when an instance dies mid-way: an email
//! taken but not yet marked is fetched again by the next holder and found
//! already taken by its key, then marked. An email that cannot be taken
//! now (the database away) stays unread for the next round; one that is
//! refused by a rule or cannot be read is marked, so it is not retried
//! forever, and stays in the mailbox for a person to read.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::chat::Chat;
use super::inbound_email;
use super::{DomainError, DomainResult};
use crate::auth::Secret;
use crate::mail::imap::{Fetched, ImapError, ImapSettings, Mailbox};
use crate::store::{Store, now_ms};

/// The lease's name: there is one support mailbox.
const LEASE: &str = "mailbox:imap";

/// How long a lease lasts unless renewed; renewed after every email, so a
/// holder that died is replaced within this time.
const LEASE_MS: i64 = 120_000;

/// Emails taken per round, so that a full mailbox does not hold one
/// round (and its lease) for long.
const PER_ROUND: usize = 50;

/// The largest email taken, as SendGrid's: larger ones stay for a person.
pub const MAIL_LIMIT: u64 = 30 * 1024 * 1024;

/// The settings key of the last round's outcome, for the admin page.
const STATUS: &str = "mail.imap.status";

#[derive(Clone)]
pub struct MailboxConfig {
    /// How often the holder looks for new mail.
    pub every: Duration,
    /// Each step's time limit (connect, log in, fetch one email).
    pub timeout: Duration,
    /// The CA that signs the server's certificate, instead of the system's.
    pub ca_pem: Option<Vec<u8>>,
    /// Where an admin-named server may be (`egress`).
    pub policy: crate::egress::Policy,
}

impl MailboxConfig {
    /// From the settings checked at start (the CA file is read here, once).
    pub fn from_settings(
        mail: &crate::config::MailConfig,
        policy: &crate::egress::Policy,
    ) -> std::io::Result<MailboxConfig> {
        let ca_pem = match &mail.imap_ca_file {
            Some(file) => Some(std::fs::read(file).map_err(|e| {
                std::io::Error::new(
                    e.kind(),
                    format!("cannot read `mail_imap_ca_file` {}: {e}", file.display()),
                )
            })?),
            None => None,
        };
        Ok(MailboxConfig {
            every: mail.imap_poll,
            timeout: mail.imap_timeout,
            ca_pem,
            policy: policy.clone(),
        })
    }
}

/// What the last round found, as the admin page shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MailboxStatus {
    pub at: i64,
    pub ok: bool,
    /// What happened, in a sentence.
    pub detail: String,
}

impl MailboxStatus {
    pub async fn load(store: &Store) -> DomainResult<Option<MailboxStatus>> {
        Ok(store
            .setting(STATUS)
            .await?
            .and_then(|s| serde_json::from_str(&s).ok()))
    }
}

/// What one round did.
#[derive(Debug, Clone, PartialEq)]
pub enum Round {
    /// No mailbox is configured, or it is switched off.
    Off,
    /// Another instance holds the mailbox.
    NotMine,
    /// Emails taken into Careline (or found taken before), and marked.
    Worked { taken: usize },
}

/// Why a round stopped.
#[derive(Debug, thiserror::Error)]
pub enum MailboxError {
    #[error(transparent)]
    Mail(#[from] ImapError),
    #[error(
        "Careline could not store what came in ({0}); the email stays unread for the next round"
    )]
    Domain(#[from] DomainError),
}

/// Starts this instance's reader: a round every `config.every`.
pub fn spawn(
    chat: Arc<Chat>,
    secret: Secret,
    config: MailboxConfig,
) -> tokio::task::JoinHandle<()> {
    let holder = crate::auth::random_token(16);
    tokio::spawn(async move {
        let mut last_error = String::new();
        loop {
            tokio::time::sleep(config.every).await;
            match round(&chat, &secret, &holder, &config).await {
                Ok(_) => last_error.clear(),
                Err(e) => {
                    // Once per change, not once per round.
                    let said = e.to_string();
                    if said != last_error {
                        tracing::warn!(error = %said, "the support mailbox could not be read");
                        last_error = said;
                    }
                }
            }
        }
    })
}

/// One round: takes the lease (or finds another instance has it), reads
/// the mailbox and records the outcome for the admin page.
pub async fn round(
    chat: &Arc<Chat>,
    secret: &Secret,
    holder: &str,
    config: &MailboxConfig,
) -> Result<Round, MailboxError> {
    let store = chat.store();
    let settings = ImapSettings::load(store, secret)
        .await
        .map_err(DomainError::from)?;
    if !settings.enabled || settings.check().is_err() {
        store
            .release_lease(LEASE, holder)
            .await
            .map_err(DomainError::from)?;
        return Ok(Round::Off);
    }
    if !store
        .take_lease(LEASE, holder, LEASE_MS)
        .await
        .map_err(DomainError::from)?
    {
        return Ok(Round::NotMine);
    }
    let worked = read(chat, secret, holder, &settings, config).await;
    let status = match &worked {
        Ok(Round::Worked { taken: 0 }) => MailboxStatus {
            at: now_ms(),
            ok: true,
            detail: format!("Checked {}: no new email.", settings.label()),
        },
        Ok(Round::Worked { taken }) => MailboxStatus {
            at: now_ms(),
            ok: true,
            detail: format!("Checked {}: took {taken} email(s).", settings.label()),
        },
        Ok(_) => return worked,
        Err(e) => MailboxStatus {
            at: now_ms(),
            ok: false,
            detail: e.to_string(),
        },
    };
    let written = serde_json::to_string(&status).unwrap_or_default();
    if let Err(e) = store.save_settings(&[(STATUS, written)]).await {
        tracing::debug!(error = %e, "could not record the mailbox's status");
    }
    worked
}

async fn read(
    chat: &Arc<Chat>,
    secret: &Secret,
    holder: &str,
    settings: &ImapSettings,
    config: &MailboxConfig,
) -> Result<Round, MailboxError> {
    let store = chat.store();
    let mut mailbox = Mailbox::open(
        settings,
        config.ca_pem.as_deref(),
        config.timeout,
        &config.policy,
    )
    .await?;
    let outcome = async {
        let mut taken = 0;
        for uid in mailbox.waiting(PER_ROUND).await? {
            take_one(chat, secret, &mut mailbox, uid, settings).await?;
            taken += 1;
            // Still ours? An instance that stalled past its lease stops
            // here rather than work beside the one that took over.
            if !store
                .take_lease(LEASE, holder, LEASE_MS)
                .await
                .map_err(DomainError::from)?
            {
                break;
            }
        }
        Ok(Round::Worked { taken })
    }
    .await;
    mailbox.close().await;
    outcome
}

/// Takes the email `uid` into Careline, then marks it.
async fn take_one(
    chat: &Arc<Chat>,
    secret: &Secret,
    mailbox: &mut Mailbox,
    uid: u32,
    settings: &ImapSettings,
) -> Result<(), MailboxError> {
    let received = match mailbox.fetch(uid, MAIL_LIMIT).await? {
        Fetched::Gone => return Ok(()),
        Fetched::TooLarge(size) => {
            too_large(chat.store(), settings, uid, size).await?;
            None
        }
        Fetched::Mail(raw) => Some(inbound_email::receive_raw(chat, secret, &raw, &[]).await),
    };
    match received {
        None | Some(Ok(_)) => {}
        Some(Err(
            e @ (DomainError::Unavailable(_) | DomainError::Internal(_) | DomainError::Busy { .. }),
        )) => {
            return Err(e.into());
        }
        Some(Err(e)) => {
            // Refused by a rule: taking it again gives the same answer.
            tracing::warn!(error = %e, "an email in the support mailbox was refused; it stays there, marked read");
        }
    }
    mailbox.mark_taken(uid).await?;
    Ok(())
}

/// Records an email too large to take: it stays in the mailbox, marked
/// read, for a person; the admin page says so.
async fn too_large(
    store: &Store,
    settings: &ImapSettings,
    uid: u32,
    size: u64,
) -> DomainResult<()> {
    let key =
        inbound_email::content_key(&format!("imap {} uid {uid} size {size}", settings.label()));
    let detail = format!(
        "larger than {} MB ({} MB): left in the mailbox {}, marked read",
        MAIL_LIMIT / (1024 * 1024),
        size / (1024 * 1024),
        settings.folder
    );
    // Logged there, with the size in its reason.
    inbound_email::record_ignored(store, &key, "", &detail).await?;
    Ok(())
}

/// Tries `settings` as an admin saved them: connects, logs in, opens the
/// folder and counts what is waiting (the admin page's answer on save).
pub async fn try_settings(
    settings: &ImapSettings,
    config: &MailboxConfig,
) -> Result<usize, ImapError> {
    let mut mailbox = Mailbox::open(
        settings,
        config.ca_pem.as_deref(),
        config.timeout,
        &config.policy,
    )
    .await?;
    let waiting = mailbox.waiting(usize::MAX).await;
    mailbox.close().await;
    waiting.map(|w| w.len())
}
